"""Decoding only the frames a mosaic needs, sequentially (seeking in GRID .mpg files is unreliable)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np

from lipagent.quiet import quiet_native_stderr


class VideoError(ValueError):
    """A file that does not decode as a video."""


def read_frames(path: str | Path, wanted: Iterable[int] | None = None) -> tuple[dict[int, np.ndarray], int]:
    """Frames `wanted` (BGR, by index) and the number of frames the file really has.

    Every frame is grabbed, so the count comes from reading, never from the container's header
    (which is wrong for 74-frame GRID videos); only wanted frames are converted to pixels.
    `wanted=None` keeps every frame.
    """
    with quiet_native_stderr():  # FFmpeg's "ac-tex damaged" on some GRID clips; damage shows as a VideoError
        return _read(path, wanted)


def _read(path: str | Path, wanted: Iterable[int] | None) -> tuple[dict[int, np.ndarray], int]:
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise VideoError(f"{path}: cannot be opened as a video")
    keep = None if wanted is None else set(wanted)
    frames: dict[int, np.ndarray] = {}
    count = 0
    try:
        while capture.grab():
            if keep is None or count in keep:
                ok, frame = capture.retrieve()
                if not ok or frame is None:
                    raise VideoError(f"{path}: frame {count} does not decode")
                frames[count] = frame
            count += 1
    finally:
        capture.release()
    if count == 0:
        raise VideoError(f"{path}: no frame decodes")
    return frames, count


def read_sampled_frames(path: str | Path, indices: list[int]) -> tuple[list[np.ndarray], list[int], int]:
    """The frames at `indices`, clamped to those that exist, with the clamped indices and frame count.

    The frame count is only known after reading, so a clip shorter than the indices assume is read a
    second time for its last frame (rare: only when speech runs to the very end).
    """
    frames, count = read_frames(path, indices)
    clamped = [min(i, count - 1) for i in indices]
    missing = {i for i in clamped if i not in frames}
    if missing:
        extra, _ = read_frames(path, missing)
        frames.update(extra)
    return [frames[i] for i in clamped], clamped, count


def frame_rate(path: str | Path) -> float | None:
    """The frames per second the file's header gives, or None when it gives none (durations then assume 25)."""
    capture = cv2.VideoCapture(str(path))
    try:
        fps = capture.get(cv2.CAP_PROP_FPS) if capture.isOpened() else 0.0
    finally:
        capture.release()
    return float(fps) if fps and fps > 0 else None
