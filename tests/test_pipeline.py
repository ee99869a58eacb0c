from dataclasses import replace

import cv2
import numpy as np
import pytest

from lipagent.config import DEFAULT_CONFIG, MosaicConfig
from lipagent.data.align import parse_alignment
from lipagent.transform.mouth import LipLandmarker, process_landmarker
from lipagent.transform.pipeline import ClipRejected, decode_all, video_to_mosaic
from lipagent.transform.skips import SkipReason


def _speech(unpacked, video_id):
    alignment = parse_alignment((unpacked / "alignments" / "s1" / f"{video_id}.align").read_text())
    return alignment.speech_start_frame, alignment.speech_end_frame


def _decode(jpeg: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)


def test_real_clip_makes_a_600x320_mosaic_of_the_spoken_frames(unpacked):
    speech = _speech(unpacked, "bbaf2n")
    mosaic = video_to_mosaic(unpacked / "s1" / "bbaf2n.mpg", speech)
    assert _decode(mosaic.jpeg).shape == (320, 600, 3)
    assert len(mosaic.frame_indices) == 24
    assert mosaic.frame_indices[0] == speech[0] and mosaic.frame_indices[-1] == speech[1]
    assert mosaic.face_frames == 12 and mosaic.num_frames == 75, "a face on each of the 12 landmarked frames"


def test_same_clip_same_bytes_whatever_came_before(unpacked):
    speech = _speech(unpacked, "bbaf2n")
    first = video_to_mosaic(unpacked / "s1" / "bbaf2n.mpg", speech).jpeg
    video_to_mosaic(unpacked / "s1" / "lrae3s.mpg", _speech(unpacked, "lrae3s"))
    assert video_to_mosaic(unpacked / "s1" / "bbaf2n.mpg", speech).jpeg == first


def test_each_setting_changes_the_mosaic_and_the_detector_follows_the_config(unpacked):
    path, speech = unpacked / "s1" / "bbaf2n.mpg", _speech(unpacked, "bbaf2n")
    assert process_landmarker(DEFAULT_CONFIG).mode == "tracking"
    assert process_landmarker(MosaicConfig(landmarks="static")).mode == "static"
    made = {video_to_mosaic(path, speech).jpeg}
    for change in ({"landmarks": "static"}, {"crop": "cell_aspect"}, {"resampling": "area"}, {"subpixel_crop": "true"}):
        mosaic = video_to_mosaic(path, speech, DEFAULT_CONFIG.with_overrides(change))
        assert _decode(mosaic.jpeg).shape == (320, 600, 3) and mosaic.face_frames == 12
        made.add(mosaic.jpeg)
    assert len(made) == 5, "every setting must make a difference to the pixels"


def test_landmarks_on_some_frames_cost_those_calls_only_and_cut_nearly_the_same_cells(unpacked, monkeypatch):
    path, speech = unpacked / "s1" / "bbaf2n.mpg", _speech(unpacked, "bbaf2n")
    every = MosaicConfig(rows=4, cols=6, landmarked_frames=0)
    calls: list[int] = []
    clip_faces = LipLandmarker.clip_faces
    monkeypatch.setattr(
        LipLandmarker, "clip_faces", lambda self, frames: calls.append(len(frames)) or clip_faces(self, frames)
    )
    full = video_to_mosaic(path, speech, every)
    some = video_to_mosaic(path, speech, replace(every, landmarked_frames=12))
    assert calls == [24, 12] and (full.face_frames, some.face_frames) == (24, 12)
    assert some.frame_indices == full.frame_indices
    change = np.abs(_decode(some.jpeg).astype(float) - _decode(full.jpeg)).mean()
    # Measured 4.0 grey levels on this clip (2.7-4.7 on eight); static landmarks instead of tracked ones move them 6.1.
    assert 0 < change < 5.0, f"interpolated crops moved the cells by {change:.2f} grey levels on average"


def test_damaged_clip_still_decodes(unpacked):
    mosaic = video_to_mosaic(unpacked / "s1" / "sgib8n.mpg", _speech(unpacked, "sgib8n"))
    assert mosaic.num_frames == 75 and mosaic.face_frames >= 10


def test_whole_clip_when_no_alignment(unpacked):
    mosaic = video_to_mosaic(unpacked / "s2" / "pwij3p.mpg")
    assert mosaic.frame_indices[0] == 0 and mosaic.frame_indices[-1] == mosaic.num_frames - 1


