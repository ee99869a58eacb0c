"""Every constant of the video-to-mosaic transform, in one place.

Training data and live inference both build mosaics from `MosaicConfig`; a change here changes both,
which is the point: the model must never see inputs made differently from those it was trained on.
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

LANDMARKERS: tuple[str, ...] = ("face_mesh", "face_mesh_tasks", "face_landmarker")
"""Which MediaPipe model finds the face's landmarks, and how it runs: the legacy Face Mesh models through the
Tasks API (face_mesh_tasks: a bundle built from them), the Tasks API's newer Face Landmarker (the official bundle,
fetched once), or the legacy Face Mesh solution (face_mesh: mediapipe 0.10.21 and earlier, which LipAgent no longer
installs; recorded by older datasets and models, which must be rebuilt). Bundles: `lipagent.transform.face_model`."""

LANDMARKER_NAMES: dict[str, str] = {
    "face_mesh": "Face Mesh",
    "face_mesh_tasks": "Face Mesh (Tasks API)",
    "face_landmarker": "Face Landmarker",
}

LANDMARK_MODES: tuple[str, ...] = ("static", "tracking")
"""Landmarks on each sampled frame afresh (static), or carried from one sampled frame to the next (tracking)."""

CROP_SHAPES: tuple[str, ...] = ("stretch", "cell_aspect", "face_aligned")
"""The padded lip box stretched to the cell (stretch) or grown to the cell's aspect ratio first (cell_aspect); or a
box of the cell's aspect turned with the eye line, sized by the eye distance and centred on the mouth (face_aligned:
the scale follows the face, not the mouth, so an open mouth fills more of the cell than a closed one, and a rolled
head is levelled)."""

SPEECH_ONSETS: tuple[str, ...] = ("threshold", "jump")
"""Where the speech-span detector starts an utterance (`lipagent.transform.speech.SpeechConfig.onset`): where the
mouth's activity crosses the start threshold, or just before the first sharp opening after that."""

RESAMPLINGS: tuple[str, ...] = ("linear", "area")
"""OpenCV interpolation from crop to cell. A lip box (~60x25 px in GRID) is *enlarged* to 100x80, where
`area` behaves like nearest-neighbour."""


MIN_CLIP_FRAMES = 12
"""The fewest frames a clip may have to be read (0.48 s at 25 fps, the shortest utterance the speech-span detector
reads): a mosaic of more cells than that repeats some of them, one of fewer frames would be mostly repeats."""


def _setting(default: Any, help: str, choices: tuple[str, ...] | None = None) -> Any:
    """A MosaicConfig field with the words and choices its command-line flag shows."""
    return field(default=default, metadata={"help": help, "choices": choices})


