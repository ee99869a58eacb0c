"""Where the speech is, from the mouth alone: a visual speech-span detector over per-frame mouth openings.

Training samples its frames over the spoken part that GRID's `.align` timings give; users have no `.align`, so
inference finds that part from the video. Per frame, `mouth_opening` turns Face Mesh landmarks into the inner-lip
gap over the mouth's width (scale-free: the same for a face near or far); `SpanTracker` smooths it, adds how fast
it changes, measures it above the mouth's rest, and segments it with hysteresis: speech starts when the activity
rises above `start_threshold`, and ends once it has stayed below `stop_threshold` for `hangover` frames, so a pause
between words does not cut a sentence; an utterance too short or too still to be speech is dropped. The tracker
takes one frame at a time and needs only a few frames of look-ahead, so the same code finds the span of a file
(`detect_span`) and segments a live camera (`lipagent live`). Everything here is a pure function of the openings;
landmarks come from `lipagent.transform.mouth`.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from lipagent.config import MIN_CLIP_FRAMES, SPEECH_ONSETS, MosaicConfig

INNER_UPPER_LIP, INNER_LOWER_LIP = 13, 14
"""Face Mesh indices of the inner lips' midpoints."""
MOUTH_CORNERS = (78, 308)
"""Face Mesh indices of the inner mouth corners."""


SPEECH_MODES: tuple[str, ...] = ("auto", "whole")
"""Without a given (start, end): find the spoken part from the mouth (auto), or spread over every frame (whole)."""

Speech = tuple[int, int] | str
"""Where a clip's mosaic frames come from: a given spoken span (first, last frame, inclusive), or a SPEECH_MODES."""


HISTORY_FRAMES = 1500
"""Raw openings a tracker keeps (60 s at 25 fps): enough to place the onset of any utterance it can report."""


class NoSpeechFound(ValueError):
    """The mouth never moved enough to be speaking (or no face was found)."""


