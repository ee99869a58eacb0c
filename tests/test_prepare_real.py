"""`lipagent prepare` on the real GRID samples in ../shared/grid (every s1 and s2 clip there)."""

import json
import shutil
import zipfile

import datasets
import pyarrow.parquet as pq
from huggingface_hub import DatasetCard

from lipagent.cli import main as lipagent_main
from lipagent.config import DEFAULT_CONFIG, MosaicConfig
from lipagent.data.align import parse_alignment
from lipagent.data.preview import preview
from lipagent.data.splits import SPLITS, assign_split
from lipagent.data.validate import validate_folder
from lipagent.grammar import is_valid_sentence
from lipagent.records import read_dataset_record
from lipagent.transform.skips import SkipReason


def _alignment_texts(grid_dir):
    with zipfile.ZipFile(grid_dir / "alignments.zip") as archive:
        return {
            n.rsplit("/", 1)[1][:-6]: parse_alignment(archive.read(n).decode()).text
            for n in archive.namelist()
            if n.endswith(".align")
        }


def _video_ids(grid_dir, speaker):
    with zipfile.ZipFile(grid_dir / f"{speaker}.zip") as archive:
        return {n.rsplit("/", 1)[1][:-4] for n in archive.namelist() if n.endswith(".mpg")}


def _rows(out):
    loaded = datasets.load_dataset(str(out))
    return loaded, {row["video_id"]: {**row, "split": split} for split in loaded for row in loaded[split]}


def test_at_least_99_percent_of_aligned_videos_become_mosaics_with_their_words(prepared, grid_dir):
    out, _ = prepared
    texts = _alignment_texts(grid_dir)
    aligned = (_video_ids(grid_dir, "s1") | _video_ids(grid_dir, "s2")) & set(texts)
    assert len(aligned) == 451
    _, rows = _rows(out)
    assert len(rows) >= 0.99 * len(aligned)
    assert set(rows) <= aligned
    for video_id, row in rows.items():
        assert row["text"] == texts[video_id]
        assert is_valid_sentence(row["text"])


def test_dataset_loads_with_three_splits_and_the_promised_columns(prepared):
    out, summary = prepared
    loaded, rows = _rows(out)
    assert isinstance(loaded, datasets.DatasetDict) and list(loaded) == list(SPLITS)
    assert {"image", "text", "speaker", "video_id"} <= set(loaded["train"].column_names)
    assert isinstance(loaded["train"].features["image"], datasets.Image)
    image = loaded["train"][0]["image"]
    assert image.size == (600, 320) and image.mode == "RGB" and image.format == "JPEG"
    assert {len(loaded[s]) for s in SPLITS} and all(len(loaded[s]) > 0 for s in SPLITS)
    assert summary.split_sizes == {s: len(loaded[s]) for s in SPLITS}
    assert rows["swwp2s"]["speaker"] == "s2" and rows["bbaf2n"]["speaker"] == "s1"


def test_layout_is_a_hub_dataset_repo(prepared):
    out, _ = prepared
    shards = sorted(p.name for p in (out / "data").iterdir())
    assert shards == [f"{s}-00000-of-00001.parquet" for s in ("test", "train", "validation")]
    assert pq.read_metadata(out / "data" / shards[1]).num_rows > 100


def test_splits_are_disjoint_and_follow_the_ids(prepared):
    out, _ = prepared
    loaded, rows = _rows(out)
    assert sum(len(loaded[s]) for s in SPLITS) == len(rows)
    for video_id, row in rows.items():
        assert row["split"] == assign_split(video_id, row["speaker"], "overlapped")


def test_short_damaged_and_sp_clips(prepared, grid_dir):
    out, _ = prepared
    _, rows = _rows(out)
    for video_id in ("srbb4n", "sbbbzp", "lrae3s"):
        assert rows[video_id]["num_frames"] == 74
    assert rows["sgib8n"]["num_frames"] == 75 and rows["sgib8n"]["image"].size == (600, 320)
    with zipfile.ZipFile(grid_dir / "alignments.zip") as archive:
        with_sp = [n for n in archive.namelist() if n.startswith("alignments/s1/") and b" sp" in archive.read(n)]
    kept_with_sp = [rows[n[14:-6]] for n in with_sp if n[14:-6] in rows]
    assert len(kept_with_sp) >= 5
    assert all(" sp" not in row["text"] and len(row["text"].split()) == 6 for row in kept_with_sp)


