"""The transform on real s1 clips against what it made when the references were recorded
(tests/data/record_references.py): crop boxes to a quarter pixel, sampled frames and speech spans to the frame.
The other real-clip tests check shapes and counts; these notice a crop or a span that moves."""

from __future__ import annotations

import json
from dataclasses import astuple, replace
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
    assert found == DEFAULT_CONFIG.landmarked_count
    np.testing.assert_allclose(np.array(boxes), np.array(reference[view]), rtol=0, atol=BOX_TOLERANCE)


@pytest.mark.parametrize("clip", CLIPS)
def test_the_face_landmarkers_crop_boxes_land_where_recorded(clip, decoded):
    """The Tasks API's Face Landmarker with its model bundle: a different or broken bundle moves the lip boxes."""
    reference = REFERENCES["clips"][clip]
    config = replace(DEFAULT_CONFIG, landmarker="face_landmarker")
    boxes, found = crop_boxes([decoded[clip][i] for i in reference["sampled"]], process_landmarker(config), config)
    assert found == config.landmarked_count
    np.testing.assert_allclose(
        np.array(boxes), np.array(reference["face_landmarker_boxes"]), rtol=0, atol=BOX_TOLERANCE
    )
    default = np.array(reference["boxes"])
    assert np.abs(np.array(boxes) - default).max() > BOX_TOLERANCE, "the two landmarkers must be told apart"


FACE_ALIGNED = replace(DEFAULT_CONFIG, crop="face_aligned")


@pytest.mark.parametrize("clip", CLIPS)
def test_face_aligned_crops_land_where_recorded(clip, decoded):
    """Centre, size (from the eye distance) and angle (the eye line) of each frame's turned box."""
    reference = REFERENCES["clips"][clip]
    frames = [decoded[clip][i] for i in reference["sampled"]]
    boxes, found = crop_boxes(frames, process_landmarker(FACE_ALIGNED), FACE_ALIGNED)
    assert found == FACE_ALIGNED.landmarked_count
    np.testing.assert_allclose([astuple(b) for b in boxes], reference["face_aligned_boxes"], rtol=0, atol=BOX_TOLERANCE)


def test_a_face_aligned_crop_levels_a_rolled_face(decoded):
    """Every frame of a real clip turned 20 degrees about its centre: the face_aligned cells stay close to the upright
    ones (mean 2.8 grey levels apart when measured), the lip-box cells do not (15.7)."""
    import cv2

    from lipagent.transform.mosaic import build_mosaic

    reference = REFERENCES["clips"]["bbaf2n"]
    frames = [decoded["bbaf2n"][i] for i in reference["sampled"]]
    turn = cv2.getRotationMatrix2D((180, 144), 20, 1.0)
    rolled = [cv2.warpAffine(f, turn, (360, 288), borderMode=cv2.BORDER_REPLICATE) for f in frames]

    def change(config: MosaicConfig) -> float:
        upright, turned = (
            build_mosaic(f, crop_boxes(f, process_landmarker(config), config)[0], config).astype(float)
            for f in (frames, rolled)
        )
        return float(np.abs(upright - turned).mean())

    assert change(FACE_ALIGNED) < 4.0
    assert change(DEFAULT_CONFIG) > 12.0


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


def test_speech_is_found_on_tracked_openings_with_the_configs_onset(decoded, monkeypatch):
    """find_speech tracks the mouth (landmarks in tracking mode, whatever mode the mosaic's crops use: the recorded
    openings) and detects with the onset the mosaic settings name; prepare_frames passes its settings on."""
    import lipagent.transform.pipeline as pipeline

    reference = REFERENCES["clips"]["sbbbzp"]
    seen = []
    detect = pipeline.detect_span
    monkeypatch.setattr(
        pipeline, "detect_span", lambda openings, speech: seen.append(openings) or detect(openings, speech)
    )
    static = DEFAULT_CONFIG.with_overrides({"landmarks": "static"})  # how mosaics are cropped, not how speech is found
    assert find_speech(decoded["sbbbzp"], static) == tuple(reference["detected"]) == (29, 70)
    np.testing.assert_allclose(seen[0], reference["openings"], rtol=0, atol=1e-3)
    threshold = DEFAULT_CONFIG.with_overrides({"speech_onset": "threshold"})
    prepared = pipeline.prepare_frames(decoded["sbbbzp"], "auto", threshold)
    assert prepared.span == (20, 70) and prepared.how == "auto"


def test_a_span_past_the_last_frame_samples_up_to_the_last_frame(decoded):
    """A span may run past the video's end (90% of it must be there): the sampled frames stop at the last one."""
    from lipagent.transform.pipeline import clip_mosaic

    frames = decoded["bbaf2n"]
    mosaic = clip_mosaic(frames, (50, 76), DEFAULT_CONFIG)
    assert mosaic.frame_indices == tuple(sample_indices(50, 76, DEFAULT_CONFIG.num_frames, len(frames)))
    assert mosaic.frame_indices[-1] == len(frames) - 1 == 74


def test_frames_with_a_given_or_whole_span_say_so(decoded):
    from lipagent.transform.pipeline import prepare_frames

    given = prepare_frames(decoded["bbaf2n"], (20, 50))
    assert (given.span, given.how) == ((20, 50), "given") and "as given" in given.describe()
    whole = prepare_frames(decoded["bbaf2n"], "whole")
    assert (whole.span, whole.how) == ((0, 74), "whole") and "the whole clip" in whole.describe()


def test_frames_are_read_over_the_detected_span_unless_told_and_need_a_mosaics_worth(decoded):
    from lipagent.transform.pipeline import ClipRejected, prepare_frames

    frames = decoded["sbbbzp"]
    assert prepare_frames(frames).span == (29, 70)
    assert prepare_frames(frames[:24], "whole").mosaic.frame_indices == tuple(range(24))
    short = prepare_frames(frames[:12], "whole").mosaic.frame_indices
    assert short == tuple(sample_indices(0, 11, 24)) and set(short) == set(range(12)), "an utterance's worth repeats"
    with pytest.raises(ClipRejected, match="too few frames: 11 frames given; a mosaic needs at least 12$"):
        prepare_frames(frames[:11], "whole")


def test_every_way_in_builds_the_mosaic_its_settings_ask_for(decoded, unpacked):
    import cv2

    from lipagent.transform.pipeline import prepare_frames, prepare_video

    wide = DEFAULT_CONFIG.with_overrides({"rows": "2", "cols": "6"})
    path = unpacked / "s1" / "bbaf2n.mpg"
    for prepared in (
        prepare_frames(decoded["bbaf2n"], (20, 50), wide),
        prepare_video(path, (20, 50), wide),
        prepare_video(path, "whole", wide),
    ):
        image = cv2.imdecode(np.frombuffer(prepared.mosaic.jpeg, np.uint8), cv2.IMREAD_COLOR)
        assert image.shape == (2 * 80, 6 * 100, 3)
