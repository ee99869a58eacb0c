import io
from dataclasses import astuple

import cv2
import mediapipe as mp
import numpy as np
import pytest

from lipagent.config import DEFAULT_CONFIG, LEGACY_SETTINGS, MosaicConfig
from lipagent.transform.mosaic import TurnedBox, build_mosaic, cell_to_frame, crop_cell, encode_jpeg, pixel_box, tile
from lipagent.transform.mouth import (
    LIP_LANDMARKS,
    crop_box,
    face_aligned_box,
    fill_missing,
    interpolate_faces,
    lip_box,
    min_faces,
    smooth_crops,
)
from lipagent.transform.pose import EYE_OUTER_CORNERS


def test_lip_landmarks_are_face_mesh_lips():
    lips = mp.tasks.vision.FaceLandmarksConnections.FACE_LANDMARKS_LIPS
    assert set(LIP_LANDMARKS) == {i for edge in lips for i in (edge.start, edge.end)}
    assert len(LIP_LANDMARKS) == 40


def test_lip_box_is_the_landmarks_bounds_in_pixels():
    lips = np.array([(0.25, 0.6), (0.75, 0.7), (0.5, 0.65)])
    assert lip_box(lips, 400, 200) == (100.0, 120.0, 300.0, 140.0)


def test_crop_box_pads_and_keeps_the_cell_aspect():
    x0, y0, x1, y1 = pixel_box(crop_box((100.0, 100.0, 140.0, 116.0), 0.15, 1.25, 360, 288), 360, 288)
    assert x1 - x0 == 52 and (x1 - x0) / (y1 - y0) == pytest.approx(1.25, abs=0.03)
    assert (x0 + x1) / 2 == pytest.approx(120, abs=1) and (y0 + y1) / 2 == pytest.approx(108, abs=1)


def test_stretch_crop_is_the_padded_lip_box():
    x0, y0, x1, y1 = crop_box((100.0, 100.0, 140.0, 116.0), 0.15, None, 360, 288)
    assert (x1 - x0, y1 - y0) == pytest.approx((52.0, 20.8))
    assert ((x0 + x1) / 2, (y0 + y1) / 2) == pytest.approx((120.0, 108.0))


@pytest.mark.parametrize("aspect", [1.25, None])
def test_crop_box_stays_inside_the_frame(aspect):
    for lips in [(-20.0, -10.0, 10.0, 5.0), (350.0, 280.0, 400.0, 300.0), (0.0, 0.0, 1000.0, 1000.0)]:
        box = crop_box(lips, 0.15, aspect, 360, 288)
        for x0, y0, x1, y1 in (box, pixel_box(box, 360, 288)):
            assert 0 <= x0 < x1 <= 360 and 0 <= y0 < y1 <= 288


def test_missing_boxes_borrow_the_nearest_neighbour():
    a, b = (1.0, 1.0, 2.0, 2.0), (5.0, 5.0, 6.0, 6.0)
    assert fill_missing([None, a, None, None, b, None]) == [a, a, a, b, b, b]
    assert fill_missing([a, None, b]) == [a, a, b], "a tie goes to the earlier frame"
    assert fill_missing([None, a, None, None, None, b]) == [a, a, a, a, b, b]
    with pytest.raises(ValueError, match="^no frame has a face to borrow a box from$"):
        fill_missing([None, None])


def test_face_ratio_threshold():
    assert min_faces(MosaicConfig(rows=3, cols=4, landmarked_frames=0)) == 10
    assert min_faces(MosaicConfig(rows=4, cols=6, landmarked_frames=0)) == 20
    assert min_faces(DEFAULT_CONFIG) == 10, "counted over the 12 landmarked frames of 24"
    assert min_faces(MosaicConfig(rows=3, cols=4, landmarked_frames=30)) == 10, "never more frames than it has"


