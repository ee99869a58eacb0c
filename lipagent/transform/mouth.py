"""Where the mouth is: MediaPipe's face landmarks (Face Mesh's 468-point topology) turned into lip crop boxes.

The landmarker is created lazily, once per process: workers forked from a process that has made one (even one
since closed) hang, and one held by the mapped function would make it unhashable. `landmarker_created_here` lets
the map stage start its workers another way.
"""

from __future__ import annotations

import concurrent.futures.thread  # noqa: F401  (its exit hook first: see _close_open)
import gc
import math
import os
import threading
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TypeVar

import cv2
import mediapipe as mp
import numpy as np

from lipagent.config import MosaicConfig
from lipagent.quiet import quiet_native_stderr
from lipagent.transform.mosaic import CropBox, FloatBox, TurnedBox
from lipagent.transform.pose import EYE_OUTER_CORNERS

T = TypeVar("T")

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


def face_aligned_box(points: np.ndarray, width_in_eyes: float, aspect: float) -> TurnedBox:
    """A face_aligned crop of one frame's (478, 2) pixel landmarks: turned with the line through the outer eye
    corners, `width_in_eyes` of their distance wide and `aspect` (width/height), centred on the lip landmarks' box in
    those turned axes. The scale comes from the eyes, which do not move as the mouth speaks."""
    right, left = points[EYE_OUTER_CORNERS[0]], points[EYE_OUTER_CORNERS[1]]
    eye_line = left - right
    angle = math.atan2(eye_line[1], eye_line[0])
    along = np.array([math.cos(angle), math.sin(angle)])
    across = np.array([-along[1], along[0]])
    lips = points[list(LIP_LANDMARKS)]
    u, v = lips @ along, lips @ across
    centre = (u.min() + u.max()) / 2 * along + (v.min() + v.max()) / 2 * across
    width = width_in_eyes * float(np.hypot(*eye_line))
    return TurnedBox(float(centre[0]), float(centre[1]), width, width / aspect, math.degrees(angle))


def smooth_crops(boxes: Sequence[CropBox], radius: int) -> list[CropBox]:
    """Each box's centre (and a turned box's size and angle) averaged with those of up to `radius` boxes on either
    side (fewer at the ends): tracking jitter moves a cell by a pixel or two from one frame to the next. A lip box
    keeps its own size, which is the mouth's shape."""
    if radius <= 0:
        return list(boxes)
    smoothed: list[CropBox] = []
    for i, box in enumerate(boxes):
        near = boxes[max(0, i - radius) : i + radius + 1]
        if isinstance(box, TurnedBox):
            values = np.mean([(b.cx, b.cy, b.width, b.height, b.angle) for b in near], axis=0)
            smoothed.append(TurnedBox(*(float(x) for x in values)))
        else:
            cx, cy = np.mean([((b[0] + b[2]) / 2, (b[1] + b[3]) / 2) for b in near], axis=0)
            half_w, half_h = (box[2] - box[0]) / 2, (box[3] - box[1]) / 2
            smoothed.append((float(cx - half_w), float(cy - half_h), float(cx + half_w), float(cy + half_h)))
    return smoothed


def fill_missing(boxes: Sequence[T | None]) -> list[T]:
    """Each missing box borrowed from the nearest frame that has one (the earlier one on a tie)."""
    found = [i for i, b in enumerate(boxes) if b is not None]
    if not found:
        raise ValueError("no frame has a face to borrow a box from")
    return [b if b is not None else boxes[min(found, key=lambda j: (abs(j - i), j))] for i, b in enumerate(boxes)]


def interpolate_faces(
    faces: Sequence[tuple[FloatBox, np.ndarray]], positions: Sequence[int], count: int
) -> list[tuple[FloatBox, np.ndarray]]:
    """The lip box and landmarks of each of `count` frames from those of the frames at `positions` (increasing, the
    first 0 and the last `count - 1`): a frame between two of them gets the straight-line blend of theirs. The mouth
    moves little between neighbouring sampled frames, so the crop of one between them is nearly what its own
    landmarks would give, at none of their cost."""
    if len(faces) != len(positions) or positions[0] != 0 or positions[-1] != count - 1:
        raise ValueError(f"landmarked positions {list(positions)} do not span {count} frames")
    blended: list[tuple[FloatBox, np.ndarray]] = []
    for k in range(len(positions) - 1):
        (box_a, points_a), (box_b, points_b) = faces[k], faces[k + 1]
        first, last = positions[k], positions[k + 1]
        blended.append(faces[k])
        for i in range(first + 1, last):
            t = (i - first) / (last - first)
            box = tuple(float((1 - t) * a + t * b) for a, b in zip(box_a, box_b, strict=True))
            blended.append((box, (1 - t) * points_a + t * points_b))
    blended.append(faces[-1])
    return blended