def test_skips_are_counted_in_summary_card_and_list(prepared):
    out, summary = prepared
    counts = summary.skipped_counts()
    assert counts[SkipReason.NO_VIDEO.value] == 550
    assert counts[SkipReason.NO_ALIGNMENT.value] == 1
    assert SkipReason.FACE_POSE.value not in counts, "every real GRID face is one the crop serves"
    assert "550" in summary.text() and "video without alignment" in summary.text()
    listed = [json.loads(line) for line in (out / "skipped.jsonl").read_text().splitlines()]
    assert len(listed) == len(summary.skipped)
    assert {"video_id": "pwij3p", "speaker": "s2"}.items() <= next(
        r for r in listed if r["video_id"] == "pwij3p"
    ).items()
    card = DatasetCard.load(out / "README.md")
    assert card.data.license == "cc-by-4.0"
    assert card.data.lipagent["skipped"][SkipReason.NO_VIDEO.value] == 550
    assert card.data.lipagent["split_scheme"] == "overlapped"
    assert "Cooke" in card.text and "alignment without video" in card.text
    assert MosaicConfig.from_dict(card.data.lipagent["mosaic"]) == DEFAULT_CONFIG == read_dataset_record(out).mosaic
    assert DEFAULT_CONFIG.describe() in " ".join(card.text.split())
    sizes = {s["name"]: s["num_examples"] for s in card.data.dataset_info["splits"]}
    assert sizes == summary.split_sizes


def test_validate_passes_and_catches_tampering(prepared, tmp_path):
    out, _ = prepared
    assert validate_folder(out).ok
    broken = tmp_path / "broken"
    shutil.copytree(out, broken)
    shutil.copy(broken / "data" / "test-00000-of-00001.parquet", broken / "data" / "validation-00000-of-00001.parquet")
    report = validate_folder(broken)
    assert not report.ok
    assert any("more than once" in p for p in report.problems)
    assert any("different split" in p for p in report.problems)


def test_validate_names_a_truncated_shard_instead_of_raising(prepared, tmp_path, capsys):
    out, _ = prepared
    broken = tmp_path / "truncated"
    shutil.copytree(out, broken)
    shard = broken / "data" / "test-00000-of-00001.parquet"
    shard.write_bytes(shard.read_bytes()[:5000])
    assert lipagent_main(["validate", str(out)]) == 0
    assert "Checking" not in capsys.readouterr().err, "no progress bar left behind where nobody watches it"
    assert lipagent_main(["validate", str(broken)]) == 1
    printed = capsys.readouterr().out
    assert printed.startswith("FAILED") and "data/test-00000-of-00001.parquet is not a readable Parquet file" in printed


def test_preview_writes_a_contact_sheet(prepared, tmp_path):
    out, _ = prepared
    from PIL import Image

    sheet = Image.open(preview(out, tmp_path / "sheet.png", per_split=2))
    assert sheet.size[0] > 3 * 400 and sheet.size[1] > 2 * 240


def test_a_dataset_made_with_the_face_landmarker_records_it(grid_dir, face_landmarker_bundle, tmp_path):
    """Workers make their own Tasks landmarker (none is made before they fork), and the card records which
    landmarker made the mosaics, so a model trained on them reads with the same."""
    from dataclasses import replace

    from lipagent.config import DEFAULT_CONFIG
    from lipagent.data.prepare import PrepareOptions, prepare
    from lipagent.records import read_dataset_record

    config = replace(DEFAULT_CONFIG, landmarker="face_landmarker")
    options = PrepareOptions(
        config=config, speakers=("s2",), out=tmp_path / "ds", grid_dir=grid_dir, cache_dir=tmp_path / "c", num_proc=2
    )
    summary = prepare(options)
    assert sum(summary.split_sizes.values()) == 1 and summary.mosaic["landmarker"] == "face_landmarker"
    _, rows = _rows(tmp_path / "ds")
    assert list(rows) == ["swwp2s"]
    assert read_dataset_record(tmp_path / "ds").mosaic.landmarker == "face_landmarker"
