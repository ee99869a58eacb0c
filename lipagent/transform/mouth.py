"""Where the mouth is: MediaPipe Face Mesh lip landmarks turned into crop boxes.

The detector is created lazily, once per process: once a process has made a Face Mesh (even one
since closed), workers forked from it crash in malloc, and one held by the mapped function would
make it unhashable. `face_mesh_created_here` lets the map stage start its workers another way.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import cv2
import mediapipe as mp
import numpy as np

from lipagent.config import MosaicConfig
from lipagent.quiet import quiet_native_stderr
from lipagent.transform.mosaic import FloatBox

LIP_LANDMARKS: tuple[int, ...] = (
    0, 13, 14, 17, 37, 39, 40, 61, 78, 80, 81, 82, 84, 87, 88, 91, 95, 146, 178, 181,
    185, 191, 267, 269, 270, 291, 308, 310, 311, 312, 314, 317, 318, 321, 324, 375, 402, 405, 409, 415,
)  # fmt: skip
"""The 40 Face Mesh indices of FACEMESH_LIPS (468-point mesh), the same set for training and inference."""


def lip_box(lips: np.ndarray, width: int, height: int) -> FloatBox:
    """Pixel bounds of lip landmarks given as (N, 2) in Face Mesh's normalised x, y."""
    x0, y0 = lips.min(axis=0)
    x1, y1 = lips.max(axis=0)
    return float(x0) * width, float(y0) * height, float(x1) * width, float(y1) * height


def crop_box(lips: FloatBox, padding: float, aspect: float | None, width: int, height: int) -> FloatBox:
    """The lip box padded by `padding` of its size on each side, grown to `aspect` (width/height) when one
    is given (so the cell is never stretched; None keeps the padded box's own shape), at least 2 px, and
    moved inside the frame. Floats: `lipagent.transform.mosaic` decides how to cut it."""
    x0, y0, x1, y1 = lips
    w = (x1 - x0) * (1 + 2 * padding)
    h = (y1 - y0) * (1 + 2 * padding)
    if aspect is not None:
        if w / max(h, 1e-6) < aspect:
            w = h * aspect
        else:
            h = w / aspect
    w, h = min(max(w, 2.0), float(width)), min(max(h, 2.0), float(height))
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    left = min(max(cx - w / 2, 0.0), width - w)
    top = min(max(cy - h / 2, 0.0), height - h)
    return left, top, left + w, top + h


def fill_missing(boxes: Sequence[FloatBox | None]) -> list[FloatBox]:
    """Each missing box borrowed from the nearest frame that has one (the earlier one on a tie)."""
    found = [i for i, b in enumerate(boxes) if b is not None]
    if not found:
        raise ValueError("no frame has a face to borrow a box from")
    return [b if b is not None else boxes[min(found, key=lambda j: (abs(j - i), j))] for i, b in enumerate(boxes)]


def min_faces(config: MosaicConfig) -> int:
    """Sampled frames that must show a face for a clip to be used."""
    return math.ceil(config.min_face_ratio * config.num_frames - 1e-9)