@dataclass(frozen=True)
class MosaicConfig:
    """Geometry, detector and resampling choices, and thresholds of the mouth mosaic.

    The defaults are what `bench/bench_accuracy.py` measured to read best (docs/results.md); change one
    only with that table's evidence. A dataset records its config in its card, a trained model beside its
    weights, and inference rebuilds mosaics from the recorded one.
    """

    rows: int = _setting(4, "rows of cells in the mosaic")
    cols: int = _setting(6, "cells per row (frames run left to right, then top to bottom)")
    cell_width: int = _setting(100, "width of one mouth cell in pixels")
    cell_height: int = _setting(80, "height of one mouth cell in pixels")
    lip_padding: float = _setting(0.15, "margin around the lip landmarks, as a share of the lip box on each side")
    landmarker: str = _setting(
        "face_mesh_tasks",
        "the MediaPipe model that finds the face: the legacy Face Mesh models through the Tasks API, or the newer "
        "Face Landmarker (face_mesh: the legacy solution, recorded by older datasets only)",
        LANDMARKERS,
    )
    landmarks: str = _setting(
        "tracking", "landmarks on each sampled frame afresh (static) or tracked from frame to frame", LANDMARK_MODES
    )
    crop: str = _setting(
        "stretch",
        "the padded lip box stretched to the cell or grown to the cell's aspect ratio first, or a box turned with the "
        "eye line and sized by the eye distance, centred on the mouth (face_aligned)",
        CROP_SHAPES,
    )
    face_crop_width: float = _setting(1.0, "a face_aligned crop's width, in distances between the outer eye corners")
    crop_smoothing: int = _setting(
        0,
        "sampled frames on either side whose crop centres (and a face_aligned crop's size and angle) are averaged "
        "with each frame's (0: off)",
    )
    landmarked_frames: int = _setting(
        12,
        "sampled frames that get landmarks, spread from the first to the last; the others' crops are interpolated "
        "between their landmarked neighbours (0: every sampled frame)",
    )
    resampling: str = _setting("linear", "interpolation from the crop to the cell", RESAMPLINGS)
    subpixel_crop: bool = _setting(False, "cut the exact (fractional) lip box instead of rounding it to whole pixels")
    speech_onset: str = _setting(
        "jump",
        "where a detected speech span starts: where the mouth's activity crosses the threshold, or at the first "
        "sharp opening after it",
        SPEECH_ONSETS,
    )
    speech_settle: int = _setting(
        10,
        "frames a mouth may hold one parted shape before a detected speech span ends at its last movement (0: off)",
    )
    jpeg_quality: int = _setting(95, "JPEG quality of the stored mosaic")
    min_detection_confidence: float = _setting(0.5, "the landmarker's face detection confidence")
    min_tracking_confidence: float = _setting(0.5, "the landmarker's landmark tracking confidence")
    min_face_ratio: float = _setting(0.8, "share of sampled frames that must show a face, or the clip is skipped")
    min_speech_coverage: float = _setting(0.9, "share of the speech span the video must hold, or the clip is skipped")

    def __post_init__(self) -> None:
        for name, value, allowed in (
            ("landmarker", self.landmarker, LANDMARKERS),
            ("landmarks", self.landmarks, LANDMARK_MODES),
            ("crop", self.crop, CROP_SHAPES),
            ("resampling", self.resampling, RESAMPLINGS),
            ("speech_onset", self.speech_onset, SPEECH_ONSETS),
        ):
            if value not in allowed:
                raise ValueError(f"mosaic setting {name}={value!r} is not one of {', '.join(allowed)}")
        if (self.subpixel_crop or self.crop == "face_aligned") and self.resampling != "linear":
            what = "subpixel_crop" if self.subpixel_crop else "crop=face_aligned"
            raise ValueError(f"{what} samples the frame through an affine warp, which needs resampling='linear'")
        if self.face_crop_width <= 0:
            raise ValueError(f"mosaic setting face_crop_width must be > 0 eye distances, got {self.face_crop_width}")
        if self.crop_smoothing < 0:
            raise ValueError(f"mosaic setting crop_smoothing must be >= 0 frames, got {self.crop_smoothing}")
        if self.landmarked_frames < 0 or self.landmarked_frames == 1:
            raise ValueError(
                f"mosaic setting landmarked_frames must be 0 (every frame) or at least 2, got {self.landmarked_frames}"
            )
        if self.speech_settle < 0:
            raise ValueError(f"mosaic setting speech_settle must be >= 0 frames, got {self.speech_settle}")
        if min(self.rows, self.cols, self.cell_width, self.cell_height) < 1 or self.lip_padding < 0:
            raise ValueError(
                f"mosaic geometry must be positive: {self.rows}x{self.cols} cells of "
                f"{self.cell_width}x{self.cell_height}, padding {self.lip_padding}"
            )

    @property
    def num_frames(self) -> int:
        return self.rows * self.cols

    @property
    def min_clip_frames(self) -> int:
        """Frames a clip needs to make a mosaic: the mosaic's own count, at most `MIN_CLIP_FRAMES`."""
        return min(self.num_frames, MIN_CLIP_FRAMES)

    @property
    def landmarked_count(self) -> int:
        """Sampled frames the landmarker looks at (`landmarked_frames`, at most every one)."""
        return min(self.landmarked_frames, self.num_frames) if self.landmarked_frames else self.num_frames

    @property
    def width(self) -> int:
        return self.cols * self.cell_width

    @property
    def height(self) -> int:
        return self.rows * self.cell_height

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> MosaicConfig:
        """The config a dataset card or a model folder recorded.

        Records written before the detector, crop and resampling choices were settings lack those keys; they
        were built with `LEGACY_SETTINGS`, so that is what they get (never today's defaults). Keys this
        version does not know are ignored with a warning (a record from a newer LipAgent)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            logger.warning("ignoring mosaic settings this LipAgent does not know: %s", ", ".join(unknown))
        return cls(**{**LEGACY_SETTINGS, **{k: v for k, v in values.items() if k in known}})

    def with_overrides(self, overrides: dict[str, str]) -> MosaicConfig:
        """This config with settings given as text (`landmarks=tracking`, `subpixel_crop=true`), converted to
        each field's type; an unknown name or a value of the wrong kind is a one-line error."""
        types = {f.name: type(getattr(self, f.name)) for f in fields(self)}
        values: dict[str, Any] = {}
        for name, text in overrides.items():
            if name not in types:
                raise ValueError(f"unknown mosaic setting {name!r}; known: {', '.join(types)}")
            kind = types[name]
            if kind is bool:
                if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError(f"mosaic setting {name} takes true or false, got {text!r}")
                values[name] = text.lower() in ("true", "1", "yes")
            else:
                try:
                    values[name] = kind(text)
                except ValueError:
                    raise ValueError(f"mosaic setting {name} takes a {kind.__name__}, got {text!r}") from None
        return replace(self, **values)

    def describe(self) -> str:
        """One line for cards, logs and benchmark tables."""
        cut = ", sub-pixel cut" if self.subpixel_crop else ""
        frames = f"{self.crop_smoothing} sampled frame{'s' * (self.crop_smoothing != 1)}"
        smoothed = f", crop smoothed over {frames} either side" if self.crop_smoothing else ""
        if self.crop == "face_aligned":
            crop = f"mouth-centred box {self.face_crop_width:g} eye distances wide turned with the eye line"
        else:
            shape = "stretched to the cell" if self.crop == "stretch" else "grown to the cell aspect"
            crop = f"lip box padded {self.lip_padding} {shape}"
        landmarked = (
            f", landmarks on {self.landmarked_count} of {self.num_frames} frames (the rest interpolated)"
            if self.landmarked_count < self.num_frames
            else ""
        )
        return (
            f"{LANDMARKER_NAMES[self.landmarker]} {self.landmarks} mode, {crop}{smoothed}{landmarked}, "
            f"{self.resampling} resampling{cut}, {self.rows}x{self.cols} frames"
        )


