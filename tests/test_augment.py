import numpy as np
import pytest

from lipagent.config import MosaicConfig
from lipagent.transform.augment import Augmentation, augment_clip, augment_mosaic
from lipagent.transform.mosaic import tile

CONFIG = MosaicConfig(rows=2, cols=3, cell_width=8, cell_height=6)


def _cells() -> np.ndarray:
    """Six 6x8 RGB cells, each a different ramp, so any move, mirror or reorder shows."""
    ramp = np.arange(6 * 8, dtype=np.uint8).reshape(6, 8)
    return np.stack([np.stack([ramp + 40 * k, ramp * 2, ramp + k], axis=-1) for k in range(6)]).astype(np.uint8)


def test_nothing_asked_changes_nothing():
    cells = _cells()
    assert not Augmentation().active
    assert np.array_equal(augment_clip(cells, np.random.default_rng(0), Augmentation()), cells)


def test_a_mirrored_mosaic_mirrors_each_cell_in_place_keeping_time_order():
    cells = _cells()
    mosaic = tile(list(cells), CONFIG.rows, CONFIG.cols)
    seed = next(s for s in range(100) if np.random.default_rng(s).random() < 0.5)  # the coin that mirrors
    flipped = augment_mosaic(mosaic, CONFIG, np.random.default_rng(seed), Augmentation(flip=True))
    assert np.array_equal(flipped, tile(list(cells[:, :, ::-1]), CONFIG.rows, CONFIG.cols))


def test_a_shift_moves_every_cell_alike_repeating_the_edge():
    cells = _cells()
    moved = augment_clip(cells, np.random.default_rng(3), Augmentation(shift=2))
    dy, dx = np.random.default_rng(3).integers(-2, 3, size=2)
    assert (dy, dx) != (0, 0), "pick a seed that moves"
    padded = np.pad(cells, [(0, 0), (2, 2), (2, 2), (0, 0)], mode="edge")
    assert np.array_equal(moved, padded[:, 2 + dy : 2 + dy + 6, 2 + dx : 2 + dx + 8])


def test_gamma_bends_every_cell_by_one_exponent():
    cells = _cells()
    bent = augment_clip(cells, np.random.default_rng(1), Augmentation(gamma=0.4))
    exponent = np.random.default_rng(1).uniform(0.6, 1.4)
    expected = ((np.arange(256) / 255.0) ** exponent * 255.0).round().astype(np.uint8)[cells]
    assert np.array_equal(bent, expected) and not np.array_equal(bent, cells)


def test_out_of_range_changes_and_wrong_sized_mosaics_are_refused():
    with pytest.raises(ValueError, match=r"^augmentation out of range: shift -1 \(>= 0\), gamma 0.0"):
        Augmentation(shift=-1)
    with pytest.raises(ValueError, match="gamma 1.0 .0 to <1."):
        Augmentation(gamma=1.0)
    with pytest.raises(ValueError, match=r"^a 24x10 mosaic does not have the recorded 24x12 \(2x3 cells\)$"):
        augment_mosaic(np.zeros((10, 24, 3), np.uint8), CONFIG, np.random.default_rng(0), Augmentation(flip=True))