def _write_clip(path, frames: int, size=(360, 288)) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"PIM1"), 25, size)
    for i in range(frames):
        writer.write(np.full((size[1], size[0], 3), (i * 3) % 255, dtype=np.uint8))
    writer.release()


def test_no_face_is_rejected(tmp_path):
    _write_clip(tmp_path / "blank.mpg", 75)
    with pytest.raises(ClipRejected) as rejected:
        video_to_mosaic(tmp_path / "blank.mpg", (20, 60))
    assert rejected.value.reason is SkipReason.FACE_NOT_FOUND
    assert "0 of 12" in rejected.value.detail


def test_too_few_frames_is_rejected(tmp_path):
    _write_clip(tmp_path / "short.mpg", 30)
    with pytest.raises(ClipRejected) as rejected:
        video_to_mosaic(tmp_path / "short.mpg", (20, 60))
    assert rejected.value.reason is SkipReason.TOO_FEW_FRAMES


def test_not_a_video_is_rejected(tmp_path):
    (tmp_path / "x.mpg").write_bytes(b"\x00" * 4096)
    with pytest.raises(ClipRejected) as rejected:
        video_to_mosaic(tmp_path / "x.mpg", (20, 60))
    assert rejected.value.reason is SkipReason.UNDECODABLE


def test_the_landmarker_follows_the_configs_confidences(unpacked):
    """The landmarker is made with the recorded confidences: at 1.0 it trusts no face, at the default it finds every
    one. (In the Tasks API a failed track falls back to detection, so detection's confidence decides either way.)"""
    from lipagent.transform.mouth import LipLandmarker, landmarker_created_here

    frames = decode_all(unpacked / "s1" / "bbaf2n.mpg")[20:26]
    for mode, unsure in (
        ("static", {"min_detection_confidence": 1.0}),
        ("tracking", {"min_detection_confidence": 1.0}),
    ):
        config = MosaicConfig(landmarks=mode)
        assert all(box is not None for box in LipLandmarker(config).clip_boxes(frames)), mode
        assert LipLandmarker(MosaicConfig(landmarks=mode, **unsure)).clip_boxes(frames) == [None] * 6, mode
    assert landmarker_created_here(), "this process has made a landmarker: its map workers must not be forked from it"


@pytest.mark.parametrize(
    "how, said",
    [("given", "as given"), ("auto", "detected from the mouth"), ("whole", "the whole clip")],
)
def test_a_prepared_clip_says_which_frames_it_read(how, said):
    from lipagent.transform.pipeline import Mosaic, PreparedClip

    clip = PreparedClip(Mosaic(b"", tuple(range(12)), 12, 75), (20, 44), how)
    assert clip.describe() == f"reading frames 20-44 of 75 ({said}; 1.00 s at 25 fps)"


def test_a_clip_is_timed_at_its_own_frame_rate(unpacked, tmp_path):
    """A 30 fps video's span is 25 frames in 0.83 s, not 1.00 s: durations come from the file's header."""
    from lipagent.transform.pipeline import prepare_video

    frames = decode_all(unpacked / "s1" / "bbaf2n.mpg")
    path = tmp_path / "thirty.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, frames[0].shape[1::-1])
    for frame in frames:
        writer.write(frame)
    writer.release()
    clip = prepare_video(path, (20, 44))
    assert clip.fps == 30.0
    assert clip.describe() == "reading frames 20-44 of 75 (as given; 0.83 s at 30 fps)"
    assert prepare_video(unpacked / "s1" / "bbaf2n.mpg", (20, 44)).describe().endswith("(as given; 1.00 s at 25 fps)")


def test_a_stream_keeps_tracking_from_frame_to_frame(unpacked):
    """`live` feeds one landmarker every frame of a camera without resetting it, as one long clip."""
    from lipagent.transform.mouth import LipLandmarker

    frames = decode_all(unpacked / "s1" / "bbaf2n.mpg")[20:23]
    streamed = LipLandmarker(DEFAULT_CONFIG).clip_points(frames[:1])
    tracker = LipLandmarker(DEFAULT_CONFIG)
    points = [tracker.stream_points(frame) for frame in frames]
    assert all(p is not None and p.shape == (478, 2) for p in points), "Face Mesh's 468 points, then 10 more"
    np.testing.assert_allclose(points[0], streamed[0], atol=1e-6)
    assert tracker.stream_points(np.zeros((288, 360, 3), np.uint8)) is None, "no face in a black frame"
