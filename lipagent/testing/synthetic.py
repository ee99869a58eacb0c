"""A small GRID-like corpus rendered offline, so the quick-start demo needs no network.

Every clip shows the same public-domain face (`skimage.data.astronaut()`, a NASA photo) framed like a GRID
video (360x288, 25 fps MPEG-1, 75 frames). Its mouth is warped open and shut during the spoken words and
stays still in the silences, and each clip comes with a GRID `.align` text whose word timings drive the warp.
The files are packed like the Zenodo record (`sN.zip`, `alignments.zip`), so the real pipeline reads them
unchanged. The clips carry no acoustic or linguistic signal: they exercise the plumbing, not the model.
"""

from __future__ import annotations

import functools
import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np

from lipagent.config import ALIGN_UNITS_PER_FRAME, VIDEO_FPS
from lipagent.data.align import Word
from lipagent.grammar import SLOT_NAMES, SLOTS, GridSentence
from lipagent.quiet import quiet_native_stderr

FRAME_WIDTH, FRAME_HEIGHT = 360, 288
"""GRID's frame size."""

PHOTO_LIP_CENTER = (223.9, 146.7)
"""Centre of the lip landmark box in `astronaut()` (Face Mesh, FACEMESH_LIPS; the box is about 44x16 px)."""

PHOTO_FACE_CENTER = (225.0, 124.0)
"""Centre of the Face Mesh landmark box in `astronaut()` (the box is about 94x104 px)."""

FACE_SCALE = 1.1
"""Photo-to-frame scale: the landmark box becomes ~103x114 px, as in GRID (~105x135 px in a 360x288 frame)."""

FACE_POSITION = (180.0, 140.0)
"""Where the face centre lands in the frame: as low as the photo allows (only a few top rows are mirrored)."""

DEFAULT_SPEECH = (14, 51)
"""Frames [start, end) of speech when none is given: the median of the real s1 alignments."""

MAX_OPENING = 0.8
"""Peak strength of the mouth warp; below 1 the warp stays one-to-one (no folded pixels)."""

_ALIGN_STEP = 250
"""Real GRID times fall on multiples of 250 units (1/100 s)."""

_SLOT_DURATION = {"command": 1.3, "color": 0.9, "preposition": 0.5, "letter": 0.7, "digit": 1.1, "adverb": 1.45}
"""Relative mean word length per slot, measured on the 1000 real s1 alignments."""

_PAUSE_RATE = 0.25
"""Share of clips with an `sp` between two words: real s1 has 2.4%, more here so a small corpus shows one.
Its length is 500-2500 units, the middle of the real range (250-3500)."""

_VOWEL_OPENING = {"a": 1.0, "o": 0.9, "e": 0.75, "i": 0.65, "u": 0.6}
"""How wide the first vowel of a word opens the mouth, so that words look different from each other."""


def _rng(seed: int, purpose: str) -> np.random.Generator:
    """An independent random stream per purpose, so one clip seed drives timings, pose, etc. uncorrelated."""
    return np.random.default_rng([seed, *purpose.encode()])


class MouthField(NamedTuple):
    """The precomputed mouth warp of one clip (see `mouth_field`)."""

    window: tuple[slice, slice]
    xs: np.ndarray
    ys: np.ndarray
    shift: np.ndarray


def video_id_for(sentence: GridSentence) -> str:
    """The GRID video id of a sentence, e.g. "bin blue at f two now" -> "bbaf2n".

    GRID names each video after its sentence: the first letter of command, color and preposition, the
    letter itself, the digit as a character ('z' for zero, '1'..'9' for one..nine) and the first letter of
    the adverb. The id is therefore unique per sentence within a speaker, and across the corpus the real
    files never repeat one, which is what lets videos and alignments be paired by id alone.
    """
    digit = "z" if sentence.digit == "zero" else str(SLOTS["digit"].index(sentence.digit))
    return "".join(
        (sentence.command[0], sentence.color[0], sentence.preposition[0], sentence.letter, digit, sentence.adverb[0])
    )


def word_opening(word: str) -> float:
    """Relative mouth opening of a word (0..1], from its first vowel; a deterministic stand-in for phonetics."""
    return next((_VOWEL_OPENING[c] for c in word if c in _VOWEL_OPENING), 0.5)


