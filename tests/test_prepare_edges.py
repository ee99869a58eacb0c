"""Bad input on the real clips: misfiled folders, missing or odd alignments, broken zips, resuming."""

import shutil
import zipfile

import cv2
import pytest
from huggingface_hub import DatasetCard

from lipagent.cli import main
from lipagent.data.prepare import PrepareOptions, prepare
from lipagent.transform.skips import SkipReason

CLIPS = ("bbaf2n", "bbal6n", "bbal9a", "lrae3s")


def _tree(root, unpacked, alignment_folder="s7", without_alignment=(), extra_alignments=None):
    """An unpacked grid dir: s1/ with CLIPS, their alignments filed under another speaker's folder."""
    (root / "s1").mkdir(parents=True)
    (root / "alignments" / alignment_folder).mkdir(parents=True)
    for video_id in CLIPS:
        shutil.copy(unpacked / "s1" / f"{video_id}.mpg", root / "s1")
        if video_id not in without_alignment:
            shutil.copy(unpacked / "alignments" / "s1" / f"{video_id}.align", root / "alignments" / alignment_folder)
    for name, text in (extra_alignments or {}).items():
        (root / "alignments" / alignment_folder / f"{name}.align").write_text(text)
    return root


def _run(root, tmp_path, **kwargs):
    options = dict(speakers=("s1",), out=tmp_path / "out", grid_dir=root, cache_dir=tmp_path / "cache", num_proc=1)
    return prepare(PrepareOptions(**{**options, **kwargs}))


def test_misfiled_and_missing_alignments_from_unpacked_trees(unpacked, tmp_path):
    root = _tree(tmp_path / "grid", unpacked, without_alignment=("bbal9a",))
    summary = _run(root, tmp_path)
    assert summary.kept == 3
    assert [(r["video_id"], r["skip_reason"]) for r in summary.skipped] == [("bbal9a", SkipReason.NO_ALIGNMENT.value)]


def test_transcriptions_outside_the_grammar_and_unreadable_alignments(unpacked, tmp_path):
    bad_word = (unpacked / "alignments" / "s1" / "bbal9a.align").read_text().replace(" bin", " bun")
    root = _tree(tmp_path / "grid", unpacked, without_alignment=("bbal9a", "lrae3s"))
    (root / "alignments" / "s7" / "bbal9a.align").write_text(bad_word)
    (root / "alignments" / "s7" / "lrae3s.align").write_text("garbage\n")
    reasons = {r["video_id"]: r["skip_reason"] for r in _run(root, tmp_path).skipped}
    assert reasons == {"bbal9a": SkipReason.NOT_IN_GRAMMAR.value, "lrae3s": SkipReason.BAD_ALIGNMENT.value}


def test_undecodable_video_is_skipped_not_fatal(unpacked, tmp_path):
    root = _tree(tmp_path / "grid", unpacked)
    (root / "s1" / "bbal6n.mpg").write_bytes(b"\x00\x01" * 5000)
    summary = _run(root, tmp_path)
    assert summary.kept == 3
    assert summary.skipped[0]["skip_reason"] == SkipReason.UNDECODABLE.value
    # What is published names no local folder: the card, its numbers and skipped.jsonl.
    card = DatasetCard.load(tmp_path / "out" / "README.md")
    published = (tmp_path / "out" / "README.md").read_text() + (tmp_path / "out" / "skipped.jsonl").read_text()
    assert str(tmp_path) not in published and card.data.lipagent["source"] == "local GRID files (grid/)"
    assert all(split["num_bytes"] > 10_000 for split in card.data.dataset_info["splits"]), card.data.dataset_info


def _grid_with(tmp_path, grid_dir, s2_bytes=None, extra_member=None):
    root = tmp_path / "zips"
    root.mkdir()
    shutil.copy(grid_dir / "alignments.zip", root)
    if s2_bytes is not None:
        (root / "s2.zip").write_bytes(s2_bytes)
    else:
        shutil.copy(grid_dir / "s2.zip", root)
        with zipfile.ZipFile(root / "s2.zip", "a") as archive:
            archive.writestr(extra_member, b"x")
    return root


@pytest.mark.parametrize(
    "broken, said",
    [({"truncate_s2": True}, "s2.zip"), ({"extra_member": "../../escaped.mpg"}, "refusing")],
    ids=["a truncated zip is named", "a member outside the folder is refused"],
)
def test_a_broken_zip_is_a_one_line_error_before_anything_is_written(broken, said, grid_dir, tmp_path, capsys):
    s2 = (grid_dir / "s2.zip").read_bytes()[:500_000] if broken.get("truncate_s2") else None
    root = _grid_with(tmp_path, grid_dir, s2_bytes=s2, extra_member=broken.get("extra_member"))
    argv = ["prepare", "--grid-dir", str(root), "--speakers", "s2", "--out", str(tmp_path / "o")]
    assert main([*argv, "--cache-dir", str(tmp_path / "c"), "--num-proc", "1"]) == 2
    assert said in capsys.readouterr().err
    assert not (tmp_path / "o").exists() and not list(tmp_path.rglob("escaped.mpg"))


