"""Whether a face is one the mouth crop can serve: near upright, near frontal, with a mouth the size of a mouth.

The crop is an axis-aligned box around the lip landmarks, so it serves the faces training saw (GRID's, upright and
frontal). A face rolled far, turned to profile or upside down still gets landmarks, and a box, and a mosaic of
something that is not a mouth; the reader then reads it with confidence. These pure functions of the landmarks (and
of face-detector scores, for upside-down faces, which Face Mesh fits as if upright) say when to refuse instead.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from lipagent.transform.speech import MOUTH_CORNERS

EYE_OUTER_CORNERS = (33, 263)
"""Face Mesh indices of the outer eye corners (the subject's right, then left)."""
NOSE_TIP = 1


@dataclass(frozen=True)
class FacePose:
    """What one frame's landmarks say about the face."""

    roll: float
    """Degrees the eye line is turned from horizontal (positive: clockwise in the image)."""
    yaw: float
    """Sideways offset of the nose tip from the eyes' midpoint, over the eye distance: 0 frontal, about
    0.43 x tan(yaw angle) turned (Face Mesh's own depth, rotated: 0.22 at 30 degrees, 0.40 at 45, 0.70 at 60)."""
    mouth_to_eyes: float
    """Inner mouth width over the outer eye corners' distance (0.41 to 0.60 on every frame of 470 real GRID clips
    of 11 speakers); it does not change as the face turns, so a value far outside is a mesh that is not a face."""


def face_pose(points: np.ndarray) -> FacePose:
    """The pose of one frame's (468, 2) pixel landmarks."""
    right, left = points[EYE_OUTER_CORNERS[0]], points[EYE_OUTER_CORNERS[1]]
    eye_line = left - right
    eyes = float(np.hypot(*eye_line))
    if eyes < 1e-6:
        return FacePose(roll=0.0, yaw=math.inf, mouth_to_eyes=math.inf)
    along = eye_line / eyes
    yaw = float(np.dot(points[NOSE_TIP] - (left + right) / 2, along)) / eyes
    mouth = float(np.hypot(*(points[MOUTH_CORNERS[1]] - points[MOUTH_CORNERS[0]])))
    return FacePose(roll=math.degrees(math.atan2(eye_line[1], eye_line[0])), yaw=yaw, mouth_to_eyes=mouth / eyes)


@dataclass(frozen=True)
class PoseLimits:
    """How far a face may be from GRID's before a clip is refused."""

    max_roll: float = 35.0
    """Degrees. The baseline reader on the 54 s1 test clips, every frame rolled: WER 0.31 upright, 0.33 at 10
    degrees, 0.40 at 20 (0.38 mirrored), 0.48 at 30, 0.54 at 45, 0.69 at 60 (a random sentence scores 0.81)."""
    max_yaw: float = 0.40
    """About 45 degrees turned (`FacePose.yaw`); GRID has no turned faces, so what reading costs below that is not
    measured. Real frontal GRID faces: -0.08 to 0.11."""
    mouth_to_eyes: tuple[float, float] = (0.25, 1.0)
    """The plausible range of `FacePose.mouth_to_eyes`, wide around the 0.41-0.60 of real faces."""


DEFAULT_POSE_LIMITS = PoseLimits()


def pose_problem(poses: Sequence[FacePose], limits: PoseLimits = DEFAULT_POSE_LIMITS) -> str | None:
    """Why the crop cannot serve this face (the median over the frames that showed one), or None when it can."""
    if not poses:
        return None
    roll = statistics.median(p.roll for p in poses)
    if abs(roll) > limits.max_roll:
        return (
            f"the face is rolled {abs(roll):.0f} degrees from upright (the mouth crop serves faces within "
            f"{limits.max_roll:.0f}); rotate the video so the face is upright"
        )
    yaw = statistics.median(p.yaw for p in poses)
    if abs(yaw) > limits.max_yaw:
        return "the face is turned too far from the camera for the mouth crop; film it from the front"
    ratio = statistics.median(p.mouth_to_eyes for p in poses)
    low, high = limits.mouth_to_eyes
    if not low <= ratio <= high:
        return (
            f"the lip landmarks do not sit like a mouth on this face (mouth width {ratio:.2f} of the eye distance, "
            f"real faces {low}-{high}): the landmarks are not on a mouth"
        )
    return None


def upside_down(scores: Iterable[tuple[float, float]], frames: int) -> bool:
    """Whether a face is upside down, from face-detector scores of `frames` frames as they are and turned by 180
    degrees: the turned view scores higher on most of the frames where either view shows a face. Face Mesh fits an
    upside-down face as if upright, lip box on the eyes, so landmarks alone cannot tell. On 470 real GRID clips
    (three frames each) the upright view scored 0.19 higher or more on 99% of frames and never lower. `scores` is
    read only until the answer is settled (two upright frames of three), each pair costing two detector runs."""
    upright = turned = 0
    for seen, (as_is, flipped) in enumerate(scores, 1):
        if max(as_is, flipped) > 0:
            turned += flipped > as_is
            upright += flipped <= as_is
        left = frames - seen
        if turned + left <= upright or turned > upright + left:
            break
    return turned > upright
