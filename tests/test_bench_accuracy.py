"""bench/bench_accuracy.py runs end to end (a smoke run: a few clips, one epoch), so the yardstick cannot rot."""

from __future__ import annotations

import json
from pathlib import Path

import bench_accuracy
import pytest

from lipagent.config import DEFAULT_CONFIG, LEGACY_SETTINGS

REPO = Path(__file__).resolve().parents[1]


def test_variants_parse_from_the_command_line():
    assert bench_accuracy.parse_variant("default").config == DEFAULT_CONFIG
    legacy = bench_accuracy.parse_variant("legacy,resampling=linear").config
    assert (legacy.landmarks, legacy.crop, legacy.resampling) == (LEGACY_SETTINGS["landmarks"], "cell_aspect", "linear")
    assert bench_accuracy.parse_variant("landmarks=tracking").config.landmarks == "tracking"
    with pytest.raises(ValueError, match="neither default, legacy, processor nor setting=value"):
        bench_accuracy.parse_variant("fast")
    through = bench_accuracy.parse_variant("rows=4,cols=6,processor")
    assert through.processor and (through.config.rows, through.config.cols) == (4, 6)
    assert not bench_accuracy.parse_variant("default").processor


def test_a_frame_in_gemma_3ns_image_is_its_share_of_768_squared_and_256_tokens():
    cells = bench_accuracy.processor_cells(DEFAULT_CONFIG.with_overrides({"rows": "3", "cols": "4"}))
    assert cells == pytest.approx({"cell_width": 192.0, "cell_height": 256.0, "tokens": 256 / 12})
    wide = bench_accuracy.processor_cells(DEFAULT_CONFIG)
    assert wide == pytest.approx({"cell_width": 128.0, "cell_height": 192.0, "tokens": 256 / 24})


def test_the_processor_view_resizes_to_the_square_and_back(prepared):
    import io

    import datasets
    import numpy as np
    from PIL import Image

    out, _ = prepared
    jpeg = datasets.load_dataset(str(out), split="test").cast_column("image", datasets.Image(decode=False))[0]
    image = Image.open(io.BytesIO(jpeg["image"]["bytes"])).convert("RGB")
    back = bench_accuracy.through_processor()(image)
    assert back.size == image.size == (600, 320)
    difference = np.abs(np.asarray(back, dtype=float) - np.asarray(image, dtype=float))
    # Enlarged 1.3x and 2.4x, then averaged back: a little blur, never a different picture.
    assert 0.05 < difference.mean() < 2.0
    assert {bench_accuracy.fold_of(f"v{i}", 3) for i in range(30)} == {0, 1, 2}


def test_paired_interval_brackets_a_known_difference():
    import numpy as np

    reference = np.zeros(200)
    worse = np.ones(200) * 0.6
    diff, low, high = bench_accuracy.paired_interval(worse, reference, 6, draws=2000)
    assert diff == pytest.approx(0.1) and low <= diff <= high
    same, low, high = bench_accuracy.paired_interval(np.arange(200) % 3, np.arange(200) % 3, 6, draws=2000)
    assert same == low == high == 0


def test_smoke_run_prints_a_table_with_paired_intervals(grid_dir, tmp_path, capsys):
    work = ["--grid-dir", str(grid_dir), "--limit", "30", "--work", str(tmp_path / "work")]
    assert bench_accuracy.main(["default", *work, "--build-only"]) == 0
    assert capsys.readouterr().out.strip().endswith("built the datasets of default")
    assert not list((tmp_path / "work").rglob("predictions-*.json")), "--build-only trains nothing"
    code = bench_accuracy.main(
        [
            "default",
            "legacy,landmarker=face_mesh_tasks",
            "default,processor",
            "--grid-dir",
            str(grid_dir),
            "--limit",
            "30",
            "--epochs",
            "1",
            "--folds",
            "2",
            "--seeds",
            "0",
            "--work",
            str(tmp_path / "work"),
            "--json",
            str(tmp_path / "table.json"),
            "--bootstrap",
            "500",
        ]
    )
    assert code == 0
    table = json.loads((tmp_path / "table.json").read_text())
    legacy_name = "legacy,landmarker=face_mesh_tasks"
    names = [v["variant"] for v in table["variants"]]
    assert table["clips"] == 30 and names == ["default", legacy_name, "default,processor"]
    legacy, through = table["variants"][1:]
    assert through["processor"] and through["config"] == table["variants"][0]["config"]
    assert "read through Gemma 3n's resize" in through["settings"]
    assert legacy["diff_low"] <= legacy["diff"] <= legacy["diff_high"]
    assert legacy["config"]["landmarks"] == "tracking"
    printed = capsys.readouterr().out
    assert f"| `{legacy_name}` |" in printed and "2-fold cross-fitting" in printed
    assert printed.count("reusing") == 4, "the datasets built first, and those a processor variant shares, are reused"
    assert "| 128x192 px, 10.7 tokens |" in printed
    s31 = [entry["others"]["s31"] for entry in table["variants"]]
    assert [(o["clips"], o["models"]) for o in s31] == [(10, 2)] * 3, "each s31 clip read by both fold models"
    assert "s31: 10 clips never trained on, each read by all 2 models" in printed
    again = bench_accuracy.main(
        [
            "default",
            "--grid-dir",
            str(grid_dir),
            "--limit",
            "30",
            "--epochs",
            "1",
            "--folds",
            "2",
            "--seeds",
            "0",
            "--work",
            str(tmp_path / "work"),
            "--json",
            str(tmp_path / "again.json"),
        ]
    )
    printed = capsys.readouterr().out
    assert (
        again == 0 and "reusing" in printed and "predictions of an earlier run" in printed and "fold 1/2" not in printed
    )
    assert json.loads((tmp_path / "again.json").read_text())["variants"][0] == table["variants"][0]
