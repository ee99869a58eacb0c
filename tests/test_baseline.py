"""The baseline lip reader on real GRID mosaics: it learns, saves and loads, reads through the common reader door."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from lipagent.cli import main as lipagent_main
from lipagent.config import DEFAULT_CONFIG
from lipagent.grammar import SLOTS, is_valid_sentence
from lipagent.model.baseline import (
    CONFIG_FILE,
    HISTORY_FILE,
    WEIGHTS_FILE,
    BaselineRecord,
    sentences_of,
)
from lipagent.model.baseline_config import BaselineArch, BaselineTrainingArgs
from lipagent.model.baseline_training import (
    CellSet,
    augment,
    fit,
    load_dataset_cells,
    predict_logits,
    save_baseline,
    slot_accuracy,
)
from lipagent.readers.baseline import BaselineReader
from lipagent.readers.factory import load_reader
from lipagent.records import read_dataset_record

REPO = Path(__file__).resolve().parents[1]
CHANCE = float(np.mean([1 / 4, 1 / 4, 1 / 4, 1 / 25, 1 / 10, 1 / 4]))
"""Slot accuracy of guessing uniformly (about 0.19)."""


@pytest.fixture(scope="module")
def cells(prepared):
    out, _ = prepared
    return load_dataset_cells(str(out), ["train", "test"], BaselineArch())


@pytest.fixture(scope="module")
def small_model(prepared, cells):
    """A baseline fitted for a few epochs on 48 real clips, saved the way the command saves it."""
    out, _ = prepared
    mosaic, splits = cells
    train = splits["train"]
    args = BaselineTrainingArgs(dataset=str(out), out=Path("unused"), epochs=3, seed=0)
    model, history = fit(_first(train, 48), args, mosaic, splits["test"], progress=False)
    return model, history


def _first(cell_set: CellSet, count: int) -> CellSet:
    return CellSet(
        cell_set.cells[:count],
        cell_set.labels[:count],
        cell_set.video_ids[:count],
        cell_set.texts[:count],
        cell_set.speakers[:count],
    )


def test_it_learns_a_handful_of_real_clips_within_seconds(prepared, cells):
    out, _ = prepared
    mosaic, splits = cells
    few = _first(splits["train"], 12)
    args = BaselineTrainingArgs(dataset=str(out), out=Path("unused"), epochs=40, batch_size=4, seed=0)
    model, history = fit(few, args, mosaic, progress=False)
    assert history[-1]["loss"] < 0.7 * history[0]["loss"], [h["loss"] for h in history]
    accuracy = slot_accuracy(predict_logits(model, few.cells), torch.from_numpy(few.labels))
    assert accuracy > 3 * CHANCE, f"training slot accuracy {accuracy:.2f} is not well above chance {CHANCE:.2f}"


def test_cells_are_the_mosaic_cut_back_into_frames_in_time_order(cells, prepared):
    import datasets

    out, _ = prepared
    mosaic, splits = cells
    first = splits["train"].cells[0]
    assert first.shape == (24, 40, 50) and first.dtype == np.uint8
    image = np.asarray(datasets.load_dataset(str(out), split="train")[0]["image"].convert("L"), dtype=float)
    top_right = image[0:80, 500:600].reshape(40, 2, 50, 2).mean(axis=(1, 3))
    bottom_left = image[240:320, 0:100].reshape(40, 2, 50, 2).mean(axis=(1, 3))
    assert np.abs(first[5] - top_right).mean() < 3 and np.abs(first[18] - bottom_left).mean() < 3
    assert mosaic == DEFAULT_CONFIG


def test_augmentation_moves_every_cell_of_a_clip_alike():
    rng = np.random.default_rng(0)
    clip = rng.integers(0, 256, size=(2, 12, 40, 50), dtype=np.uint8)
    moved = augment(clip, np.random.default_rng(3), shift=3, flip=False, gamma=0.0)
    for n in range(2):
        offsets = set()
        for t in range(12):
            hits = [
                (dy, dx)
                for dy in range(-3, 4)
                for dx in range(-3, 4)
                if np.array_equal(moved[n, t, 3:-3, 3:-3], clip[n, t, 3 + dy : 37 + dy, 3 + dx : 47 + dx])
            ]
            offsets.add(tuple(hits))
        assert len(offsets) == 1, "all 12 cells of a clip must get the same shift"
    assert np.array_equal(augment(clip, np.random.default_rng(3), 0, False, 0.0), clip)


def test_same_seed_same_model_other_seed_other_model(prepared, cells):
    out, _ = prepared
    mosaic, splits = cells
    few = _first(splits["train"], 8)
    args = BaselineTrainingArgs(dataset=str(out), out=Path("unused"), epochs=1, batch_size=4, seed=5)
    weights = [fit(few, replace(args, seed=s), mosaic, progress=False)[0].state_dict() for s in (5, 5, 6)]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    assert not all(torch.equal(weights[0][k], weights[2][k]) for k in weights[0])


def test_save_and_load_give_the_same_predictions_and_settings(small_model, cells, prepared, tmp_path):
    out, _ = prepared
    model, history = small_model
    mosaic, splits = cells
    record = BaselineRecord(BaselineArch(), mosaic, {"dataset": str(out)})
    folder = save_baseline(model, record, history, tmp_path / "baseline", overwrite=False)
    assert sorted(p.name for p in folder.iterdir()) == sorted([CONFIG_FILE, HISTORY_FILE, WEIGHTS_FILE])
    assert (folder / WEIGHTS_FILE).stat().st_size < 4_000_000
    reader = load_reader(folder)
    assert isinstance(reader, BaselineReader) and reader.config == read_dataset_record(out).mosaic
    test = splits["test"]
    expected = predict_logits(model, test.cells)
    got = predict_logits(reader.model, test.cells)
    assert all(torch.equal(expected[k], got[k]) for k in expected)
    assert json.loads((folder / HISTORY_FILE).read_text()) == history
    with pytest.raises(FileExistsError, match="--overwrite"):
        save_baseline(model, record, history, folder, overwrite=False)
    (tmp_path / "notes").mkdir()
    with pytest.raises(FileExistsError, match="not a baseline written by LipAgent"):
        save_baseline(model, record, history, tmp_path / "notes", overwrite=True)


def test_every_prediction_is_a_valid_sentence(small_model, cells):
    model, _ = small_model
    _, splits = cells
    sentences = sentences_of(predict_logits(model, splits["test"].cells))
    assert len(sentences) == len(splits["test"]) and all(is_valid_sentence(s) for s in sentences)
    untrained_model = type(model)(BaselineArch(), DEFAULT_CONFIG.num_frames, SLOTS)
    untrained = sentences_of(predict_logits(untrained_model, splits["test"].cells[:4]))
    assert all(is_valid_sentence(s) for s in untrained)


@pytest.fixture(scope="module")
def trained_dir(baseline_dir):
    return baseline_dir


def test_cli_train_writes_a_complete_folder(trained_dir, prepared):
    out, _ = prepared
    config = json.loads((trained_dir / CONFIG_FILE).read_text())
    assert config["model_type"] == "lipagent-slot-cnn"
    assert config["mosaic"] == read_dataset_record(out).mosaic.to_dict()
    assert config["training"]["num_train_samples"] == 32 and config["training"]["epochs"] == 2
    history = json.loads((trained_dir / HISTORY_FILE).read_text())
    assert [h["epoch"] for h in history] == [1, 2] and all("eval_wer" in h for h in history)
    assert not list(trained_dir.parent.glob(".*partial*"))


def test_eval_reads_a_baseline_exactly_like_an_adapter(trained_dir, prepared, tmp_path, capsys):
    from eval.run_eval import main as run_eval_main

    out, _ = prepared
    assert (
        run_eval_main(
            [
                "--model",
                str(trained_dir),
                "--dataset",
                str(out),
                "--split",
                "test",
                "--out",
                str(tmp_path / "eval"),
                "--baseline",
                str(trained_dir),
            ]
        )
        == 0
    )
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["valid_sentence_rate"] == 1.0 and metrics["decoding"] == "slot classifier"
    assert {"wer", "cer", "sentence_accuracy", "slot_accuracy", "per_speaker"} <= set(metrics)
    assert metrics["baseline"]["wer"] == metrics["wer"], "the same model on the same clips must score the same"
    lines = (tmp_path / "eval" / "predictions.jsonl").read_text().splitlines()
    assert len(lines) == metrics["num_samples"] and (tmp_path / "eval" / "report.png").stat().st_size > 10_000
    assert "the model only ties it" in capsys.readouterr().out


def test_transcribe_reads_a_real_clip_with_the_baseline(trained_dir, unpacked, capsys):
    code = lipagent_main(["transcribe", str(unpacked / "s1" / "bbaf2n.mpg"), "--model", str(trained_dir)])
    captured = capsys.readouterr()
    assert code == 0 and is_valid_sentence(captured.out.strip().splitlines()[-1])
    assert "baseline lip reader" in captured.err


def test_user_mistakes_are_one_line_errors(trained_dir, prepared, unpacked, tmp_path, capsys):
    from eval.run_eval import main as run_eval_main

    out, _ = prepared
    video = unpacked / "s1" / "bbaf2n.mpg"
    cases = [
        (["baseline", "train", str(out), "--out", str(trained_dir)], "--overwrite"),
        (["baseline", "train", str(tmp_path / "nowhere"), "--out", str(tmp_path / "b")], "no such dataset folder"),
        (
            ["baseline", "train", str(out), "--out", str(tmp_path / "b"), "--learning-rate", "-1"],
            "--learning-rate must be positive",
        ),
        (["baseline", "train", str(out), "--out", str(tmp_path / "b"), "--train-split", "dev"], "has no dev split"),
        (["transcribe", str(REPO / "README.md"), "--model", str(tmp_path)], "neither a baseline"),
        (["transcribe", str(REPO / "README.md"), "--model", str(tmp_path / "gone")], "no such model folder"),
        (["transcribe", str(video), "--model", str(trained_dir), "--device", "tpu"], "--device tpu is not one of"),
        (
            ["transcribe", str(video), "--model", str(trained_dir), "--start-frame", "-5", "--end-frame", "40"],
            "--start-frame -5 and --end-frame 40: frames count from 0, the first at most the last",
        ),
    ]
    for argv, message in cases:
        assert lipagent_main(argv) == 2, argv
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, (argv, err)
    no_card = tmp_path / "no-card"
    shutil.copytree(out, no_card)
    (no_card / "README.md").unlink()
    assert lipagent_main(["baseline", "train", str(no_card), "--out", str(tmp_path / "b")]) == 2
    assert "mosaic settings are unknown" in capsys.readouterr().err
    reader = load_reader(trained_dir)
    with pytest.raises(ValueError, match="trained on 600x320 .4x6 cells."):
        reader.transcribe_mosaic(_png(64, 64))
    assert run_eval_main(["--model", str(tmp_path / "gone"), "--dataset", str(out), "--out", str(tmp_path / "e")]) == 2
    assert (
        run_eval_main(
            ["--model", str(trained_dir), "--dataset", str(out), "--split", "dev", "--out", str(tmp_path / "e")]
        )
        == 2
    )
    assert (
        run_eval_main(
            ["--model", str(trained_dir), "--dataset", str(tmp_path / "nowhere"), "--out", str(tmp_path / "e")]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "Traceback" not in err and "no such dataset folder" in err and "Repo id" not in err


def _png(width, height) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_eval_refuses_mosaics_cut_otherwise_than_the_model_learned(trained_dir, prepared, tmp_path, capsys):
    from eval.run_eval import main as run_eval_main

    out, _ = prepared
    other = tmp_path / "tracked"
    shutil.copytree(trained_dir, other)
    config = json.loads((other / CONFIG_FILE).read_text())
    config["mosaic"]["landmarks"] = "static"
    (other / CONFIG_FILE).write_text(json.dumps(config))
    assert run_eval_main(["--model", str(other), "--dataset", str(out), "--out", str(tmp_path / "e")]) == 2
    assert "landmarks: tracking vs static" in capsys.readouterr().err
    config["mosaic"]["landmarks"] = "tracking"
    config["speech_span"] = "both"  # its test split: detected spans
    (other / CONFIG_FILE).write_text(json.dumps(config))
    assert run_eval_main(["--model", str(other), "--dataset", str(out), "--out", str(tmp_path / "e")]) == 2
    assert "speech_span: aligned vs detected" in capsys.readouterr().err
    del config["speech_span"]
    config["mosaic"]["speech_span"] = "both"  # a record from before the span recipe left the mosaic settings
    (other / CONFIG_FILE).write_text(json.dumps(config))
    assert run_eval_main(["--model", str(other), "--dataset", str(out), "--out", str(tmp_path / "e")]) == 2
    assert "speech_span: aligned vs detected" in capsys.readouterr().err


def test_hub_ids_load_offline_from_the_cache(trained_dir, prepared, tmp_path, cache_snapshot):
    out, _ = prepared
    hub_cache = tmp_path / "hf" / "hub"
    cache_snapshot(hub_cache, "dataset", "team/grid-mosaics", out)
    cache_snapshot(hub_cache, "model", "team/grid-baseline", trained_dir)
    script = (
        "import datasets\n"
        "from lipagent.cli import main\n"
        "from lipagent.records import resolve\n"
        "from lipagent.readers.factory import load_reader\n"
        f"assert main(['baseline', 'train', 'team/grid-mosaics', '--out', {str(tmp_path / 'b')!r}, '--epochs', '1',"
        " '--max-samples', '8']) == 0\n"
        "from eval.run_eval import main as run_eval\n"
        f"assert run_eval(['--model', 'team/grid-baseline', '--dataset', 'team/grid-mosaics', '--out', "
        f"{str(tmp_path / 'eval')!r}, '--max-samples', '4']) == 0\n"
        "rows = datasets.load_dataset(str(resolve('team/grid-mosaics', 'dataset')), split='test')\n"
        "reader = load_reader('team/grid-baseline')\n"
        "print(type(reader).__name__, reader.transcribe_mosaic(rows[0]['image']))\n"
    )
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, cwd=REPO, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    kind, *sentence = result.stdout.strip().splitlines()[-1].split()
    assert kind == "BaselineReader" and is_valid_sentence(" ".join(sentence))
    assert (tmp_path / "b" / WEIGHTS_FILE).is_file()
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text())["num_samples"] == 4