def sentence_timings(
    sentence: GridSentence,
    *,
    seed: int,
    speech: tuple[int, int] = DEFAULT_SPEECH,
    num_frames: int = 75,
    pause: bool | None = None,
) -> tuple[Word, ...]:
    """GRID-style word timings: `sil`, the six words filling frames [start, end) of `speech`, `sil` to the end.

    The last `sil` ends at `num_frames * 1000 - 500` (74500 for 75 frames), as every real GRID file does.
    `pause=None` lets the seed decide whether an `sp` sits between two words (`_PAUSE_RATE` of clips).
    """
    start, end = speech
    if not 0 < start < end < num_frames:
        raise ValueError(f"speech {speech} must lie strictly inside 0..{num_frames} frames")
    begin, finish = start * ALIGN_UNITS_PER_FRAME, end * ALIGN_UNITS_PER_FRAME
    rng = _rng(seed, "timings")
    weights = np.array([_SLOT_DURATION[slot] for slot in SLOT_NAMES]) * rng.uniform(0.8, 1.2, len(SLOT_NAMES))
    with_pause = bool(rng.random() < _PAUSE_RATE) if pause is None else pause
    pause_after = int(rng.integers(0, len(SLOT_NAMES) - 1))
    pause_units = _ALIGN_STEP * int(rng.integers(2, 11)) if with_pause else 0
    min_units = ALIGN_UNITS_PER_FRAME
    if finish - begin - pause_units < min_units * len(SLOT_NAMES):
        raise ValueError(f"speech {speech} is too short for six words of at least one frame each")
    spare = finish - begin - pause_units - min_units * len(SLOT_NAMES)
    cuts = np.cumsum(weights) / weights.sum() * spare
    bounds = [begin] + [
        begin + (i + 1) * min_units + _ALIGN_STEP * round(cut / _ALIGN_STEP) for i, cut in enumerate(cuts[:-1])
    ]
    bounds.append(finish - pause_units)
    words: list[Word] = [Word(0, begin, "sil")]
    for i, word in enumerate(sentence):
        offset = pause_units if with_pause and i > pause_after else 0
        words.append(Word(bounds[i] + offset, bounds[i + 1] + offset, word))
        if with_pause and i == pause_after:
            words.append(Word(bounds[i + 1], bounds[i + 1] + pause_units, "sp"))
    words.append(Word(finish, num_frames * ALIGN_UNITS_PER_FRAME - 500, "sil"))
    return tuple(words)


def alignment_text(words: Sequence[Word]) -> str:
    """The `.align` file content: `start end word` lines with CRLF endings, like the real corpus."""
    return "".join(f"{w.start} {w.end} {w.word}\r\n" for w in words)


def mouth_openness(words: Sequence[Word], num_frames: int, *, seed: int = 0) -> np.ndarray:
    """Per-frame mouth opening in [0, 1]: one smooth rise and fall per spoken word, zero in `sil`/`sp`.

    Sampled at each frame's centre, so silent frames are exactly still and the mouth closes between words.
    """
    rng = _rng(seed, "openness")
    centers = (np.arange(num_frames) + 0.5) * ALIGN_UNITS_PER_FRAME
    openness = np.zeros(num_frames)
    for w in words:
        if w.word in ("sil", "sp"):
            continue
        phase = (centers - w.start) / (w.end - w.start)
        strength = word_opening(w.word) * rng.uniform(0.85, 1.0)
        inside = (phase > 0.0) & (phase < 1.0)
        openness = np.maximum(openness, np.where(inside, strength * np.sin(np.pi * phase) ** 2, 0.0))
    return openness


def clip_pose(seed: int) -> tuple[np.ndarray, float, float]:
    """Per-clip photo-to-frame affine (2x3) with a small head shift, plus brightness gain and offset."""
    rng = _rng(seed, "pose")
    shift_x, shift_y = rng.uniform(-6.0, 6.0), rng.uniform(-4.0, 4.0)
    scale = FACE_SCALE * rng.uniform(0.97, 1.03)
    tx = FACE_POSITION[0] + shift_x - scale * PHOTO_FACE_CENTER[0]
    ty = FACE_POSITION[1] + shift_y - scale * PHOTO_FACE_CENTER[1]
    matrix = np.array([[scale, 0.0, tx], [0.0, scale, ty]])
    return matrix, float(rng.uniform(0.88, 1.12)), float(rng.uniform(-12.0, 12.0))


