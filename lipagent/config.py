"""Every constant of the video-to-mosaic transform, in one place.

Training data and live inference both build mosaics from `MosaicConfig`; a change here changes both,
which is the point: the model must never see inputs made differently from those it was trained on.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class MosaicConfig:
    """Geometry and thresholds of the mouth mosaic (defaults: the trained recipe)."""

    rows: int = 3
    cols: int = 4
    cell_width: int = 100
    cell_height: int = 80
    lip_padding: float = 0.15
    jpeg_quality: int = 95
    min_detection_confidence: float = 0.5
    min_tracking_confidence: float = 0.5
    min_face_ratio: float = 0.8
    min_speech_coverage: float = 0.9

    @property
    def num_frames(self) -> int:
        return self.rows * self.cols

    @property
    def width(self) -> int:
        return self.cols * self.cell_width

    @property
    def height(self) -> int:
        return self.rows * self.cell_height

    def to_dict(self) -> dict:
        return asdict(self)


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
