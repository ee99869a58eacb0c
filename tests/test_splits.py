from collections import Counter

import pytest

from lipagent.data.splits import assign_split, bucket

BUCKETS = [1, 68, 84]


def test_split_is_pinned_to_the_id():
    """These values must never change: a change would move published videos between splits."""
    assert [bucket(v) for v in ("bbaf2n", "lrae3s", "sgib8n")] == BUCKETS
    assert [assign_split(v, "s1") for v in ("bbaf2n", "lrae3s", "sgib8n")] == ["train", "train", "validation"]


def test_overlapped_is_about_80_10_10():
    ids = [f"{a}{b}{c}{d}" for a in "blps" for b in "bgrw" for c in "abiw" for d in "0123456789"]
    counts = Counter(assign_split(i, "s1") for i in ids)
    assert counts["train"] / len(ids) == pytest.approx(0.8, abs=0.06)
    assert counts["validation"] / len(ids) == pytest.approx(0.1, abs=0.04)


def test_unseen_holds_out_whole_speakers():
    for speaker in ("s1", "s2", "s20", "s22"):
        assert assign_split("bbaf2n", speaker, "unseen") == "test"
    assert {assign_split(f"x{i}", "s3", "unseen") for i in range(200)} == {"train", "validation"}


def test_unknown_scheme():
    with pytest.raises(ValueError, match="overlapped"):
        assign_split("bbaf2n", "s1", "random")
