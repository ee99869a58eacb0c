"""The transform on real s1 clips against what it made when the references were recorded
(tests/data/record_references.py): crop boxes to a quarter pixel, sampled frames and speech spans to the frame.
The other real-clip tests check shapes and counts; these notice a crop or a span that moves."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lipagent.config import DEFAULT_CONFIG, MosaicConfig
from lipagent.transform.mouth import process_landmarker
from lipagent.transform.pipeline import crop_boxes, decode_all, find_speech
from lipagent.transform.sampling import sample_indices
from lipagent.transform.speech import detect_span, mouth_opening

REFERENCES = json.loads(Path(__file__).with_name("data").joinpath("real_clip_references.json").read_text())
CLIPS = sorted(REFERENCES["clips"])
BOX_TOLERANCE = 0.25
"""Pixels: MediaPipe's landmarks on the same frames agree far closer; a half-pixel shift must show."""


def test_the_references_were_made_with_todays_default_mosaic():
    assert MosaicConfig.from_dict(REFERENCES["mosaic"]) == DEFAULT_CONFIG, (
        "the default mosaic changed: re-record the references (tests/data/record_references.py)"
    )


@pytest.fixture(scope="module")
def decoded(unpacked: Path) -> dict[str, list[np.ndarray]]:
    return {clip: decode_all(unpacked / "s1" / f"{clip}.mpg") for clip in CLIPS}


@pytest.mark.parametrize("clip", CLIPS)
def test_the_aligned_span_samples_the_recorded_frames(clip, decoded):
    reference = REFERENCES["clips"][clip]
    assert len(decoded[clip]) == reference["frames"]
    assert sample_indices(*reference["aligned"], DEFAULT_CONFIG.num_frames, reference["frames"]) == reference["sampled"]


@pytest.mark.parametrize("view", ["boxes", "portrait_boxes"])
@pytest.mark.parametrize("clip", CLIPS)
def test_crop_boxes_land_where_recorded(clip, view, decoded):
    reference = REFERENCES["clips"][clip]
    frames = [decoded[clip][i] for i in reference["sampled"]]
    if view == "portrait_boxes":
        left, right = REFERENCES["portrait_columns"]
        frames = [frame[:, left:right] for frame in frames]
    boxes, found = crop_boxes(frames, process_landmarker(DEFAULT_CONFIG), DEFAULT_CONFIG)
    assert found == DEFAULT_CONFIG.num_frames
    np.testing.assert_allclose(np.array(boxes), np.array(reference[view]), rtol=0, atol=BOX_TOLERANCE)


@pytest.mark.parametrize("clip", CLIPS)
def test_the_detector_finds_the_recorded_span_in_the_recorded_openings(clip):
    reference = REFERENCES["clips"][clip]
    assert detect_span(reference["openings"]) == tuple(reference["detected"])


@pytest.mark.parametrize("clip", CLIPS)
def test_a_real_clip_gives_the_recorded_openings_and_span(clip, decoded):
    reference = REFERENCES["clips"][clip]
    points = process_landmarker(DEFAULT_CONFIG, mode="tracking").clip_points(decoded[clip])
    np.testing.assert_allclose([mouth_opening(p) for p in points], reference["openings"], rtol=0, atol=1e-3)
    assert find_speech(decoded[clip]) == tuple(reference["detected"])
