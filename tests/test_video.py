import numpy as np
import pytest

from lipagent.transform.video import VideoError, read_frames, read_sampled_frames


def test_full_clip_counts_75_frames(unpacked):
    frames, count = read_frames(unpacked / "s1" / "bbaf2n.mpg", [0, 40, 74])
    assert count == 75
    assert sorted(frames) == [0, 40, 74]
    assert frames[40].shape == (288, 360, 3)


@pytest.mark.parametrize("video_id", ["srbb4n", "sbbbzp", "lrae3s"])
def test_74_frame_videos_are_counted_by_reading(unpacked, video_id):
    _, count = read_frames(unpacked / "s1" / f"{video_id}.mpg", [])
    assert count == 74


def test_selected_frames_equal_a_full_decode(unpacked):
    path = unpacked / "s1" / "bbaf2n.mpg"
    everything, _ = read_frames(path)
    some, _ = read_frames(path, [3, 30, 60])
    for index, frame in some.items():
        assert np.array_equal(frame, everything[index])


def test_indices_past_the_end_get_the_last_frame(unpacked):
    path = unpacked / "s1" / "srbb4n.mpg"
    everything, count = read_frames(path)
    frames, indices, _ = read_sampled_frames(path, [10, 73, 74])
    assert indices == [10, 73, 73]
    assert np.array_equal(frames[2], everything[count - 1])


def test_not_a_video(tmp_path):
    bogus = tmp_path / "bogus.mpg"
    bogus.write_bytes(b"this is not an mpeg stream" * 100)
    with pytest.raises(VideoError, match="bogus.mpg"):
        read_frames(bogus)
    with pytest.raises(VideoError):
        read_frames(tmp_path / "missing.mpg")