@functools.lru_cache(maxsize=1)
def _photo_bgr() -> np.ndarray:
    """The astronaut photo as BGR (loaded once; skimage ships it, so no network is needed)."""
    from skimage import data

    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


def still_frame(matrix: np.ndarray, gain: float, bias: float) -> np.ndarray:
    """The closed-mouth frame of a clip: the photo placed by `matrix`, brightness adjusted."""
    placed = cv2.warpAffine(
        _photo_bgr(), matrix, (FRAME_WIDTH, FRAME_HEIGHT), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REFLECT101
    )
    return cv2.convertScaleAbs(placed, alpha=gain, beta=bias)


def mouth_field(center: tuple[float, float], scale: float) -> MouthField:
    """Precompute the mouth warp of a clip: its window, sampling grid and unit vertical displacement.

    Sampling row `y - k * shift` (k < 1) magnifies the mouth around its centre line, so the lips part and
    the lip outline grows taller, more below than above as a dropping jaw does, fading to no change at the
    window's edge (no seam). Darkening the gap between the teeth looked more like a mouth cavity but made
    Face Mesh see a *smaller* mouth, so the warp stays a pure geometric stretch.
    """
    cx, cy = center
    half_w, half_h = round(48 * scale), round(44 * scale)
    x0, x1 = max(0, round(cx) - half_w), min(FRAME_WIDTH, round(cx) + half_w)
    y0, y1 = max(0, round(cy) - half_h), min(FRAME_HEIGHT, round(cy) + half_h)
    xs, ys = np.meshgrid(np.arange(x0, x1, dtype=np.float32), np.arange(y0, y1, dtype=np.float32))
    u = ys - cy
    sigma = np.where(u < 0, 14.0 * scale, 22.0 * scale)
    shift = u * np.exp(-((u / sigma) ** 2)) * np.exp(-(((xs - cx) / (30.0 * scale)) ** 4))
    return MouthField((slice(y0, y1), slice(x0, x1)), xs, ys, shift.astype(np.float32))


def clip_frames(seed: int, openness: np.ndarray) -> Iterator[np.ndarray]:
    """The BGR frames of a clip: one still face, its mouth warped open by `openness` frame by frame."""
    matrix, gain, bias = clip_pose(seed)
    base = still_frame(matrix, gain, bias)
    center = tuple(matrix @ np.array([*PHOTO_LIP_CENTER, 1.0]))
    mouth = mouth_field(center, float(matrix[0, 0]) / FACE_SCALE)
    for amount in openness:
        if amount <= 0.0:
            yield base
            continue
        frame = base.copy()
        map_y = mouth.ys - np.float32(MAX_OPENING * amount) * mouth.shift
        frame[mouth.window] = cv2.remap(base, mouth.xs, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
        yield frame


def render_clip(
    path: str | Path,
    sentence: GridSentence,
    *,
    seed: int,
    num_frames: int = 75,
    speech: tuple[int, int] = DEFAULT_SPEECH,
) -> str:
    """Write one GRID-like MPEG-1 clip (speech in frames [start, end)) and return its `.align` text."""
    words = sentence_timings(sentence, seed=seed, speech=speech, num_frames=num_frames)
    openness = mouth_openness(words, num_frames, seed=seed)
    with quiet_native_stderr():
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"PIM1"), VIDEO_FPS, (FRAME_WIDTH, FRAME_HEIGHT))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write MPEG-1 to {path} (is its FFmpeg backend missing?)")
    try:
        for frame in clip_frames(seed, openness):
            writer.write(frame)
    finally:
        writer.release()
    return alignment_text(words)


def sample_sentences(count: int, seed: int) -> list[GridSentence]:
    """`count` sentences drawn from the grammar with distinct video ids (so distinct across the corpus)."""
    rng = _rng(seed, "sentences")
    sentences: list[GridSentence] = []
    seen: set[str] = set()
    while len(sentences) < count:
        sentence = GridSentence(*(SLOTS[slot][int(rng.integers(len(SLOTS[slot])))] for slot in SLOT_NAMES))
        if video_id_for(sentence) not in seen:
            seen.add(video_id_for(sentence))
            sentences.append(sentence)
    return sentences


