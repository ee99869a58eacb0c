"""Mouth crops tiled into one image: the model's whole view of a clip."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from lipagent.config import MosaicConfig

Box = tuple[int, int, int, int]
"""x0, y0, x1, y1 in pixels, x1/y1 exclusive."""

FloatBox = tuple[float, float, float, float]
"""x0, y0, x1, y1 in continuous pixel coordinates (pixel i covers [i, i + 1))."""


@dataclass(frozen=True)
class TurnedBox:
    """A box in the face's own axes (a face_aligned crop): its centre and size in pixels, and the angle of its width
    axis in degrees (clockwise in the image, as the eye line runs)."""

    cx: float
    cy: float
    width: float
    height: float
    angle: float


CropBox = FloatBox | TurnedBox

INTERPOLATION = {"linear": cv2.INTER_LINEAR, "area": cv2.INTER_AREA}


def pixel_box(box: FloatBox, width: int, height: int) -> Box:
    """The float box rounded to whole pixels (size rounded, then position), still inside the frame."""
    x0, y0, x1, y1 = box
    w, h = max(1, round(x1 - x0)), max(1, round(y1 - y0))
    left = min(max(round(x0), 0), width - w)
    top = min(max(round(y0), 0), height - h)
    return left, top, left + w, top + h


def cell_to_frame(box: CropBox, width: int, height: int) -> np.ndarray:
    """The affine map (2x3) from a `width` x `height` cell's pixel indices to the frame's, for a bilinear warp.

    Cell pixel centre u + 0.5 lies at the box's own coordinate (u + 0.5) * sx from its left edge; that point, turned
    with the box and moved to its place, has the frame pixel index one half less."""
    if not isinstance(box, TurnedBox):
        x0, y0, x1, y1 = box
        sx, sy = (x1 - x0) / width, (y1 - y0) / height
        return np.array([[sx, 0.0, x0 + 0.5 * sx - 0.5], [0.0, sy, y0 + 0.5 * sy - 0.5]])
    cx, cy, w, h = box.cx, box.cy, box.width, box.height
    sx, sy = w / width, h / height
    cos, sin = math.cos(math.radians(box.angle)), math.sin(math.radians(box.angle))
    u0, v0 = 0.5 * sx - w / 2, 0.5 * sy - h / 2
    return np.array(
        [
            [sx * cos, -sy * sin, cx + u0 * cos - v0 * sin - 0.5],
            [sx * sin, sy * cos, cy + u0 * sin + v0 * cos - 0.5],
        ]
    )


def crop_cell(
    frame: np.ndarray, box: CropBox, width: int, height: int, resampling: str = "linear", subpixel: bool = False
) -> np.ndarray:
    """The box cut from the frame and resized to one `width` x `height` mosaic cell.

    A turned box, or any box with `subpixel`, is sampled exactly through an affine warp (bilinear); otherwise the
    box is rounded to whole pixels, cut and resized with `resampling`."""
    if subpixel or isinstance(box, TurnedBox):
        return cv2.warpAffine(
            frame,
            cell_to_frame(box, width, height),
            (width, height),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REPLICATE,
        )
    x0, y0, x1, y1 = pixel_box(box, frame.shape[1], frame.shape[0])
    crop = frame[y0:y1, x0:x1]
    if crop.size == 0:
        raise ValueError(f"empty crop box {box} for a frame of shape {frame.shape}")
    return cv2.resize(crop, (width, height), interpolation=INTERPOLATION[resampling])


def tile(cells: Sequence[np.ndarray], rows: int, cols: int) -> np.ndarray:
    """Cells laid out row-major: time runs left to right, then top to bottom."""
    if len(cells) != rows * cols:
        raise ValueError(f"a {rows}x{cols} mosaic needs {rows * cols} cells, got {len(cells)}")
    return np.vstack([np.hstack(cells[r * cols : (r + 1) * cols]) for r in range(rows)])


def untile(mosaic: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """A mosaic's cells in time order, (rows * cols, cell height, cell width[, channels]): `tile` undone."""
    height, width = mosaic.shape[0] // rows, mosaic.shape[1] // cols
    cells = mosaic.reshape(rows, height, cols, width, *mosaic.shape[2:]).swapaxes(1, 2)
    return cells.reshape(rows * cols, height, width, *mosaic.shape[2:])


def build_mosaic(frames: Sequence[np.ndarray], boxes: Sequence[CropBox], config: MosaicConfig) -> np.ndarray:
    """The mosaic (BGR, config.height x config.width) of one crop per sampled frame, cut as `config` says."""
    cells = [
        crop_cell(f, b, config.cell_width, config.cell_height, config.resampling, config.subpixel_crop)
        for f, b in zip(frames, boxes, strict=True)
    ]
    return tile(cells, config.rows, config.cols)


def mosaic_image(mosaic: Image.Image | bytes) -> Image.Image:
    """A mosaic as the RGB image a model receives (JPEG bytes decoded as datasets decodes them)."""
    image = Image.open(io.BytesIO(mosaic)) if isinstance(mosaic, (bytes, bytearray)) else mosaic
    return image.convert("RGB")


def encode_jpeg(image_bgr: np.ndarray, quality: int) -> bytes:
    """JPEG bytes, the form the dataset stores and inference sends (so both see the same pixels)."""
    ok, buffer = cv2.imencode(".jpg", image_bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buffer.tobytes()