def min_faces(config: MosaicConfig) -> int:
    """Landmarked frames that must show a face for a clip to be used."""
    return math.ceil(config.min_face_ratio * config.landmarked_count - 1e-9)


@contextmanager
def _collection_paused() -> Iterator[None]:
    """No cyclic garbage collection inside a MediaPipe call: mediapipe 1.x closes a dropped task from its `__del__`,
    and a close that the collector runs in the middle of another task's call never returns (seen in
    `detect_for_video`). Collected after the call, the same close returns at once."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _image(rgb: np.ndarray) -> mp.Image:
    """An RGB frame as the Tasks API takes it."""
    return mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))


def _close_tasks(tasks: dict[str, object]) -> None:
    with _collection_paused():
        for task in tasks.values():
            task.close()
    tasks.clear()


_OPEN: weakref.WeakSet = weakref.WeakSet()
"""Every landmarker whose MediaPipe tasks are open, closed at exit while their executors still run."""


def _close_open() -> None:
    for landmarker in list(_OPEN):
        landmarker.close()


# MediaPipe 1.x runs each task's calls on a concurrent.futures executor, which the interpreter shuts down at exit
# before atexit (and weakref.finalize) callbacks run; a task closed after that raises. Threading's exit hooks run
# last-registered first, so this one, registered after concurrent.futures registered its own, runs before it.
threading._register_atexit(_close_open)


class _FaceLandmarker:
    """MediaPipe's Tasks `FaceLandmarker` with a model bundle of `lipagent.transform.face_model`: the official one
    (face_landmarker) or the legacy Face Mesh models (face_mesh_tasks). 478 points; the first 468 are Face Mesh's, so
    every index LipAgent uses means the same. Tracking is its VIDEO mode, which has no reset: a new clip gets a new
    landmarker (about 30 ms).

    Its MediaPipe tasks are closed when it is closed or dropped: mediapipe 1.x closes a task nobody closed from the
    task's `__del__`, and that close, run by the garbage collector, never returns."""

    FRAME_MS = 40
    """Timestamps step by one 25 fps frame, whatever the source's rate, so a clip's landmarks are the same in
    training and inference (VIDEO mode smooths over time)."""

    def __init__(self, config: MosaicConfig, static: bool) -> None:
        from lipagent.transform.face_model import landmarker_bundle

        self._bundle = landmarker_bundle(config.landmarker)
        vision = mp.tasks.vision
        self._options = vision.FaceLandmarkerOptions(
            base_options=mp.tasks.BaseOptions(model_asset_path=str(self._bundle)),
            running_mode=vision.RunningMode.IMAGE if static else vision.RunningMode.VIDEO,
            num_faces=1,
            min_face_detection_confidence=config.min_detection_confidence,
            min_face_presence_confidence=config.min_detection_confidence,
            min_tracking_confidence=config.min_tracking_confidence,
        )
        self._static = static
        self._tasks: dict[str, object] = {}
        self._closer = weakref.finalize(self, _close_tasks, self._tasks)
        _OPEN.add(self)
        with _collection_paused():
            self._tasks["landmarks"] = vision.FaceLandmarker.create_from_options(self._options)
        self._time = 0

    def landmarks(self, rgb: np.ndarray) -> Sequence | None:
        image = _image(rgb)
        task = self._tasks["landmarks"]
        with _collection_paused():
            result = task.detect(image) if self._static else task.detect_for_video(image, self._time)
        if not self._static:
            self._time += self.FRAME_MS
        return result.face_landmarks[0] if result.face_landmarks else None

    def reset(self) -> None:
        if not self._static:
            with _collection_paused():
                self._tasks.pop("landmarks").close()
                self._tasks["landmarks"] = mp.tasks.vision.FaceLandmarker.create_from_options(self._options)
            self._time = 0

    def face_score(self, rgb: np.ndarray) -> float:
        if "faces" not in self._tasks:
            from lipagent.transform.face_model import face_detector_model

            vision = mp.tasks.vision
            options = vision.FaceDetectorOptions(
                base_options=mp.tasks.BaseOptions(model_asset_path=str(face_detector_model(self._bundle))),
                min_detection_confidence=0.1,
            )
            with _collection_paused():
                self._tasks["faces"] = vision.FaceDetector.create_from_options(options)
        image = _image(rgb)
        with _collection_paused():
            found = self._tasks["faces"].detect(image).detections
        return max((float(d.categories[0].score) for d in found), default=0.0)

    def close(self) -> None:
        self._closer()


def _pixels(landmarks: Sequence, frame_bgr: np.ndarray) -> np.ndarray:
    """MediaPipe's normalised landmarks as (N, 2) pixel x, y of the frame."""
    height, width = frame_bgr.shape[:2]
    return np.array([(p.x * width, p.y * height) for p in landmarks], dtype=np.float64)


