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
    with pytest.raises(ValueError, match="neither default, legacy"):
        bench_accuracy.parse_variant("fast")
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
    code = bench_accuracy.main(
        [
            "default",
            "legacy,landmarker=face_mesh_tasks",
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
    assert table["clips"] == 30 and [v["variant"] for v in table["variants"]] == ["default", legacy_name]
    legacy = table["variants"][1]
    assert legacy["diff_low"] <= legacy["diff"] <= legacy["diff_high"]
    assert legacy["config"]["landmarks"] == "tracking"
    printed = capsys.readouterr().out
    assert f"| `{legacy_name}` |" in printed and "2-fold cross-fitting" in printed
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
            "1",
            "--seeds",
            "0",
            "--work",
            str(tmp_path / "work"),
        ]
    )
    assert again == 0 and "reusing" in capsys.readouterr().out
