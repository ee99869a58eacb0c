"""Deterministic train/validation/test assignment that depends only on a video's id and the scheme.

Hashing the id (rather than shuffling a list) means adding speakers or videos never moves a video
from one split to another.
"""

from __future__ import annotations

import hashlib

SPLITS: tuple[str, ...] = ("train", "validation", "test")
SCHEMES: tuple[str, ...] = ("overlapped", "unseen")
UNSEEN_TEST_SPEAKERS: frozenset[str] = frozenset({"s1", "s2", "s20", "s22"})
"""Speakers held out whole under the `unseen` scheme, as in the LipNet protocol."""


def bucket(video_id: str) -> int:
    """A stable number in [0, 100) for a video id."""
    return int.from_bytes(hashlib.sha256(video_id.encode()).digest()[:8], "big") % 100


def assign_split(video_id: str, speaker: str, scheme: str = "overlapped") -> str:
    """`overlapped`: 80/10/10 of every speaker's videos; `unseen`: s1, s2, s20, s22 whole as test,
    the other speakers' videos 90/10 train/validation."""
    b = bucket(video_id)
    if scheme == "overlapped":
        return "train" if b < 80 else "validation" if b < 90 else "test"
    if scheme == "unseen":
        if speaker in UNSEEN_TEST_SPEAKERS:
            return "test"
        return "train" if b < 90 else "validation"
    raise ValueError(f"unknown split scheme {scheme!r}; choose one of {', '.join(SCHEMES)}")