def test_frames_between_landmarked_ones_get_the_blend_of_their_neighbours():
    points = [np.full((3, 2), 0.0), np.full((3, 2), 6.0), np.full((3, 2), 9.0)]
    boxes = [(0.0, 0.0, 10.0, 4.0), (6.0, 3.0, 12.0, 9.0), (9.0, 3.0, 12.0, 9.0)]
    faces = interpolate_faces(list(zip(boxes, points, strict=True)), [0, 3, 4], 5)
    np.testing.assert_allclose(
        [box for box, _ in faces],
        [
            (0.0, 0.0, 10.0, 4.0),
            (2.0, 1.0, 10.0 + 2 / 3, 4.0 + 5 / 3),
            (4.0, 2.0, 11.0 + 1 / 3, 4.0 + 10 / 3),
            boxes[1],
            boxes[2],
        ],
    )
    assert [float(p[0, 0]) for _, p in faces] == pytest.approx([0.0, 2.0, 4.0, 6.0, 9.0])
    assert faces[3][1] is points[1] and faces[4][1] is points[2], "a landmarked frame keeps its own landmarks"
    with pytest.raises(ValueError, match=r"landmarked positions \[0, 3\] do not span 5 frames"):
        interpolate_faces(list(zip(boxes[:2], points[:2], strict=True)), [0, 3], 5)


def test_tile_is_row_major_in_time():
    cells = [np.full((80, 100, 3), i, dtype=np.uint8) for i in range(12)]
    mosaic = tile(cells, 3, 4)
    assert mosaic.shape == (240, 400, 3)
    assert mosaic[0, 0, 0] == 0 and mosaic[0, 399, 0] == 3 and mosaic[80, 0, 0] == 4 and mosaic[239, 399, 0] == 11
    with pytest.raises(ValueError, match="^a 3x4 mosaic needs 12 cells, got 11$"):
        tile(cells[:11], 3, 4)
    assert tile(cells[:6], 2, 3).shape == (160, 300, 3), "rows and columns are not swapped"


def test_crop_cell_and_jpeg_round_trip():
    frame = np.zeros((288, 360, 3), dtype=np.uint8)
    frame[100:140, 150:200] = (0, 0, 255)
    for resampling, subpixel in (("linear", False), ("area", False), ("linear", True)):
        cell = crop_cell(frame, (150.0, 100.0, 200.0, 140.0), 100, 80, resampling, subpixel)
        # A sub-pixel cut samples the box's outer edge exactly, so its border blends with the pixels outside.
        inner = cell[1:-1, 1:-1] if subpixel else cell
        assert cell.shape == (80, 100, 3) and (inner[..., 2] == 255).all(), (resampling, subpixel)
    mosaic = build_mosaic([frame] * 24, [(150, 100, 200, 140)] * 24, DEFAULT_CONFIG)
    decoded = cv2.imdecode(np.frombuffer(encode_jpeg(mosaic, 95), np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == (320, 600, 3)
    assert np.abs(decoded.astype(int) - mosaic.astype(int)).mean() < 2
    noisy = np.random.default_rng(0).integers(0, 256, (240, 400, 3), dtype=np.uint8)
    assert len(encode_jpeg(noisy, 50)) < len(encode_jpeg(noisy, 95)) < len(encode_jpeg(noisy, 100)), "quality is used"


def _ramp() -> np.ndarray:
    """A frame whose pixels all differ smoothly, so resampling choices show."""
    y, x = np.mgrid[0:288, 0:360]
    return np.dstack([(x * 0.7) % 256, (y * 0.9) % 256, ((x + y) * 0.3) % 256]).astype(np.uint8)


def test_subpixel_cut_of_a_whole_pixel_box_matches_the_linear_resize():
    frame = _ramp()
    pixel = crop_cell(frame, (40.0, 60.0, 100.0, 85.0), 100, 80, "linear", subpixel=False)
    subpixel = crop_cell(frame, (40.0, 60.0, 100.0, 85.0), 100, 80, "linear", subpixel=True)
    assert np.abs(pixel.astype(int) - subpixel.astype(int)).max() <= 1


def test_subpixel_cut_follows_a_fractional_shift_and_area_differs_from_linear():
    frame = _ramp()
    whole = crop_cell(frame, (40.0, 60.0, 100.0, 85.0), 100, 80, "linear", subpixel=True)
    shifted = crop_cell(frame, (40.4, 60.0, 100.4, 85.0), 100, 80, "linear", subpixel=True)
    assert not np.array_equal(whole, shifted), "a sub-pixel cut must see a 0.4 px move that rounding hides"
    area = crop_cell(frame, (40.0, 60.0, 100.0, 85.0), 100, 80, "area")
    assert not np.array_equal(area, crop_cell(frame, (40.0, 60.0, 100.0, 85.0), 100, 80, "linear"))


def _face_points(turn_degrees: float = 0.0, about: tuple[float, float] = (180.0, 140.0)) -> np.ndarray:
    """478 landmarks of a made-up upright face (outer eye corners 100 px apart at y=100, lips spanning x 150-210 and
    y 170-190), turned about `about` by `turn_degrees` clockwise in the image."""
    points = np.full((478, 2), 180.0)
    points[EYE_OUTER_CORNERS[0]] = (130.0, 100.0)
    points[EYE_OUTER_CORNERS[1]] = (230.0, 100.0)
    lips = np.array(LIP_LANDMARKS)
    points[lips] = np.column_stack([np.linspace(150.0, 210.0, len(lips)), np.tile([170.0, 190.0, 180.0, 175.0], 10)])
    angle = np.radians(turn_degrees)
    turn = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return (points - about) @ turn.T + about


def test_a_face_aligned_box_is_sized_by_the_eyes_centred_on_the_lips_and_turned_with_the_eye_line():
    box = face_aligned_box(_face_points(), width_in_eyes=1.2, aspect=1.25)
    assert astuple(box) == pytest.approx((180.0, 180.0, 120.0, 96.0, 0.0))
    turned = face_aligned_box(_face_points(30.0), width_in_eyes=1.2, aspect=1.25)
    angle = np.radians(30.0)
    centre = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]) @ (0.0, 40.0) + (180, 140)
    assert (turned.cx, turned.cy) == pytest.approx(tuple(centre))
    assert (turned.width, turned.height, turned.angle) == pytest.approx((120.0, 96.0, 30.0))