@dataclass(frozen=True)
class SpeechConfig:
    """How the detector reads the opening signal; the defaults were chosen on the 450 real s1 clips by the reading
    accuracy of the spans they give (bench/bench_speech.py; docs/results.md), on the legacy Face Mesh solution's
    landmarks: the figures below are that landmarker's (today's default, the same models through the Tasks API,
    smooths over time and finds starts later: docs/results.md)."""

    smoothing: int = 3
    """Frames in the centred moving average of the opening (odd; its half is the look-ahead)."""
    motion_weight: float = 1.0
    """Weight of the frame-to-frame change of the smoothed opening: lips moving without opening wide still speak."""
    rest_window: int = 50
    """Frames (2 s) over which the lowest smoothed opening is the mouth at rest; activity is measured above it, so
    a face that rests with parted lips (a smile) is not forever speaking. 0 measures from a closed mouth."""
    still_change: float = 0.004
    still_frames: int = 12
    """A mouth whose smoothed opening changes by less than `still_change` per frame for `still_frames` frames is at
    rest, whatever its shape: the rest window restarts there, so a face that settles into a new shape (a smile, a
    new speaker) is read from its new rest within half a second instead of the whole window. On the s1 clips a
    resting mouth moves 0.001 per frame (median), and no speech holds still for more than 7 frames."""
    start_threshold: float = 0.05
    """Activity (opening above rest / mouth width, plus motion) above which speech starts."""
    stop_threshold: float = 0.02
    """Activity under which a frame counts as silent."""
    hangover: int = 12
    """Silent frames (0.48 s at 25 fps) that end an utterance; shorter pauses stay inside it."""
    settle_frames: int = 10
    """Frames (0.4 s) the mouth may hold one shape above its rest before the utterance ends at its last moving frame:
    some faces relax into parted lips after a sentence, which the stop threshold reads as speech until the rest
    window catches up (on s31 such ends ran 9-12 frames late; 5 of its 10 clips ended within 3 frames of the .align,
    8 with the rule from 5 to 10 frames). At 10 every one of the 450 s1 spans is as it was (at 9 one changes, at 7
    six: s1's slow final closing). Below `still_frames`, where the rest restarts; 0 turns it off. Recorded with a
    dataset or model (`MosaicConfig.speech_settle`)."""
    min_frames: int = MIN_CLIP_FRAMES
    """Utterances shorter than this (0.48 s) are noise (a lip lick, a swallow), not speech; the fewest frames a clip
    may have to be read, so every utterance found can be read."""
    min_moving_frames: int = 10
    """Utterances in which the mouth moves (changes by `still_change` or more) on fewer frames than this are a face
    taking a new shape (a smile, another speaker), not speech: that moves for the 3-4 frames of the step. Speech
    moves on 20 frames or more on every s1 clip measured (median 30)."""

    onset: str = "jump"
    """Where an utterance starts (SPEECH_ONSETS): the first frame whose activity crosses `start_threshold`
    (threshold), or, from there, the first sharp opening (jump): lips often part slowly and hold for up to half a
    second before a sentence, and the sentence begins with the first quick opening. On the 450 s1 clips jump puts
    the start within 3 frames of the .align start on 64% of clips (threshold: 44%), mean error 3.6 frames (4.8);
    its three settings chosen on either half of the clips give the same gain on the other half (3.6-3.8 against
    4.7-4.9). Recorded with a dataset or model (`MosaicConfig.speech_onset`), so a reader finds spans the way its
    training data did."""
    onset_jump: float = 0.04
    """Frame-to-frame change of the raw opening (over mouth width) that counts as a sharp opening."""
    onset_back: int = 3
    """Frames the start may move back from the jump while the opening keeps falling (to the lips' last minimum)."""
    onset_lead: int = 1
    """Frames kept before that minimum."""

    def __post_init__(self) -> None:
        if self.smoothing < 1 or self.smoothing % 2 == 0:
            raise ValueError(f"smoothing must be an odd number of frames, got {self.smoothing}")
        if not 0 <= self.stop_threshold <= self.start_threshold:
            raise ValueError("need 0 <= stop_threshold <= start_threshold")
        if min(self.hangover, self.rest_window, self.still_change, self.min_moving_frames, self.settle_frames) < 0:
            raise ValueError("hangover, rest_window, still_change, min_moving_frames and settle_frames must be >= 0")
        if self.min_frames < 1 or self.still_frames < 1:
            raise ValueError("min_frames and still_frames must be >= 1")
        if self.settle_frames >= self.still_frames:
            raise ValueError(
                f"settle_frames (a mosaic's speech_settle) must be below still_frames={self.still_frames}, where the "
                f"rest restarts and the hold ends; got {self.settle_frames}"
            )
        if self.onset not in SPEECH_ONSETS:
            raise ValueError(f"onset must be one of {', '.join(SPEECH_ONSETS)}, got {self.onset!r}")
        if min(self.onset_jump, self.onset_back, self.onset_lead) < 0:
            raise ValueError("onset_jump, onset_back and onset_lead must be >= 0")

    @property
    def lookahead(self) -> int:
        return self.smoothing // 2

    def following(self, config: MosaicConfig) -> SpeechConfig:
        """These settings with the onset and settle rules a dataset or model recorded: its spans are found as its
        data's were."""
        return replace(self, onset=config.speech_onset, settle_frames=config.speech_settle)


DEFAULT_SPEECH = SpeechConfig()


def mouth_opening(points: np.ndarray | None) -> float:
    """Inner-lip gap over inner mouth width for one frame's (468, 2) landmarks; NaN when there is no face."""
    if points is None:
        return math.nan
    gap = abs(float(points[INNER_LOWER_LIP, 1] - points[INNER_UPPER_LIP, 1]))
    width = abs(float(points[MOUTH_CORNERS[1], 0] - points[MOUTH_CORNERS[0], 0]))
    return gap / width if width > 1e-6 else math.nan


@dataclass(frozen=True)
class Span:
    """Frames `start` to `end`, inclusive, of one utterance."""

    start: int
    end: int

    @property
    def frames(self) -> int:
        return self.end - self.start + 1


