"""bench/bench_speech.py runs end to end (a smoke run: a few clips, one epoch), so the detector's bench cannot rot."""

from __future__ import annotations

import json

import bench_speech


def test_smoke_run_measures_spans_and_trains_the_readers_it_compares(grid_dir, tmp_path, capsys):
    code = bench_speech.main(
        [
            "--detector",
            "default",
            "--detector",
            "onset=threshold",
            "--train-on-detected",
            "--train-on-mix",
            "--grid-dir",
            str(grid_dir),
            "--limit",
            "12",
            "--epochs",
            "1",
            "--folds",
            "2",
            "--seeds",
            "0",
            "--bootstrap",
            "200",
            "--work",
            str(tmp_path / "work"),
            "--json",
            str(tmp_path / "table.json"),
        ]
    )
    assert code == 0
    table = json.loads((tmp_path / "table.json").read_text())
    assert [e["detector"] for e in table["span_errors"]] == ["detected span", "detected (onset=threshold)"]
    assert all(0 <= e["start_within_3"] <= 1 and e["start_abs_mean"] >= 0 for e in table["span_errors"])
    conditions = {row["condition"] for row in table["wer"]}
    assert {"aligned span", "whole clip", "detected span, reader trained on its spans"} <= conditions
    assert "detected (onset=threshold), reader trained on its spans" in conditions
    mix = ", reader trained on aligned + detected spans (1 epoch)"
    assert {"aligned span" + mix, "detected span" + mix} <= conditions
    assert "| start within 3 |" in capsys.readouterr().out