def test_a_face_aligned_box_keeps_its_size_while_the_mouth_opens():
    closed, opened = _face_points(), _face_points()
    opened[list(LIP_LANDMARKS)] = opened[list(LIP_LANDMARKS)] * (1.0, 1.5) + (0.0, -80.0)
    still, moved = (face_aligned_box(p, 1.0, 1.25) for p in (closed, opened))
    assert (moved.width, moved.height) == (still.width, still.height)
    assert moved.cy == pytest.approx(180.0 * 1.5 - 80.0), "the centre follows the lips' box"


def test_a_turned_cut_at_no_angle_is_the_subpixel_cut_and_a_quarter_turn_transposes_it():
    frame = _ramp()
    box = (40.25, 60.5, 90.25, 100.5)
    turned = TurnedBox(65.25, 80.5, 50.0, 40.0, 0.0)
    np.testing.assert_array_equal(crop_cell(frame, turned, 100, 80), crop_cell(frame, box, 100, 80, subpixel=True))
    square = crop_cell(frame, TurnedBox(70.0, 84.0, 40.0, 40.0, 0.0), 40, 40)
    quarter = crop_cell(frame, TurnedBox(70.0, 84.0, 40.0, 40.0, 90.0), 40, 40)
    # A box turned a quarter clockwise (a face rolled that way) is levelled: its cell is the square turned back.
    np.testing.assert_array_equal(quarter, np.rot90(square))


def test_the_cell_map_puts_each_cell_pixel_centre_on_the_turned_box():
    matrix = cell_to_frame(TurnedBox(100.0, 50.0, 20.0, 10.0, 90.0), 20, 10)
    # The cell's top-left pixel centre sits half a box-pixel in from the box's corner; turned 90 degrees clockwise
    # that corner is at (cx + h/2, cy - w/2), and frame pixel indices are coordinates minus one half.
    assert matrix @ (0, 0, 1) == pytest.approx((100.0 + 5.0 - 0.5 - 0.5, 50.0 - 10.0 + 0.5 - 0.5))
    assert matrix @ (19, 9, 1) == pytest.approx((100.0 - 5.0 + 0.5 - 0.5, 50.0 + 10.0 - 0.5 - 0.5))


def test_smoothing_averages_centres_and_keeps_a_lip_boxs_size():
    boxes = [(0.0, 0.0, 10.0, 4.0), (3.0, 0.0, 13.0, 4.0), (6.0, 3.0, 12.0, 5.0), (9.0, 0.0, 19.0, 4.0)]
    assert smooth_crops(boxes, 0) == boxes
    smoothed = smooth_crops(boxes, 1)
    centres = [(6.5, 2.0), (22 / 3, 8 / 3), (31 / 3, 8 / 3), (11.5, 3.0)]
    sizes = [(10.0, 4.0), (10.0, 4.0), (6.0, 2.0), (10.0, 4.0)]
    for box, (cx, cy), (w, h) in zip(smoothed, centres, sizes, strict=True):
        assert box == pytest.approx((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2))
    assert smooth_crops(boxes, 5)[0] == pytest.approx((4.0, 0.5, 14.0, 4.5)), "fewer neighbours at the ends"


