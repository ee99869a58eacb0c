"""Video file in, mosaic JPEG out: the one transform shared by the dataset builder and inference."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

import numpy as np

from lipagent.config import DEFAULT_CONFIG, VIDEO_FPS, MosaicConfig
from lipagent.transform.mosaic import CropBox, build_mosaic, encode_jpeg
from lipagent.transform.mouth import (
    LipLandmarker,
    crop_box,
    face_aligned_box,
    fill_missing,
    interpolate_faces,
    min_faces,
    process_landmarker,
    smooth_crops,
)
from lipagent.transform.pose import face_pose, pose_problem, upside_down
from lipagent.transform.sampling import sample_indices
from lipagent.transform.skips import SkipReason
from lipagent.transform.speech import (
    DEFAULT_SPEECH,
    SPEECH_MODES,
    NoSpeechFound,
    Speech,
    SpeechConfig,
    detect_span,
    mouth_opening,
    spoken,
)
from lipagent.transform.video import VideoError, frame_rate, read_frames, read_sampled_frames

T = TypeVar("T")


class ClipRejected(ValueError):
    """A clip that cannot make a trustworthy mosaic, with the reason and a detail for people."""

    def __init__(self, reason: SkipReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Mosaic:
    jpeg: bytes
    frame_indices: tuple[int, ...]
    face_frames: int
    num_frames: int


def landmarked_positions(sampled: int, config: MosaicConfig = DEFAULT_CONFIG) -> list[int]:
    """Which of a clip's `sampled` frames get landmarks (`landmarked_frames`, spread from the first to the last); the
    others' crops are interpolated."""
    return sample_indices(0, sampled - 1, config.landmarked_count)


def crop_boxes(
    frames: Sequence[np.ndarray], landmarker: LipLandmarker, config: MosaicConfig = DEFAULT_CONFIG
) -> tuple[list[CropBox], int]:
    """The crop box of each sampled BGR frame (a frame without a face borrows its neighbour's; with
    `landmarked_frames` set, one between landmarked frames is interpolated), and how many landmarked frames showed a
    face. Raises ClipRejected when too few did, or when the face is one the crop cannot serve
    (`lipagent.transform.pose`: rolled or turned far, upside down, lip landmarks not on a mouth)."""
    positions = landmarked_positions(len(frames), config)
    faces = landmarker.clip_faces([frames[i] for i in positions])
    _check_face(frames, [None if f is None else f[1] for f in faces], landmarker)
    found = sum(f is not None for f in faces)
    if found < min_faces(config):
        raise ClipRejected(
            SkipReason.FACE_NOT_FOUND,
            f"a face in {found} of {len(faces)} landmarked frames (need {min_faces(config)})",
        )
    filled = fill_missing(faces)
    if len(positions) < len(frames):
        filled = interpolate_faces(filled, positions, len(frames))
    if config.crop == "face_aligned":
        aspect = config.cell_width / config.cell_height
        turned = [face_aligned_box(points, config.face_crop_width, aspect) for _, points in filled]
        return smooth_crops(turned, config.crop_smoothing), found
    aspect = config.cell_width / config.cell_height if config.crop == "cell_aspect" else None
    crops: list[CropBox] = []
    for frame, lips in zip(frames, smooth_crops([box for box, _ in filled], config.crop_smoothing)):
        height, width = frame.shape[:2]
        crops.append(crop_box(lips, config.lip_padding, aspect, width, height))
    return crops, found


def _check_face(frames: Sequence[np.ndarray], points: Sequence[np.ndarray | None], landmarker: LipLandmarker) -> None:
    """ClipRejected when the face is one the mouth crop cannot serve (`lipagent.transform.pose`)."""
    problem = pose_problem([face_pose(p) for p in points if p is not None])
    spread = _spread(len(frames), 3)
    if problem is None and upside_down((landmarker.face_scores(frames[i]) for i in spread), len(spread)):
        problem = "the face is upside down; rotate the video so the face is upright"
    if problem is not None:
        raise ClipRejected(SkipReason.FACE_POSE, problem)