def speech_span(seed: int) -> tuple[int, int]:
    """A spoken region [start, end) of a 75-frame clip within the 5-95% range of real s1 alignments."""
    rng = _rng(seed, "speech")
    start = int(rng.integers(5, 22))
    return start, start + int(rng.integers(32, 46))


class PlannedClip(NamedTuple):
    """One sentence of the synthetic corpus and which of its two files get written."""

    speaker: str
    sentence: GridSentence
    seed: int
    has_video: bool
    has_alignment: bool

    @property
    def video_id(self) -> str:
        return video_id_for(self.sentence)

    @property
    def speech(self) -> tuple[int, int]:
        return speech_span(self.seed)


def plan_corpus(speakers: Sequence[str], clips_per_speaker: int, seed: int, with_defects: bool) -> list[PlannedClip]:
    """What `render_corpus` writes, decided before any file is touched (sorted by speaker order, then id).

    With defects, the first speaker's last video loses its alignment and one more sentence gets an
    alignment but no video: the two mismatches the real corpus has, for the demo's bad-input report.
    """
    extra = 1 if with_defects and speakers else 0
    sentences = sample_sentences(len(speakers) * clips_per_speaker + extra, seed)
    seeds = [int(s) for s in np.random.SeedSequence(seed).generate_state(len(sentences))]
    plan: list[PlannedClip] = []
    for s_index, speaker in enumerate(speakers):
        chunk = slice(s_index * clips_per_speaker, (s_index + 1) * clips_per_speaker)
        clips = sorted(zip(sentences[chunk], seeds[chunk]), key=lambda pair: video_id_for(pair[0]))
        for c_index, (sentence, clip_seed) in enumerate(clips):
            unaligned = extra and s_index == 0 and c_index == len(clips) - 1
            plan.append(PlannedClip(speaker, sentence, clip_seed, True, not unaligned))
    if extra:
        plan.append(PlannedClip(speakers[0], sentences[-1], seeds[-1], False, True))
    return plan


def _zip_member(name: str, compress: int) -> zipfile.ZipInfo:
    """A zip entry with a fixed timestamp, so identical content gives an identical archive."""
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = compress
    info.external_attr = 0o644 << 16
    return info


def render_corpus(
    out_dir: str | Path,
    *,
    speakers: Sequence[str] = ("s1", "s2", "s3"),
    clips_per_speaker: int = 10,
    seed: int = 0,
    with_defects: bool = True,
) -> Path:
    """Write a Zenodo-like GRID folder, so the demo runs the real download-free path; returns `out_dir`.

    `sN.zip` holds `sN/<video_id>.mpg`, `alignments.zip` holds `alignments/sN/<video_id>.align`. The same
    arguments give the same zip members and alignment texts; with this OpenCV build (FFmpeg's MPEG-1
    encoder) the videos are byte-identical too. See `plan_corpus` for the defects.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plan = plan_corpus(speakers, clips_per_speaker, seed, with_defects)
    alignments: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory(prefix="lipagent-synthetic-") as tmp:
        for speaker in speakers:
            with zipfile.ZipFile(out / f"{speaker}.zip", "w") as archive:
                for clip in (c for c in plan if c.speaker == speaker and c.has_video):
                    video = Path(tmp) / f"{clip.video_id}.mpg"
                    render_clip(video, clip.sentence, seed=clip.seed, speech=clip.speech)
                    member = _zip_member(f"{speaker}/{clip.video_id}.mpg", zipfile.ZIP_STORED)
                    archive.writestr(member, video.read_bytes())
                    video.unlink()
    for clip in plan:
        if clip.has_alignment:
            words = sentence_timings(clip.sentence, seed=clip.seed, speech=clip.speech)
            alignments.append((f"alignments/{clip.speaker}/{clip.video_id}.align", alignment_text(words)))
    with zipfile.ZipFile(out / "alignments.zip", "w") as archive:
        for name, text in sorted(alignments):
            archive.writestr(_zip_member(name, zipfile.ZIP_DEFLATED), text.encode("ascii"))
    return out
