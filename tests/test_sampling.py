import pytest

from lipagent.transform.sampling import sample_indices


def test_seed_formula():
    assert sample_indices(23, 52, 12) == [23 + i * 29 // 11 for i in range(12)]
    assert sample_indices(0, 11, 12) == list(range(12))


def test_clamped_to_existing_frames():
    assert sample_indices(60, 75, 4, num_frames=74) == [60, 65, 70, 73]


def test_single_frame_and_errors():
    assert sample_indices(5, 9, 1) == [5]
    with pytest.raises(ValueError):
        sample_indices(9, 5, 12)
    with pytest.raises(ValueError):
        sample_indices(0, 5, 0)


def test_a_one_frame_span_and_a_one_frame_clip_are_sampled():
    assert sample_indices(5, 5, 4) == [5, 5, 5, 5]
    assert sample_indices(0, 5, 3, num_frames=1) == [0, 0, 0]


def test_mistakes_say_what_is_wrong():
    with pytest.raises(ValueError, match="count must be at least 1, got 0"):
        sample_indices(0, 5, 0)
    with pytest.raises(ValueError, match="empty range: start 9 > end 5"):
        sample_indices(9, 5, 12)
    with pytest.raises(ValueError, match="^a clip with no frames has nothing to sample$"):
        sample_indices(0, 5, 3, num_frames=0)