class LipLandmarker:
    """Lip boxes and landmarks for the frames of one clip at a time, from the landmarker `config.landmarker` names
    in the mode `config.landmarks` names.

    Tracking mode (the default) carries landmarks from one sampled frame to the next: it read 1.3 WER points
    better than static mode in the accuracy table (docs/results.md), and it is what must look at every frame of a camera
    stream. Static mode detects the face afresh in every frame.
    Either way the state is reset at each clip, so a clip's mosaic never depends on the clip before it.
    """

    def __init__(self, config: MosaicConfig, mode: str | None = None) -> None:
        _CREATORS.add(os.getpid())
        self.mode = mode or config.landmarks
        if config.landmarker == "face_mesh":
            raise ValueError(
                "these mosaics were made with landmarker=face_mesh, MediaPipe's legacy Face Mesh solution (mediapipe "
                "0.10.21 and earlier), which LipAgent no longer runs: rebuild the dataset (and retrain) with the "
                "default landmarker face_mesh_tasks, the same models through the Tasks API"
            )
        with quiet_native_stderr():
            self._backend = _FaceLandmarker(config, static=self.mode == "static")

    def _landmarks(self, frame_bgr: np.ndarray) -> Sequence | None:
        return self._backend.landmarks(cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2RGB))

    def points(self, frame_bgr: np.ndarray) -> np.ndarray | None:
        """The face's landmarks in one frame as (478, 2) pixel x, y (the first 468 in Face Mesh's topology; None: no
        face), carrying tracking state from the previous call."""
        landmarks = self._landmarks(frame_bgr)
        return None if landmarks is None else _pixels(landmarks, frame_bgr)

    def face(self, frame_bgr: np.ndarray) -> tuple[FloatBox, np.ndarray] | None:
        """The lip box and the (N, 2) pixel landmarks in one frame, carrying tracking state from the previous
        call."""
        landmarks = self._landmarks(frame_bgr)
        if landmarks is None:
            return None
        lips = np.array([(landmarks[i].x, landmarks[i].y) for i in LIP_LANDMARKS], dtype=np.float64)
        height, width = frame_bgr.shape[:2]
        return lip_box(lips, width, height), _pixels(landmarks, frame_bgr)

    def clip_faces(self, frames_bgr: Sequence[np.ndarray]) -> list[tuple[FloatBox, np.ndarray] | None]:
        """Lip boxes and landmarks for the frames of a new clip (tracking state reset first)."""
        with quiet_native_stderr():
            self._backend.reset()
            return [self.face(frame) for frame in frames_bgr]

    def clip_boxes(self, frames_bgr: Sequence[np.ndarray]) -> list[FloatBox | None]:
        """Lip boxes for the frames of a new clip (tracking state reset first)."""
        return [None if face is None else face[0] for face in self.clip_faces(frames_bgr)]

    def face_scores(self, frame_bgr: np.ndarray) -> tuple[float, float]:
        """MediaPipe's face-detector score for the frame as it is and turned by 180 degrees (0: no face); an
        upside-down face scores higher turned (`lipagent.transform.pose.upside_down`)."""
        rgb = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2RGB)
        with quiet_native_stderr():
            return self._backend.face_score(rgb), self._backend.face_score(np.ascontiguousarray(rgb[::-1, ::-1]))

    def clip_points(self, frames_bgr: Sequence[np.ndarray]) -> list[np.ndarray | None]:
        """Landmarks for every frame of a new clip (tracking state reset first)."""
        with quiet_native_stderr():
            self._backend.reset()
            return [self.points(frame) for frame in frames_bgr]

    def stream_points(self, frame_bgr: np.ndarray) -> np.ndarray | None:
        """Landmarks for the next frame of a stream (no reset: a camera is one long clip)."""
        with quiet_native_stderr():
            return self.points(frame_bgr)

    def close(self) -> None:
        self._backend.close()


_LANDMARKERS: dict[tuple[int, MosaicConfig, str | None], LipLandmarker] = {}
_CREATORS: set[int] = set()


def landmarker_created_here() -> bool:
    """Whether this process has ever made a landmarker (and so must not fork workers that use one)."""
    return os.getpid() in _CREATORS


def process_landmarker(config: MosaicConfig, mode: str | None = None) -> LipLandmarker:
    """This process's landmarker for `config` (in `mode`, default the config's), made on first use (keyed by pid,
    so a forked worker never reuses its parent's)."""
    key = (os.getpid(), config, mode)
    if key not in _LANDMARKERS:
        _LANDMARKERS[key] = LipLandmarker(config, mode)
    return _LANDMARKERS[key]
