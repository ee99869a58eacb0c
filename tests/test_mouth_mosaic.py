import cv2
import mediapipe as mp
import numpy as np
import pytest

from lipagent.config import DEFAULT_CONFIG
from lipagent.mosaic import build_mosaic, crop_cell, encode_jpeg, tile
from lipagent.mouth import LIP_LANDMARKS, crop_box, fill_missing, lip_box, min_faces


def test_lip_landmarks_are_face_mesh_lips():
    assert set(LIP_LANDMARKS) == {i for edge in mp.solutions.face_mesh.FACEMESH_LIPS for i in edge}
    assert len(LIP_LANDMARKS) == 40


def test_lip_box_is_the_landmarks_bounds_in_pixels():
    lips = np.array([(0.25, 0.6), (0.75, 0.7), (0.5, 0.65)])
    assert lip_box(lips, 400, 200) == (100.0, 120.0, 300.0, 140.0)


def test_crop_box_pads_and_keeps_the_cell_aspect():
    box = crop_box((100.0, 100.0, 140.0, 116.0), 0.15, 1.25, 360, 288)
    x0, y0, x1, y1 = box
    assert x1 - x0 == 52 and (x1 - x0) / (y1 - y0) == pytest.approx(1.25, abs=0.03)
    assert (x0 + x1) / 2 == pytest.approx(120, abs=1) and (y0 + y1) / 2 == pytest.approx(108, abs=1)


def test_crop_box_stays_inside_the_frame():
    for lips in [(-20.0, -10.0, 10.0, 5.0), (350.0, 280.0, 400.0, 300.0), (0.0, 0.0, 1000.0, 1000.0)]:
        x0, y0, x1, y1 = crop_box(lips, 0.15, 1.25, 360, 288)
        assert 0 <= x0 < x1 <= 360 and 0 <= y0 < y1 <= 288


def test_missing_boxes_borrow_the_nearest_neighbour():
    a, b = (1.0, 1.0, 2.0, 2.0), (5.0, 5.0, 6.0, 6.0)
    assert fill_missing([None, a, None, None, b, None]) == [a, a, a, b, b, b]
    with pytest.raises(ValueError):
        fill_missing([None, None])


def test_face_ratio_threshold():
    assert min_faces(DEFAULT_CONFIG) == 10


def test_tile_is_row_major_in_time():
    cells = [np.full((80, 100, 3), i, dtype=np.uint8) for i in range(12)]
    mosaic = tile(cells, 3, 4)
    assert mosaic.shape == (240, 400, 3)
    assert mosaic[0, 0, 0] == 0 and mosaic[0, 399, 0] == 3 and mosaic[80, 0, 0] == 4 and mosaic[239, 399, 0] == 11
    with pytest.raises(ValueError):
        tile(cells[:11], 3, 4)


def test_crop_cell_and_jpeg_round_trip():
    frame = np.zeros((288, 360, 3), dtype=np.uint8)
    frame[100:140, 150:200] = (0, 0, 255)
    cell = crop_cell(frame, (150, 100, 200, 140), 100, 80)
    assert cell.shape == (80, 100, 3) and (cell[..., 2] == 255).all()
    mosaic = build_mosaic([frame] * 12, [(150, 100, 200, 140)] * 12, DEFAULT_CONFIG)
    decoded = cv2.imdecode(np.frombuffer(encode_jpeg(mosaic, 95), np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == (240, 400, 3)
    assert np.abs(decoded.astype(int) - mosaic.astype(int)).mean() < 2
