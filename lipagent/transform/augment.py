"""Random changes to one clip's cells that leave the words it says unchanged, drawn once per clip: the baseline and
the Gemma path learn to ignore the same things."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lipagent.config import MosaicConfig
from lipagent.transform.mosaic import tile, untile


@dataclass(frozen=True)
class Augmentation:
    """How far each change may go; all zero or off is no change.

    - shift: the crop sits up to this many pixels off where the landmarks put it, as landmark jitter does from clip to
      clip;
    - flip: half the clips mirrored left to right (faces are near-symmetric), doubling the shapes seen;
    - gamma: brightness bent by an exponent within 1 +/- gamma: lighting that is not a plain gain or offset.
    """

    shift: int = 0
    flip: bool = False
    gamma: float = 0.0

    def __post_init__(self) -> None:
        if self.shift < 0 or not 0 <= self.gamma < 1:
            raise ValueError(f"augmentation out of range: shift {self.shift} (>= 0), gamma {self.gamma} (0 to <1)")

    @property
    def active(self) -> bool:
        return bool(self.shift or self.flip or self.gamma)


def augment_clip(cells: np.ndarray, rng: np.random.Generator, augmentation: Augmentation) -> np.ndarray:
    """One clip's uint8 cells, (frames, H, W) or (frames, H, W, channels), changed alike: a clip is one camera
    set-up, so its frames must stay consistent with each other; only the set-up varies. Draws from `rng` in a fixed
    order (shift, flip, gamma), so a seed gives the same changes."""
    shift, height, width = augmentation.shift, cells.shape[1], cells.shape[2]
    dy, dx = rng.integers(-shift, shift + 1, size=2) if shift else (0, 0)
    pad = [(0, 0), (shift, shift), (shift, shift)] + [(0, 0)] * (cells.ndim - 3)
    moved = np.pad(cells, pad, mode="edge")[:, shift + dy : shift + dy + height, shift + dx : shift + dx + width]
    if augmentation.flip and rng.random() < 0.5:
        moved = moved[:, :, ::-1]
    if augmentation.gamma:
        exponent = rng.uniform(1 - augmentation.gamma, 1 + augmentation.gamma)
        curve = (np.arange(256) / 255.0) ** exponent * 255.0
        moved = curve.round().astype(np.uint8)[moved]
    return np.ascontiguousarray(moved)


def augment_mosaic(
    mosaic: np.ndarray, config: MosaicConfig, rng: np.random.Generator, augmentation: Augmentation
) -> np.ndarray:
    """A mosaic (H, W, channels) with its cells changed as one clip (each cell mirrored in place: time order kept)."""
    if mosaic.shape[:2] != (config.height, config.width):
        raise ValueError(
            f"a {mosaic.shape[1]}x{mosaic.shape[0]} mosaic does not have the recorded {config.width}x{config.height} "
            f"({config.rows}x{config.cols} cells)"
        )
    cells = untile(mosaic, config.rows, config.cols)
    return tile(list(augment_clip(cells, rng, augmentation)), config.rows, config.cols)