def _spread(count: int, n: int) -> list[int]:
    """`n` indices spread over `count` items, first and last included."""
    return sorted({round(i * (count - 1) / max(n - 1, 1)) for i in range(n)})


def frames_to_mosaic(
    frames: Sequence[np.ndarray], landmarker: LipLandmarker, config: MosaicConfig = DEFAULT_CONFIG
) -> tuple[bytes, int]:
    """JPEG mosaic of exactly `config.num_frames` sampled BGR frames, and how many showed a face."""
    crops, found = crop_boxes(frames, landmarker, config)
    return encode_jpeg(build_mosaic(frames, crops, config), config.jpeg_quality), found


def _check_frame_count(frames: Sequence[np.ndarray], config: MosaicConfig) -> None:
    if len(frames) < config.min_clip_frames:
        raise ClipRejected(
            SkipReason.TOO_FEW_FRAMES, f"{len(frames)} frames given; a mosaic needs at least {config.min_clip_frames}"
        )


def _check_coverage(speech: tuple[int, int], num_frames: int, config: MosaicConfig) -> None:
    start, end = speech
    covered = max(0, min(end, num_frames - 1) - start + 1) / (end - start + 1)
    if num_frames < config.min_clip_frames or covered < config.min_speech_coverage:
        raise ClipRejected(
            SkipReason.TOO_FEW_FRAMES,
            f"{num_frames} frames; speech spans frames {start}-{end} ({covered:.0%} present)",
        )


def _from_tracked_openings(frames: Sequence[np.ndarray], config: MosaicConfig, find: Callable[[list[float]], T]) -> T:
    """`find` over the openings of a tracking landmarker run on every frame (reset at the clip's start). Where it
    finds no speech, a face the crop cannot serve is named instead (an upside-down face's "mouth" is its eyes);
    where it finds some, the mosaic's own check (`crop_boxes`) has the last word, so it is not made twice."""
    landmarker = process_landmarker(config, mode="tracking")
    points = landmarker.clip_points(frames)
    try:
        return find([mouth_opening(p) for p in points])
    except NoSpeechFound:
        _check_face(frames, points, landmarker)
        raise


def find_speech(
    frames: Sequence[np.ndarray], config: MosaicConfig = DEFAULT_CONFIG, speech: SpeechConfig = DEFAULT_SPEECH
) -> tuple[int, int]:
    """The spoken frames (first, last) of a clip with no alignment, from the mouth's movement: tracked landmarks on
    every frame, then `lipagent.transform.speech.detect_span`. Raises `lipagent.transform.speech.NoSpeechFound`, or
    ClipRejected for a face the crop cannot serve where no speech was found."""
    return _from_tracked_openings(frames, config, lambda openings: detect_span(openings, speech.following(config)))


def find_utterances(
    frames: Sequence[np.ndarray], config: MosaicConfig = DEFAULT_CONFIG, speech: SpeechConfig = DEFAULT_SPEECH
) -> list[tuple[int, int]]:
    """The spoken frames of each utterance of a video that may hold several, as `lipagent live` finds them (one
    tracking landmarker, `segment`). A GRID clip is one utterance, `find_speech`'s span (on 470 real clips of 11
    speakers no sentence paused long enough to be cut in two: docs/results.md)."""
    spans = _from_tracked_openings(frames, config, lambda openings: spoken(openings, speech.following(config)))
    return [(span.start, span.end) for span in spans]


def prepare_utterances(path: str | Path, config: MosaicConfig = DEFAULT_CONFIG) -> list[PreparedClip]:
    """A video file -> one mosaic per utterance found in it (see `find_utterances`)."""
    fps = frame_rate(path) or VIDEO_FPS
    frames = decode_all(path)
    _check_frame_count(frames, config)
    return [
        PreparedClip(clip_mosaic(frames, span, config), span, "auto", fps) for span in find_utterances(frames, config)
    ]


