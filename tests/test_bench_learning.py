"""bench/bench_learning.py runs end to end on real mosaics (a smoke run: one training step per reader, three clips),
so the learning check's whole path (train/sft.py, eval, the GGUF export, the controls) keeps working."""

from __future__ import annotations

import json

import bench_learning
import datasets
import numpy as np
import pytest
from safetensors import safe_open

from lipagent.scoring.metrics import compute_grid_metrics

pytest.importorskip("llama_cpp", reason="the gguf extra is not installed (make setup installs it)")


def test_shuffled_images_keep_every_text_and_image_but_not_their_pairing(few_prepared, tmp_path):
    out = bench_learning.shuffle_images(few_prepared, tmp_path / "shuffled", seed=0)
    original, shuffled = datasets.load_dataset(str(few_prepared)), datasets.load_dataset(str(out))
    for split in original:
        assert shuffled[split]["text"] == original[split]["text"]
        before = [row["image"].tobytes() for row in original[split]]
        after = [row["image"].tobytes() for row in shuffled[split]]
        assert sorted(after) == sorted(before)
        if split == "train":
            assert after != before
    assert (out / "README.md").read_bytes() == (few_prepared / "README.md").read_bytes()


def test_paired_difference_is_the_gap_in_wer_with_an_interval_over_clips():
    a = {"clips": ["x", "y", "z"], "errors": [1, 0, 2]}
    b = {"clips": ["x", "y", "z"], "errors": [3, 1, 2]}
    value, low, high = bench_learning.paired_difference(a, b, draws=500)
    assert value == pytest.approx(-3 / 18)
    assert -2 / 6 <= low <= value <= high <= 0
    with pytest.raises(ValueError, match="different clips"):
        bench_learning.paired_difference(a, {**b, "clips": ["x", "y", "w"]}, draws=10)


def test_smoke_run_trains_reads_exports_and_reports_what_its_readers_wrote(few_prepared, tmp_path, capsys):
    work = tmp_path / "work"
    argv = ["--dataset", str(few_prepared), "--work", str(work), "--split", "validation", "--max-steps", "1"]
    argv += ["--batch-size", "2", "--baseline-epochs", "1", "--shift-clips", "3", "--bootstrap", "200"]
    assert bench_learning.main([*argv, "--json", str(tmp_path / "table.json")]) == 0
    table = json.loads((tmp_path / "table.json").read_text())

    assert json.loads((work / "small-gemma3n" / "config.json").read_text())["text_config"]["hidden_size"] == 2048
    with safe_open(work / "gemma" / "final-adapter" / "adapter_model.safetensors", "np") as weights:
        keys = list(weights.keys())
    assert any("embed_vision" in key for key in keys)  # the projector: trained whole, saved with the adapter
    assert not any("vision_tower" in key for key in keys)  # the tower stays as built (zero-mean random filters)
    wers = {}
    for name, folder, column in [
        ("gemma", "eval-gemma", "prediction"),
        ("baseline", "eval-gemma", "baseline_prediction"),
        ("shuffled", "eval-shuffled", "prediction"),
        ("gguf", "eval-gguf", "prediction"),
    ]:
        records = [json.loads(line) for line in (work / folder / "predictions.jsonl").read_text().splitlines()]
        assert len(records) == table["clips"] == 3
        wers[name] = compute_grid_metrics([r[column] for r in records], [r["reference"] for r in records])["wer"]
        assert table["readers"][name]["wer"] == pytest.approx(wers[name])
    assert table["gemma_minus_shuffled"][0] == pytest.approx(wers["gemma"] - wers["shuffled"])
    assert table["gguf_minus_gemma"][0] == pytest.approx(wers["gguf"] - wers["gemma"])
    assert table["holds"] is (
        wers["shuffled"] - wers["gemma"] >= bench_learning.MARGIN
        and table["readers"]["gemma"]["wer_interval"][1] < table["readers"]["shuffled"]["wer_interval"][0]
    )
    assert all(0 <= shift <= 1 for shift in table["first_token_shift"].values())
    assert 0 < table["processor_round_trip"] < 2  # grey levels: the 768x768 resize keeps the cells
    assert np.isfinite(table["gemma_minus_baseline"]).all()

    assert "training the gemma reader" in capsys.readouterr().out
    assert bench_learning.main(argv) == 0
    assert "(log:" not in capsys.readouterr().out  # a rerun finds every step's output and redoes none
    assert bench_learning.main([*argv, "--baseline-epochs", "2"]) == 0  # the last flag wins
    redone = [line.split(" ...")[0] for line in capsys.readouterr().out.splitlines() if "(log:" in line]
    assert redone == ["training the baseline", "reading the validation clips with the gemma reader"]


def test_memorise_trains_on_the_clips_it_reads():
    """`--memorise N`: the first N train rows are trained on (train/sft.py's --max_samples) and the same first N
    train clips are read (run_eval's --max-samples), for 20 epochs unless told."""
    overrides, split, clips = bench_learning.plan(bench_learning.parse_args(["--memorise", "16"]))
    assert (overrides, split, clips) == (["--max_samples", "16", "--num_train_epochs", "20"], "train", 16)
    overrides, split, clips = bench_learning.plan(bench_learning.parse_args(["--memorise", "8", "--epochs", "3"]))
    assert (overrides, split, clips) == (["--max_samples", "8", "--num_train_epochs", "3.0"], "train", 8)
    assert bench_learning.plan(bench_learning.parse_args([])) == ([], "test", None)