class LipLandmarker:
    """Face Mesh lip boxes for the frames of one clip at a time, in the mode `config.landmarks` names.

    Tracking mode (the default) carries landmarks from one sampled frame to the next: it read 1.3 WER points
    better than static mode in the accuracy table (docs/results.md), and it is what must look at every frame of a camera
    stream. Static mode detects the face afresh in every frame.
    Either way the state is reset at each clip, so a clip's mosaic never depends on the clip before it.
    """

    def __init__(self, config: MosaicConfig, mode: str | None = None) -> None:
        _CREATORS.add(os.getpid())
        self.mode = mode or config.landmarks
        with quiet_native_stderr():
            self._mesh = mp.solutions.face_mesh.FaceMesh(
                static_image_mode=self.mode == "static",
                max_num_faces=1,
                refine_landmarks=False,
                min_detection_confidence=config.min_detection_confidence,
                min_tracking_confidence=config.min_tracking_confidence,
            )
            self._mesh.process(np.zeros((64, 64, 3), dtype=np.uint8))
        self._detector = None

    def _landmarks(self, frame_bgr: np.ndarray) -> Sequence | None:
        result = self._mesh.process(cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2RGB))
        return result.multi_face_landmarks[0].landmark if result.multi_face_landmarks else None

    def points(self, frame_bgr: np.ndarray) -> np.ndarray | None:
        """The face's 468 landmarks in one frame as (468, 2) pixel x, y (None: no face), carrying tracking state
        from the previous call."""
        landmarks = self._landmarks(frame_bgr)
        if landmarks is None:
            return None
        height, width = frame_bgr.shape[:2]
        return np.array([(p.x * width, p.y * height) for p in landmarks], dtype=np.float64)

    def face(self, frame_bgr: np.ndarray) -> tuple[FloatBox, np.ndarray] | None:
        """The lip box and the (468, 2) pixel landmarks in one frame, carrying tracking state from the previous
        call."""
        landmarks = self._landmarks(frame_bgr)
        if landmarks is None:
            return None
        lips = np.array([(landmarks[i].x, landmarks[i].y) for i in LIP_LANDMARKS], dtype=np.float64)
        height, width = frame_bgr.shape[:2]
        points = np.array([(p.x * width, p.y * height) for p in landmarks], dtype=np.float64)
        return lip_box(lips, width, height), points

    def clip_faces(self, frames_bgr: Sequence[np.ndarray]) -> list[tuple[FloatBox, np.ndarray] | None]:
        """Lip boxes and landmarks for the frames of a new clip (tracking state reset first)."""
        with quiet_native_stderr():
            self._mesh.reset()
            return [self.face(frame) for frame in frames_bgr]

    def clip_boxes(self, frames_bgr: Sequence[np.ndarray]) -> list[FloatBox | None]:
        """Lip boxes for the frames of a new clip (tracking state reset first)."""
        return [None if face is None else face[0] for face in self.clip_faces(frames_bgr)]

    def face_scores(self, frame_bgr: np.ndarray) -> tuple[float, float]:
        """MediaPipe's face-detector score for the frame as it is and turned by 180 degrees (0: no face); an
        upside-down face scores higher turned (`lipagent.transform.pose.upside_down`)."""
        with quiet_native_stderr():
            if self._detector is None:
                self._detector = mp.solutions.face_detection.FaceDetection(
                    model_selection=0, min_detection_confidence=0.1
                )
            scores = []
            for frame in (frame_bgr, np.ascontiguousarray(frame_bgr[::-1, ::-1])):
                found = self._detector.process(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)).detections or []
                scores.append(max((float(d.score[0]) for d in found), default=0.0))
        return scores[0], scores[1]

    def clip_points(self, frames_bgr: Sequence[np.ndarray]) -> list[np.ndarray | None]:
        """Landmarks for every frame of a new clip (tracking state reset first)."""
        with quiet_native_stderr():
            self._mesh.reset()
            return [self.points(frame) for frame in frames_bgr]

    def stream_points(self, frame_bgr: np.ndarray) -> np.ndarray | None:
        """Landmarks for the next frame of a stream (no reset: a camera is one long clip)."""
        with quiet_native_stderr():
            return self.points(frame_bgr)

    def close(self) -> None:
        self._mesh.close()
        if self._detector is not None:
            self._detector.close()


_LANDMARKERS: dict[tuple[int, MosaicConfig, str | None], LipLandmarker] = {}
_CREATORS: set[int] = set()


def face_mesh_created_here() -> bool:
    """Whether this process has ever made a Face Mesh (and so must not fork workers that use one)."""
    return os.getpid() in _CREATORS


def process_landmarker(config: MosaicConfig, mode: str | None = None) -> LipLandmarker:
    """This process's landmarker for `config` (in `mode`, default the config's), made on first use (keyed by pid,
    so a forked worker never reuses its parent's)."""
    key = (os.getpid(), config, mode)
    if key not in _LANDMARKERS:
        _LANDMARKERS[key] = LipLandmarker(config, mode)
    return _LANDMARKERS[key]