class SpanTracker:
    """Online speech segmentation: `push` one opening per frame, get each utterance once it is over.

    Frames without a face carry the last opening seen (a face lost for a frame or two must not end a sentence).
    Results lag the input by `lookahead + hangover` frames, the price of not cutting at a pause."""

    def __init__(self, config: SpeechConfig = DEFAULT_SPEECH) -> None:
        self.config = config
        self._raw: deque[float] = deque(maxlen=config.smoothing)
        self._smoothed_previous: float | None = None
        self._recent: deque[float] = deque(maxlen=max(1, config.rest_window))
        self._still = 0
        self._last = math.nan
        self._frame = -1
        self._start: int | None = None
        self._last_active = -1
        self._settled = 0
        self._changes: list[float] = []
        self._openings: deque[float] = deque(maxlen=HISTORY_FRAMES)

    def _activity(self) -> tuple[int, float, float] | None:
        """The activity of the frame at the centre of the smoothing window, once there is one."""
        if len(self._raw) < self._raw.maxlen:
            return None
        smoothed = sum(self._raw) / len(self._raw)
        change = 0.0 if self._smoothed_previous is None else abs(smoothed - self._smoothed_previous)
        self._smoothed_previous = smoothed
        self._still = self._still + 1 if change < self.config.still_change else 0
        if self._still >= self.config.still_frames:
            self._recent.clear()
        self._recent.append(smoothed)
        rest = min(self._recent) if self.config.rest_window else 0.0
        return self._frame - self.config.lookahead, smoothed - rest + self.config.motion_weight * change, change

    def push(self, opening: float) -> Span | None:
        """Take the next frame's opening (NaN: no face); return an utterance that has just ended, if any."""
        self._frame += 1
        if not math.isnan(opening):
            self._last = opening
        self._openings.append(self._last)
        if math.isnan(self._last):
            return None
        if not self._raw:
            for _ in range(self.config.lookahead):  # the first frame stands in for the ones before the clip
                self._raw.append(self._last)
        self._raw.append(self._last)
        found = self._activity()
        return None if found is None else self._step(*found)

    def _step(self, frame: int, activity: float, change: float) -> Span | None:
        config = self.config
        if self._start is None:
            if activity > config.start_threshold:
                self._start, self._last_active, self._changes, self._settled = frame, frame, [change], 0
            return None
        self._changes.append(change)
        if activity > config.stop_threshold:
            self._last_active = frame
            self._settled = self._settled + 1 if change < config.still_change else 0
            if config.settle_frames and self._settled >= config.settle_frames:
                self._last_active = frame - self._settled
                return self._close()
        elif frame - self._last_active > config.hangover:
            return self._close()
        else:
            self._settled = 0
        return None

    def _close(self) -> Span | None:
        span = Span(self._start, self._last_active) if self._start is not None else None
        self._start = None
        if span is None or span.frames < self.config.min_frames:
            return None
        moving = sum(change >= self.config.still_change for change in self._changes[: span.frames])
        if moving < self.config.min_moving_frames:
            return None
        return Span(self._onset(span), span.end) if self.config.onset == "jump" else span

    def _onset(self, span: Span) -> int:
        """The start moved to just before the first sharp opening inside `span` (SpeechConfig.onset)."""
        config = self.config
        first = self._frame - len(self._openings) + 1
        opening = list(self._openings)
        at = lambda frame: opening[frame - first]  # noqa: E731
        for jump in range(max(span.start, first + 1), span.end + 1):
            if abs(at(jump) - at(jump - 1)) > config.onset_jump:
                start = jump - 1
                while start > first and jump - start < config.onset_back and at(start - 1) <= at(start):
                    start -= 1
                return max(start - config.onset_lead, first, 0)
        return span.start

    def finish(self) -> list[Span]:
        """The utterances still open when the input ends (its last opening stands in for the frames after it)."""
        if math.isnan(self._last):
            return []
        spans = []
        for _ in range(self.config.lookahead):
            self._raw.append(self._last)
            self._openings.append(self._last)
            self._frame += 1
            found = self._activity()
            closed = None if found is None else self._step(*found)
            if closed is not None:
                spans.append(closed)
        last = self._close()
        return spans + ([last] if last is not None else [])


def segment(openings: Iterable[float], config: SpeechConfig = DEFAULT_SPEECH) -> list[Span]:
    """Every utterance in a sequence of openings, in order."""
    tracker = SpanTracker(config)
    spans = [span for span in (tracker.push(o) for o in openings) if span is not None]
    return spans + tracker.finish()


def detect_span(openings: Sequence[float], config: SpeechConfig = DEFAULT_SPEECH) -> tuple[int, int]:
    """(first, last) spoken frame of a clip that holds one sentence: from the start of its first utterance to the
    end of its last (a pause longer than the hangover inside a sentence must not cut it short)."""
    spans = spoken(openings, config)
    return spans[0].start, spans[-1].end


def spoken(openings: Sequence[float], config: SpeechConfig = DEFAULT_SPEECH) -> list[Span]:
    """`segment`, or NoSpeechFound saying why there is nothing to read."""
    if all(math.isnan(o) for o in openings):
        raise NoSpeechFound("no face was found in any frame, so no speech either")
    spans = segment(openings, config)
    if not spans:
        raise NoSpeechFound(
            f"the mouth never moved like speech in {len(openings)} frames "
            f"(activity never above {config.start_threshold} for {config.min_frames} frames)"
        )
    return spans
