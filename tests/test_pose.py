"""Faces the mouth crop cannot serve are refused (worked landmarks, real clips turned over); mild roll is read."""

from __future__ import annotations

import math
import re

import cv2
import numpy as np
import pytest

from lipagent.cli import main as lipagent_main
from lipagent.config import DEFAULT_CONFIG
from lipagent.transform.pipeline import ClipRejected, clip_mosaic, decode_all
from lipagent.transform.pose import (
    DEFAULT_POSE_LIMITS,
    EYE_OUTER_CORNERS,
    NOSE_TIP,
    FacePose,
    face_pose,
    pose_problem,
    upside_down,
)
from lipagent.transform.skips import SkipReason
from lipagent.transform.speech import MOUTH_CORNERS


def worked_face(roll: float = 0.0, nose_offset: float = 0.0, mouth_width: float = 50.0) -> np.ndarray:
    """Landmarks with eyes 100 px apart, the nose `nose_offset` px along the eye line from their middle, the mouth
    `mouth_width` wide, all turned by `roll` degrees (clockwise in the image, y down) about the eyes' middle."""
    points = np.zeros((468, 2))
    points[EYE_OUTER_CORNERS[0]], points[EYE_OUTER_CORNERS[1]] = (-50, 0), (50, 0)
    points[NOSE_TIP] = (nose_offset, 40)
    points[MOUTH_CORNERS[0]], points[MOUTH_CORNERS[1]] = (-mouth_width / 2, 80), (mouth_width / 2, 80)
    turn = math.radians(roll)
    rotation = np.array([[math.cos(turn), -math.sin(turn)], [math.sin(turn), math.cos(turn)]])
    return points @ rotation.T + (200, 150)


def test_the_pose_of_worked_landmarks():
    pose = face_pose(worked_face(roll=30, nose_offset=20, mouth_width=50))
    assert (
        pose.roll == pytest.approx(30) and pose.yaw == pytest.approx(0.2) and pose.mouth_to_eyes == pytest.approx(0.5)
    )
    assert face_pose(worked_face(roll=-120)).roll == pytest.approx(-120)
    assert face_pose(worked_face(nose_offset=-30)).yaw == pytest.approx(-0.3)
    collapsed = face_pose(np.zeros((468, 2)))
    assert collapsed.yaw == math.inf and collapsed.mouth_to_eyes == math.inf


@pytest.mark.parametrize(
    "poses, problem",
    [
        ([FacePose(35.0, 0.40, 0.25)] * 3, None),
        ([FacePose(-35.0, -0.40, 1.0)] * 3, None),
        (
            [FacePose(35.5, 0.0, 0.5)],
            "the face is rolled 36 degrees from upright (the mouth crop serves faces within 35); rotate the video "
            "so the face is upright",
        ),
        (
            [FacePose(-90.0, 0.0, 0.5)],
            "the face is rolled 90 degrees from upright (the mouth crop serves faces within 35); rotate the video "
            "so the face is upright",
        ),
        (
            [FacePose(0.0, -0.41, 0.5)],
            "the face is turned too far from the camera for the mouth crop; film it from the front",
        ),
        (
            [FacePose(0.0, 0.0, 0.24)],
            "the lip landmarks do not sit like a mouth on this face (mouth width 0.24 of the eye distance, real faces "
            "0.25-1.0): the landmarks are not on a mouth",
        ),
        (
            [FacePose(0.0, 0.0, 1.01)],
            "the lip landmarks do not sit like a mouth on this face (mouth width 1.01 of "
            "the eye distance, real faces 0.25-1.0): the landmarks are not on a mouth",
        ),
        ([], None),
    ],
)
def test_a_pose_beyond_the_limits_is_a_problem_at_the_limits_it_is_not(poses, problem):
    assert pose_problem(poses) == problem


def test_the_median_frame_decides_so_one_odd_frame_does_not():
    upright, rolled = FacePose(0.0, 0.0, 0.5), FacePose(80.0, 0.9, 3.0)
    assert pose_problem([upright, upright, rolled]) is None
    assert pose_problem([upright, rolled, rolled]) is not None
    assert DEFAULT_POSE_LIMITS.max_roll == 35.0


