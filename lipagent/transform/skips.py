"""Why a clip did not become a dataset row: one vocabulary for the builder, the transform and the card.

Kept apart from `lipagent.transform.pipeline` so that the `datasets` builder, which only pairs files, does not import
MediaPipe and OpenCV to name a reason."""

from __future__ import annotations

from enum import Enum


class SkipReason(str, Enum):
    """Why a clip did not become a row. The values are what the summary and dataset card show."""

    NO_ALIGNMENT = "video without alignment"
    NO_VIDEO = "alignment without video"
    BAD_ALIGNMENT = "alignment unreadable"
    NOT_IN_GRAMMAR = "transcription outside the GRID grammar"
    UNDECODABLE = "video does not decode"
    TOO_FEW_FRAMES = "video has too few frames"
    FACE_NOT_FOUND = "face found too rarely"
    FACE_POSE = "face the mouth crop cannot serve"
    NO_SPEECH = "no speech found from the mouth"