def test_smoothing_a_turned_box_averages_its_size_and_angle_too():
    boxes = [
        TurnedBox(0.0, 0.0, 10.0, 8.0, 0.0),
        TurnedBox(2.0, 4.0, 12.0, 9.6, 3.0),
        TurnedBox(4.0, 2.0, 8.0, 6.4, -6.0),
    ]
    np.testing.assert_allclose(
        [astuple(b) for b in smooth_crops(boxes, 1)],
        [(1.0, 2.0, 11.0, 8.8, 1.5), (2.0, 2.0, 10.0, 8.0, -1.0), (3.0, 3.0, 10.0, 8.0, -1.5)],
    )
    assert all(isinstance(b, TurnedBox) for b in smooth_crops(boxes, 1))


def test_mosaic_settings_are_checked_and_parsed():
    defaults = (DEFAULT_CONFIG.landmarks, DEFAULT_CONFIG.crop, DEFAULT_CONFIG.resampling)
    assert defaults == ("tracking", "stretch", "linear"), "what bench/bench_accuracy.py measured to read best"
    with pytest.raises(ValueError, match="landmarks='sometimes'"):
        MosaicConfig(landmarks="sometimes")
    with pytest.raises(ValueError, match="needs resampling='linear'"):
        MosaicConfig(resampling="area", subpixel_crop=True)
    with pytest.raises(ValueError, match="^crop=face_aligned samples .* needs resampling='linear'"):
        MosaicConfig(resampling="area", crop="face_aligned")
    with pytest.raises(ValueError, match="face_crop_width must be > 0 eye distances, got 0"):
        MosaicConfig(crop="face_aligned", face_crop_width=0)
    with pytest.raises(ValueError, match="crop_smoothing must be >= 0 frames, got -1"):
        MosaicConfig(crop_smoothing=-1)
    assert MosaicConfig(crop_smoothing=0).crop_smoothing == 0
    for bad in (-1, 1):
        with pytest.raises(ValueError, match=f"landmarked_frames must be 0 .every frame. or at least 2, got {bad}"):
            MosaicConfig(landmarked_frames=bad)
    assert MosaicConfig(rows=4, cols=6, landmarked_frames=12).landmarked_count == 12
    assert DEFAULT_CONFIG.landmarked_count == MosaicConfig(rows=3, cols=4, landmarked_frames=40).landmarked_count == 12
    assert MosaicConfig(landmarked_frames=0).landmarked_count == 24
    assert DEFAULT_CONFIG.min_clip_frames == 12, "a short utterance is read with some frames repeated, not refused"
    assert MosaicConfig(rows=2, cols=3).min_clip_frames == 6
    changed = DEFAULT_CONFIG.with_overrides({"landmarks": "static", "subpixel_crop": "true", "lip_padding": "0.2"})
    assert (changed.landmarks, changed.subpixel_crop, changed.lip_padding) == ("static", True, 0.2)
    for bad, message in (
        ({"colour": "red"}, "unknown mosaic setting"),
        ({"rows": "three"}, "takes a int"),
        ({"subpixel_crop": "maybe"}, "true or false"),
    ):
        with pytest.raises(ValueError, match=message):
            DEFAULT_CONFIG.with_overrides(bad)


def test_a_record_without_the_new_settings_reads_as_the_legacy_mosaics():
    old_card = {k: v for k, v in DEFAULT_CONFIG.to_dict().items() if k not in LEGACY_SETTINGS}
    assert MosaicConfig.from_dict(old_card) == MosaicConfig(**{**old_card, **LEGACY_SETTINGS})
    assert MosaicConfig.from_dict(DEFAULT_CONFIG.to_dict()) == DEFAULT_CONFIG
    assert "tracking mode" in DEFAULT_CONFIG.describe() and "stretched" in DEFAULT_CONFIG.describe()
    assert MosaicConfig.from_dict({k: v for k, v in old_card.items() if k != "crop_smoothing"}).crop_smoothing == 0
    aligned = MosaicConfig(crop="face_aligned", face_crop_width=1.2, crop_smoothing=1, rows=4, cols=6)
    assert MosaicConfig.from_dict(aligned.to_dict()) == aligned, "a model reads with the crop its data was cut with"


