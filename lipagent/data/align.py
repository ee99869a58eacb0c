"""GRID `.align` files: word timings, the spoken region and the transcription."""

from __future__ import annotations

import math
from dataclasses import dataclass

from lipagent.config import ALIGN_UNITS_PER_FRAME, SILENCE_TOKENS


class AlignmentError(ValueError):
    """An .align file that cannot be read as `start end word` lines."""


@dataclass(frozen=True)
class Word:
    start: int
    end: int
    word: str


@dataclass(frozen=True)
class Alignment:
    """A parsed .align file. Times are in 1/25000 s; frames are 25 fps video frame indices."""

    words: tuple[Word, ...]

    @property
    def spoken(self) -> tuple[Word, ...]:
        return tuple(w for w in self.words if w.word not in SILENCE_TOKENS)

    @property
    def text(self) -> str:
        return " ".join(w.word for w in self.spoken)

    @property
    def speech_start_frame(self) -> int:
        """First frame that overlaps speech."""
        return self.spoken[0].start // ALIGN_UNITS_PER_FRAME

    @property
    def speech_end_frame(self) -> int:
        """Last frame that overlaps speech (inclusive)."""
        return max(self.speech_start_frame, math.ceil(self.spoken[-1].end / ALIGN_UNITS_PER_FRAME) - 1)


def parse_alignment(text: str) -> Alignment:
    """Parse .align text (CRLF or LF line endings, `sil`/`sp` tokens allowed)."""
    words = []
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 3:
            raise AlignmentError(f"line {number}: expected 'start end word', got {line.strip()!r}")
        try:
            start, end = int(fields[0]), int(fields[1])
        except ValueError:
            raise AlignmentError(f"line {number}: times must be integers, got {line.strip()!r}") from None
        if end < start:
            raise AlignmentError(f"line {number}: ends before it starts ({start} > {end})")
        words.append(Word(start, end, fields[2].lower()))
    alignment = Alignment(tuple(words))
    if not alignment.spoken:
        raise AlignmentError("no spoken words (only silence)")
    return alignment
