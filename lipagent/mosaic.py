"""Mouth crops tiled into one image: the model's whole view of a clip."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from lipagent.config import MosaicConfig

Box = tuple[int, int, int, int]
"""x0, y0, x1, y1 in pixels, x1/y1 exclusive."""


def crop_cell(frame: np.ndarray, box: Box, width: int, height: int) -> np.ndarray:
    """The box cut from the frame and resized to one mosaic cell."""
    x0, y0, x1, y1 = box
    crop = frame[y0:y1, x0:x1]
    if crop.size == 0:
        raise ValueError(f"empty crop box {box} for a frame of shape {frame.shape}")
    return cv2.resize(crop, (width, height), interpolation=cv2.INTER_AREA)


def tile(cells: Sequence[np.ndarray], rows: int, cols: int) -> np.ndarray:
    """Cells laid out row-major: time runs left to right, then top to bottom."""
    if len(cells) != rows * cols:
        raise ValueError(f"a {rows}x{cols} mosaic needs {rows * cols} cells, got {len(cells)}")
    return np.vstack([np.hstack(cells[r * cols : (r + 1) * cols]) for r in range(rows)])


def build_mosaic(frames: Sequence[np.ndarray], boxes: Sequence[Box], config: MosaicConfig) -> np.ndarray:
    """The mosaic (BGR, config.height x config.width) of one crop per sampled frame."""
    cells = [crop_cell(f, b, config.cell_width, config.cell_height) for f, b in zip(frames, boxes, strict=True)]
    return tile(cells, config.rows, config.cols)


def encode_jpeg(image_bgr: np.ndarray, quality: int) -> bytes:
    """JPEG bytes, the form the dataset stores and inference sends (so both see the same pixels)."""
    ok, buffer = cv2.imencode(".jpg", image_bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buffer.tobytes()