def clip_mosaic(
    frames: Sequence[np.ndarray],
    speech: tuple[int, int],
    config: MosaicConfig = DEFAULT_CONFIG,
    landmarker: LipLandmarker | None = None,
) -> Mosaic:
    """The mosaic of an already decoded clip: `config.num_frames` frames spread over `speech` (inclusive)."""
    _check_coverage(speech, len(frames), config)
    indices = sample_indices(*speech, config.num_frames, len(frames))
    jpeg, found = frames_to_mosaic([frames[i] for i in indices], landmarker or process_landmarker(config), config)
    return Mosaic(jpeg=jpeg, frame_indices=tuple(indices), face_frames=found, num_frames=len(frames))


@dataclass(frozen=True)
class PreparedClip:
    """A clip's mosaic and the span it was sampled over, with how that span was chosen (given, auto, whole)."""

    mosaic: Mosaic
    span: tuple[int, int]
    how: str
    fps: float = VIDEO_FPS

    def describe(self) -> str:
        """One line for stderr: what was read."""
        start, end = self.span
        source = {"given": "as given", "auto": "detected from the mouth", "whole": "the whole clip"}[self.how]
        return (
            f"reading frames {start}-{end} of {self.mosaic.num_frames} ({source}; "
            f"{(end - start + 1) / self.fps:.2f} s at {self.fps:g} fps)"
        )


def _span(frames: Sequence[np.ndarray], speech: Speech, config: MosaicConfig) -> tuple[tuple[int, int], str]:
    if isinstance(speech, tuple):
        return (int(speech[0]), int(speech[1])), "given"
    if speech not in SPEECH_MODES:
        raise ValueError(
            f"speech must be a (start, end) frame pair or one of {', '.join(SPEECH_MODES)}, got {speech!r}"
        )
    if speech == "whole":
        return (0, len(frames) - 1), "whole"
    return find_speech(frames, config), "auto"


def prepare_frames(
    frames: Sequence[np.ndarray], speech: Speech = "auto", config: MosaicConfig = DEFAULT_CONFIG
) -> PreparedClip:
    """Decoded frames (a camera's, say) -> the mosaic training would have made, sampled over `speech`."""
    _check_frame_count(frames, config)
    span, how = _span(frames, speech, config)
    return PreparedClip(clip_mosaic(frames, span, config), span, how)


def prepare_video(path: str | Path, speech: Speech = "auto", config: MosaicConfig = DEFAULT_CONFIG) -> PreparedClip:
    """A video file -> its mosaic over `speech`. A given span decodes only the sampled frames (the dataset
    builder's path, byte for byte); auto and whole read every frame."""
    fps = frame_rate(path) or VIDEO_FPS
    if isinstance(speech, tuple):
        return PreparedClip(video_to_mosaic(path, speech, config), (int(speech[0]), int(speech[1])), "given", fps)
    return replace(prepare_frames(decode_all(path), speech, config), fps=fps)


def decode_all(path: str | Path) -> list[np.ndarray]:
    """Every frame of a video, in order (a clip is read whole when its spoken part must be found first)."""
    try:
        frames, count = read_frames(path)
    except VideoError as error:
        raise ClipRejected(SkipReason.UNDECODABLE, str(error)) from None
    return [frames[i] for i in range(count)]


def video_to_mosaic(
    path: str | Path,
    speech: tuple[int, int] | None = None,
    config: MosaicConfig = DEFAULT_CONFIG,
    landmarker: LipLandmarker | None = None,
) -> Mosaic:
    """The mosaic of a clip: `config.num_frames` frames spread over the spoken frames `speech`
    (inclusive), or over the whole clip when no alignment says where speech is."""
    landmarker = landmarker or process_landmarker(config)
    try:
        if speech is None:
            all_frames, count = read_frames(path)
            speech = (0, count - 1)
            indices = sample_indices(*speech, config.num_frames, count)
            frames = [all_frames[i] for i in indices]
        else:
            frames, indices, count = read_sampled_frames(path, sample_indices(*speech, config.num_frames))
    except VideoError as error:
        raise ClipRejected(SkipReason.UNDECODABLE, str(error)) from None
    _check_coverage(speech, count, config)
    jpeg, found = frames_to_mosaic(frames, landmarker, config)
    return Mosaic(jpeg=jpeg, frame_indices=tuple(indices), face_frames=found, num_frames=count)