LEGACY_SETTINGS: dict[str, Any] = {
    "landmarker": "face_mesh",
    "landmarks": "tracking",
    "crop": "cell_aspect",
    "resampling": "area",
    "subpixel_crop": False,
    "speech_onset": "threshold",
    "speech_settle": 0,
    "crop_smoothing": 0,
    "landmarked_frames": 0,
}
"""How every mosaic was made before these choices were recorded (datasets and adapters of LipAgent 0.1; the
speech onset and settle rule since the detector came, until each was recorded)."""

DEFAULT_CONFIG = MosaicConfig()

VIDEO_FPS = 25
ALIGN_UNITS_PER_FRAME = 1000
"""GRID .align times are in 1/25000 s: 1000 units are one 25 fps video frame."""

SILENCE_TOKENS: frozenset[str] = frozenset({"sil", "sp"})


@dataclass(frozen=True)
class ZenodoRecord:
    """Where the GRID corpus is published."""

    record_id: str = "3625687"
    base_url: str = "https://zenodo.org"

    @property
    def api_url(self) -> str:
        return f"{self.base_url.rstrip('/')}/api/records/{self.record_id}"


GRID_SPEAKERS: tuple[str, ...] = tuple(f"s{i}" for i in range(1, 35) if i != 21)
"""Speakers with video in the corpus (speaker 21 has none)."""


def cache_root() -> Path:
    """Where LipAgent keeps what it can make again (the llama.cpp converter, `lipagent train`'s help)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lipagent"
