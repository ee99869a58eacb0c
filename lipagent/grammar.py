"""The GRID sentence grammar: command color preposition letter digit adverb.

Used to reject transcriptions outside the corpus, to score predictions slot by slot, and to constrain
decoding to valid sentences.
"""

from __future__ import annotations

import string
from typing import NamedTuple

SLOT_NAMES: tuple[str, ...] = ("command", "color", "preposition", "letter", "digit", "adverb")

SLOTS: dict[str, tuple[str, ...]] = {
    "command": ("bin", "lay", "place", "set"),
    "color": ("blue", "green", "red", "white"),
    "preposition": ("at", "by", "in", "with"),
    "letter": tuple(c for c in string.ascii_lowercase if c != "w"),
    "digit": ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"),
    "adverb": ("again", "now", "please", "soon"),
}

VOCABULARY: frozenset[str] = frozenset(w for words in SLOTS.values() for w in words)


class GridSentence(NamedTuple):
    command: str
    color: str
    preposition: str
    letter: str
    digit: str
    adverb: str

    @property
    def text(self) -> str:
        return " ".join(self)


def normalize(text: str) -> str:
    """Lowercase and collapse whitespace: the form stored in the dataset and compared in metrics."""
    return " ".join(text.lower().split())


def parse_sentence(text: str) -> GridSentence | None:
    """The six slots of a GRID sentence, or None when `text` is not one."""
    words = normalize(text).split()
    if len(words) != len(SLOT_NAMES):
        return None
    if any(word not in SLOTS[slot] for slot, word in zip(SLOT_NAMES, words)):
        return None
    return GridSentence(*words)


def is_valid_sentence(text: str) -> bool:
    return parse_sentence(text) is not None


def sentence_count() -> int:
    """How many distinct sentences the grammar allows (64,000)."""
    count = 1
    for words in SLOTS.values():
        count *= len(words)
    return count
