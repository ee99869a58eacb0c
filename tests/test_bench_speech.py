"""bench/bench_speech.py runs end to end (a smoke run: a few clips, one epoch), so the detector's bench cannot rot."""

from __future__ import annotations

import json
from pathlib import Path

import bench_speech
import numpy as np
import pytest

from lipagent.config import DEFAULT_CONFIG
from lipagent.data.align import parse_alignment
from lipagent.transform.mouth import process_landmarker
from lipagent.transform.pipeline import decode_all
from lipagent.transform.speech import SpeechConfig, detect_span, mouth_opening


def span_errors(unpacked: Path, detector: SpeechConfig) -> tuple[list[int], list[int]]:
    """Start and end errors (frames, detected - aligned) of the first 12 s1 clips by id, found here."""
    starts, ends = [], []
    for path in sorted((unpacked / "s1").glob("*.mpg"))[:12]:
        alignment = parse_alignment((unpacked / "alignments" / "s1" / f"{path.stem}.align").read_text())
        points = process_landmarker(DEFAULT_CONFIG, mode="tracking").clip_points(decode_all(path))
        start, end = detect_span([mouth_opening(p) for p in points], detector)
        starts.append(start - alignment.speech_start_frame)
        ends.append(end - alignment.speech_end_frame)
    return starts, ends


def test_smoke_run_measures_spans_and_trains_the_readers_it_compares(
    grid_dir, unpacked, s31_unpacked, tmp_path, capsys
):
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
            "--other-speakers",
            str(grid_dir.parent / "grid-s31"),
            "--work",
            str(tmp_path / "work"),
            "--json",
            str(tmp_path / "table.json"),
        ]
    )
    assert code == 0
    table = json.loads((tmp_path / "table.json").read_text())
    rows = [(e["detector"], e["speaker"]) for e in table["span_errors"]]
    detectors = ["detected span", "detected (onset=threshold)"]
    assert rows == [(d, "s1") for d in detectors] + [(d, "s31") for d in detectors]
    for errors, onset in zip(table["span_errors"], ("jump", "threshold")):
        assert errors["clips"] == 12 and errors["no_speech_found"] == 0
        starts, ends = span_errors(unpacked, SpeechConfig(onset=onset))
        assert errors["start_abs_mean"] == pytest.approx(np.mean(np.abs(starts)))
        assert errors["start_within_3"] == pytest.approx(np.mean(np.abs(starts) <= 3))
        assert errors["end_median"] == pytest.approx(np.median(ends))
        assert errors["end_within_3"] == pytest.approx(np.mean(np.abs(ends) <= 3))
    s31 = table["span_errors"][2]
    ends = []
    for path in sorted((s31_unpacked / "s31").glob("*.mpg")):
        alignment = parse_alignment((s31_unpacked / "alignments" / "s31" / f"{path.stem}.align").read_text())
        points = process_landmarker(DEFAULT_CONFIG, mode="tracking").clip_points(decode_all(path))
        ends.append(detect_span([mouth_opening(p) for p in points])[1] - alignment.speech_end_frame)
    assert s31["clips"] == len(ends) == 10 and s31["no_speech_found"] == 0
    assert s31["end_within_3"] == pytest.approx(np.mean(np.abs(ends) <= 3))
    assert s31["end_median"] == pytest.approx(np.median(ends))
    conditions = {row["condition"] for row in table["wer"]}
    assert {"aligned span", "whole clip", "detected span, reader trained on its spans"} <= conditions
    assert "detected (onset=threshold), reader trained on its spans" in conditions
    mix = ", reader trained on aligned + detected spans (1 epoch)"
    assert {"aligned span" + mix, "detected span" + mix} <= conditions
    assert "| end within 3 |" in capsys.readouterr().out
    assert table["mosaic"] == DEFAULT_CONFIG.describe()
