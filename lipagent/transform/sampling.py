"""Which frames of a clip go into a mosaic."""

from __future__ import annotations


def sample_indices(start: int, end: int, count: int, num_frames: int | None = None) -> list[int]:
    """`count` frame indices spread evenly over the inclusive range [start, end].

    The seed formula `start + i*(end-start)//(count-1)`, clamped to the frames that exist when
    `num_frames` is known (a 74-frame video whose alignment runs to frame 74 repeats its last frame).
    """
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    if end < start:
        raise ValueError(f"empty range: start {start} > end {end}")
    if count == 1:
        indices = [start]
    else:
        indices = [start + i * (end - start) // (count - 1) for i in range(count)]
    if num_frames is not None:
        if num_frames < 1:
            raise ValueError("a clip with no frames has nothing to sample")
        indices = [min(max(i, 0), num_frames - 1) for i in indices]
    return indices