@pytest.mark.parametrize(
    "scores, turned",
    [
        ([(0.95, 0.65), (0.93, 0.70), (0.96, 0.60)], False),
        ([(0.65, 0.95), (0.70, 0.93), (0.60, 0.96)], True),
        ([(0.65, 0.95), (0.95, 0.65), (0.0, 0.0)], False),  # a tie among the frames that show a face is not enough
        ([(0.65, 0.95), (0.95, 0.65), (0.60, 0.90)], True),
        ([(0.0, 0.0), (0.0, 0.0), (0.0, 0.9)], True),  # frames without a face in either view do not vote
        ([(0.9, 0.9)], False),  # equal is not higher
        ([], False),
    ],
)
def test_upside_down_is_the_turned_view_scoring_higher_on_most_frames(scores, turned):
    assert upside_down(scores, len(scores)) is turned


def test_upside_down_reads_scores_only_until_the_answer_is_settled():
    read = []

    def scores(pairs):
        for pair in pairs:
            read.append(pair)
            yield pair

    assert upside_down(scores([(0.9, 0.6), (0.9, 0.6), (0.1, 0.9)]), 3) is False and len(read) == 2
    read.clear()
    assert upside_down(scores([(0.6, 0.9), (0.6, 0.9), (0.9, 0.1)]), 3) is True and len(read) == 2
    read.clear()
    assert upside_down(scores([(0.0, 0.0), (0.9, 0.6), (0.6, 0.9)]), 3) is False and len(read) == 2, "a tie at best"
    read.clear()
    assert upside_down(scores([(0.9, 0.6), (0.6, 0.9), (0.6, 0.9)]), 3) is True and len(read) == 3


def _turned(frame: np.ndarray, degrees: float, mirrored: bool = False) -> np.ndarray:
    frame = frame[:, ::-1] if mirrored else frame
    height, width = frame.shape[:2]
    turn = cv2.getRotationMatrix2D((width / 2, height / 2), degrees, 1.0)
    return cv2.warpAffine(np.ascontiguousarray(frame), turn, (width, height), borderMode=cv2.BORDER_REPLICATE)


@pytest.fixture(scope="module")
def frames(unpacked):
    return decode_all(unpacked / "s1" / "bbaf2n.mpg")


@pytest.mark.parametrize(
    "turn, said",
    [
        (lambda f: np.ascontiguousarray(f[::-1, ::-1]), r"the face is upside down; rotate the video"),
        (lambda f: np.ascontiguousarray(f[::-1]), r"the face is upside down; rotate the video"),  # and mirrored
        (lambda f: cv2.rotate(f, cv2.ROTATE_90_CLOCKWISE), r"the face is rolled (8[7-9]|9[0-3]) degrees from upright"),
        (lambda f: _turned(f, 45), r"the face is rolled 4[3-8] degrees from upright"),
    ],
)
def test_a_real_face_the_crop_cannot_serve_is_refused_not_read(frames, turn, said):
    with pytest.raises(ClipRejected) as refused:
        clip_mosaic([turn(f) for f in frames], (23, 52), DEFAULT_CONFIG)
    assert refused.value.reason is SkipReason.FACE_POSE and re.match(said, refused.value.detail), refused.value


@pytest.mark.parametrize("degrees, mirrored", [(0, False), (0, True), (20, False), (-20, True)])
def test_mild_roll_and_mirroring_are_read(frames, degrees, mirrored):
    mosaic = clip_mosaic([_turned(f, degrees, mirrored) for f in frames], (23, 52), DEFAULT_CONFIG)
    assert mosaic.face_frames == DEFAULT_CONFIG.landmarked_count


def test_transcribe_refuses_an_upside_down_video_in_one_line(frames, baseline_dir, tmp_path, capsys):
    path = tmp_path / "upside-down.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"FFV1"), 25, (360, 288))
    for frame in frames:
        writer.write(np.ascontiguousarray(frame[::-1, ::-1]))
    writer.release()
    assert lipagent_main(["transcribe", str(path), "--model", str(baseline_dir)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1 and "the face is upside down" in captured.err, captured


def test_where_no_speech_is_found_a_face_the_crop_cannot_serve_is_named_instead(frames):
    """Face Mesh's "mouth" on an upside-down face is its eyes: finding no speech there, the reason given is the face."""
    from lipagent.transform.pipeline import find_speech
    from lipagent.transform.speech import NoSpeechFound, SpeechConfig

    never = SpeechConfig(start_threshold=1.0, stop_threshold=1.0)
    with pytest.raises(ClipRejected, match="the face is upside down"):
        find_speech([np.ascontiguousarray(f[::-1, ::-1]) for f in frames], DEFAULT_CONFIG, never)
    with pytest.raises(NoSpeechFound):
        find_speech(frames, DEFAULT_CONFIG, never)