def test_the_settings_say_themselves():
    assert DEFAULT_CONFIG.describe() == (
        "Face Mesh (Tasks API) tracking mode, lip box padded 0.15 stretched to the cell, landmarks on 12 of 24 frames "
        "(the rest interpolated), linear resampling, 4x6 frames"
    )
    aligned = MosaicConfig(crop="face_aligned", face_crop_width=1.5, crop_smoothing=2, landmarked_frames=0)
    assert aligned.describe() == (
        "Face Mesh (Tasks API) tracking mode, mouth-centred box 1.5 eye distances wide turned with the eye line, "
        "crop smoothed over 2 sampled frames either side, linear resampling, 4x6 frames"
    )
    assert MosaicConfig(rows=4, cols=3).describe().endswith(", 4x3 frames")
    assert "crop smoothed over 1 sampled frame either side," in MosaicConfig(crop_smoothing=1).describe()
    assert (
        MosaicConfig(rows=4, cols=6, landmarked_frames=12)
        .describe()
        .endswith(
            ", lip box padded 0.15 stretched to the cell, landmarks on 12 of 24 frames (the rest interpolated), "
            "linear resampling, 4x6 frames"
        )
    )
    assert "interpolated" not in MosaicConfig(rows=3, cols=4).describe(), "12 of 12: every frame landmarked"
    assert MosaicConfig(rows=3, cols=4).describe().endswith("linear resampling, 3x4 frames")


def test_a_both_spans_dataset_trains_on_each_span_and_is_evaluated_on_detected_ones():
    from lipagent.data.recipe import describe_span, evaluated_span, spans_of_split

    assert spans_of_split("both", "train") == ("aligned", "detected")
    assert spans_of_split("both", "validation") == spans_of_split("both", "test") == ("detected",)
    assert spans_of_split("aligned", "train") == ("aligned",) and spans_of_split("detected", "train") == ("detected",)
    assert evaluated_span("both") == evaluated_span("detected") == "detected" and evaluated_span("aligned") == "aligned"
    assert "two rows" in describe_span("both") and ".align" in describe_span("aligned")
    with pytest.raises(ValueError, match="aligned, detected, both"):
        spans_of_split("sometimes", "train")


def test_a_mosaic_reaches_a_model_as_an_rgb_image_whatever_it_came_as():
    from PIL import Image

    from lipagent.transform.mosaic import mosaic_image

    bgr = np.zeros((240, 400, 3), dtype=np.uint8)
    bgr[..., 2] = 255  # red in OpenCV's order
    jpeg = encode_jpeg(bgr, 95)
    for given in (jpeg, bytearray(jpeg), Image.open(io.BytesIO(jpeg)), Image.new("RGBA", (400, 240), (255, 0, 0, 9))):
        image = mosaic_image(given)
        assert image.mode == "RGB" and image.size == (400, 240)
        assert image.getpixel((10, 10))[0] > 240 and image.getpixel((10, 10))[2] < 15, "red stays red"


def test_an_empty_crop_box_is_refused_naming_it():
    with pytest.raises(ValueError, match=r"empty crop box \(10.0, 10.0, 10.0, 10.0\)"):
        crop_cell(np.zeros((0, 0, 3), np.uint8), (10.0, 10.0, 10.0, 10.0), 100, 80)


@pytest.mark.parametrize(
    "box, expected",
    [
        ((10.2, -3.0, 30.4, 5.0), (10, 0, 30, 8)),  # above the top edge: moved down, not cut
        ((10.0, 0.4, 30.0, 16.4), (10, 0, 30, 16)),  # starting in the first row
        ((10.0, 280.0, 30.0, 300.0), (10, 268, 30, 288)),  # below the bottom edge: moved up, not cut
        ((10.0, 50.2, 30.0, 50.9), (10, 50, 30, 51)),  # thinner than a pixel: one row
    ],
)
def test_pixel_boxes_at_the_frame_edges(box, expected):
    assert pixel_box(box, 360, 288) == expected


def test_a_subpixel_box_past_the_frame_repeats_the_edge_pixels():
    """Where the box leaves the frame the cell shows the nearest edge pixel, not black."""
    frame = np.full((288, 360, 3), 200, np.uint8)
    cell = crop_cell(frame, (-20.0, -10.0, 30.0, 30.0), 100, 80, "linear", subpixel=True)
    assert cell.min() == 200 and cell.max() == 200