def test_existing_output_is_not_overwritten_by_default(tmp_path, capsys):
    (tmp_path / "o").mkdir()
    assert main(["prepare", "--grid-dir", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "--overwrite" in capsys.readouterr().err


def test_interrupted_run_resumes_from_the_cache(grid_dir, tmp_path, monkeypatch):
    opened = []
    real_capture = cv2.VideoCapture

    def interrupting_capture(path):
        opened.append(path)
        if len(opened) == 5:
            raise KeyboardInterrupt
        return real_capture(path)

    options = dict(speakers=("s1",), grid_dir=grid_dir, cache_dir=tmp_path / "cache", num_proc=1, limit=8, chunk_size=2)
    monkeypatch.setattr(cv2, "VideoCapture", interrupting_capture)
    with pytest.raises(KeyboardInterrupt):
        prepare(PrepareOptions(out=tmp_path / "first", **options))
    assert not (tmp_path / "first").exists(), "an interrupted run must not leave a half-written dataset"
    opened.clear()
    monkeypatch.setattr(cv2, "VideoCapture", lambda path: (opened.append(path), real_capture(path))[1])
    resumed = prepare(PrepareOptions(out=tmp_path / "first", **options))
    assert resumed.kept == 8
    assert 0 < len(opened) <= 8 - 4, "the chunks finished before the interruption must come from the cache"
    monkeypatch.setattr(cv2, "VideoCapture", real_capture)
    fresh = prepare(PrepareOptions(out=tmp_path / "fresh", **{**options, "cache_dir": tmp_path / "cache2"}))
    assert fresh.split_sizes == resumed.split_sizes
    first = sorted((tmp_path / "first" / "data").iterdir())
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in sorted((tmp_path / "fresh" / "data").iterdir())]


def test_unseen_scheme_writes_empty_splits_that_load(grid_dir, tmp_path):
    import datasets

    from lipagent.data.validate import validate_folder

    summary = prepare(
        PrepareOptions(
            speakers=("s2",),
            out=tmp_path / "unseen",
            grid_dir=grid_dir,
            cache_dir=tmp_path / "cache",
            num_proc=1,
            split_scheme="unseen",
        )
    )
    assert summary.split_sizes == {"train": 0, "validation": 0, "test": 1}
    loaded = datasets.load_dataset(str(tmp_path / "unseen"))
    assert list(loaded) == ["test"] and loaded["test"][0]["video_id"] == "swwp2s"
    assert "no rows in train, validation" in summary.text()
    assert validate_folder(tmp_path / "unseen").ok


def test_nothing_usable_is_an_error_not_an_empty_folder(unpacked, tmp_path):
    odd = (unpacked / "alignments" / "s1" / "bbaf2n.align").read_text().replace(" bin", " bun")
    root = _tree(tmp_path / "grid", unpacked, without_alignment=CLIPS, extra_alignments={"bbaf2n": odd})
    with pytest.raises(ValueError, match="outside the GRID grammar"):
        _run(root, tmp_path)
    assert not (tmp_path / "out").exists()


def test_changed_sources_rebuild_and_unchanged_ones_reuse_the_cache(unpacked, grid_dir, tmp_path, monkeypatch):
    opened = []
    real_capture = cv2.VideoCapture
    monkeypatch.setattr(cv2, "VideoCapture", lambda path: (opened.append(path), real_capture(path))[1])
    root = _tree(tmp_path / "grid", unpacked)
    assert _run(root, tmp_path).kept == 4
    align = root / "alignments" / "s7" / "bbal9a.align"
    align.write_text(align.read_text().replace(" bin", " bun"))  # an alignment edited after the first build
    opened.clear()
    edited = _run(root, tmp_path, overwrite=True)
    assert edited.kept == 3 and [r["video_id"] for r in edited.skipped] == ["bbal9a"], "stale rows were reused"
    opened.clear()
    assert _run(root, tmp_path, overwrite=True).kept == 3
    assert opened == [], "nothing changed, so every mosaic comes from the cache"
    # A zip replaced by a bigger one (a clip added): the cached unpacked copy of the old one must not be read.
    zips = tmp_path / "zips"
    zips.mkdir()
    shutil.copy(grid_dir / "alignments.zip", zips)
    shutil.copy(grid_dir / "s2.zip", zips)
    options = dict(speakers=("s2",), grid_dir=zips, cache_dir=tmp_path / "zcache", num_proc=1)
    before = prepare(PrepareOptions(out=tmp_path / "z1", **options)).kept
    with zipfile.ZipFile(zips / "s2.zip", "a") as bigger:
        bigger.write(unpacked / "s1" / "bbaf2n.mpg", "s2/bbaf2n.mpg")
    assert prepare(PrepareOptions(out=tmp_path / "z2", **options)).kept == before + 1


def test_an_empty_tree_beside_its_zip_means_the_zip_for_the_dry_run_and_the_build(grid_dir, tmp_path, capsys):
    zips = tmp_path / "zips"
    zips.mkdir()
    for name in ("s2.zip", "alignments.zip"):
        shutil.copy(grid_dir / name, zips)
    (zips / "s2").mkdir()
    (zips / "s2" / "notes.txt").write_text("unpacking started here and stopped")
    assert (
        main(["prepare", "--grid-dir", str(zips), "--speakers", "s2", "--out", str(tmp_path / "o"), "--dry-run"]) == 0
    )
    assert str(zips / "s2.zip") in capsys.readouterr().out
    assert (
        prepare(
            PrepareOptions(speakers=("s2",), out=tmp_path / "o", grid_dir=zips, cache_dir=tmp_path / "c", num_proc=1)
        ).kept
        >= 1
    )
