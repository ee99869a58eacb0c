"""GRID lip-reading scores: WER/CER, exact match, grammar validity and per-slot accuracy.

One module computes every number the project reports, so that evaluation, benchmarks, the confusion report and the
`evaluate` metric in eval/grid_metric (a thin wrapper over `compute_grid_metrics`) cannot drift apart.

Scoring rules:

- Both sides go through `lipagent.grammar.normalize` (lowercase, collapsed whitespace) before anything is
  compared, so casing and spacing of a model's output never count as errors.
- `wer` and `cer` are corpus-level jiwer scores: total edits over total reference words (characters).
- `sentence_accuracy` is the share of exact matches; `valid_sentence_rate` the share of predictions that
  the GRID grammar accepts.
- `slot_accuracy[slot]` is the share of samples whose word at that slot is right. Predictions are compared
  position-wise on the normalized word list, whether or not they are valid sentences: word i of the
  prediction is checked against slot i of the reference, a missing word (prediction shorter than six
  words) counts as wrong, words past the sixth are ignored here (they still cost WER and validity), and an
  out-of-vocabulary word is simply a wrong word. Position-wise scoring is deliberate: a model that drops
  or inserts a word loses every later slot, which is the failure constrained decoding is meant to remove.
- References must be valid GRID sentences: slot accuracy is undefined otherwise, and an invalid reference
  means broken data rather than a bad model, so it raises instead of being scored.
- With `speakers`, `per_speaker[speaker]` holds the same keys computed on that speaker's samples only.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import jiwer

from lipagent.grammar import SLOT_NAMES, SLOTS, is_valid_sentence, normalize, parse_sentence

MISSING_WORD = "<missing>"
"""The predicted word recorded by `confusions` when the prediction has no word at that slot."""


def _check_inputs(predictions: Sequence[str], references: Sequence[str], speakers: Sequence[str] | None = None) -> None:
    """Fail loudly on inputs that would otherwise give silently meaningless scores."""
    if len(predictions) == 0 or len(references) == 0:
        raise ValueError("GRID metric needs at least one prediction/reference pair; got empty input.")
    if len(predictions) != len(references):
        raise ValueError(f"Got {len(predictions)} predictions but {len(references)} references.")
    if speakers is not None and len(speakers) != len(predictions):
        raise ValueError(f"Got {len(speakers)} speakers for {len(predictions)} predictions.")
    for name, texts in (("predictions", predictions), ("references", references)):
        for index, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"{name}[{index}] must be a str, got {type(text).__name__}.")
    for index, reference in enumerate(references):
        if parse_sentence(reference) is None:
            raise ValueError(f"references[{index}] is not a valid GRID sentence: {reference!r}.")


def _slot_hits(prediction: str, reference: str) -> list[bool]:
    """Position-wise correctness of each slot (see the module docstring for why)."""
    predicted = normalize(prediction).split()
    expected = normalize(reference).split()
    return [i < len(predicted) and predicted[i] == expected[i] for i in range(len(SLOT_NAMES))]


def _scores(predictions: Sequence[str], references: Sequence[str]) -> dict[str, Any]:
    """All scores for one group of already-checked samples."""
    hyps = [normalize(p) for p in predictions]
    refs = [normalize(r) for r in references]
    count = len(refs)
    hits = [_slot_hits(p, r) for p, r in zip(hyps, refs)]
    return {
        "num_samples": count,
        "wer": float(jiwer.wer(reference=refs, hypothesis=hyps)),
        "cer": float(jiwer.cer(reference=refs, hypothesis=hyps)),
        "sentence_accuracy": sum(h == r for h, r in zip(hyps, refs)) / count,
        "valid_sentence_rate": sum(is_valid_sentence(h) for h in hyps) / count,
        "slot_accuracy": {slot: sum(sample[i] for sample in hits) / count for i, slot in enumerate(SLOT_NAMES)},
    }


def compute_grid_metrics(
    predictions: Sequence[str], references: Sequence[str], speakers: Sequence[str] | None = None
) -> dict[str, Any]:
    """The metric's whole computation, as a pure function so it can be tested and reused without evaluate."""
    _check_inputs(predictions, references, speakers)
    result = _scores(predictions, references)
    if speakers is not None:
        groups: dict[str, list[int]] = {}
        for index, speaker in enumerate(speakers):
            groups.setdefault(str(speaker), []).append(index)
        result["per_speaker"] = {
            speaker: _scores([predictions[i] for i in indices], [references[i] for i in indices])
            for speaker, indices in sorted(groups.items())
        }
    return result


def chance_wer() -> float:
    """The expected WER of a uniformly random GRID sentence: each slot is right by chance one time in its word
    count, and the slots' words are disjoint, so a wrong word is exactly one substitution."""
    return 1 - sum(1 / len(SLOTS[slot]) for slot in SLOT_NAMES) / len(SLOT_NAMES)


def clip_word_errors(predictions: Sequence[str], references: Sequence[str]) -> list[int]:
    """Word edits (substitutions + deletions + insertions, as jiwer counts them) of each prediction."""
    _check_inputs(predictions, references)
    errors = []
    for prediction, reference in zip(predictions, references):
        out = jiwer.process_words(reference=normalize(reference), hypothesis=normalize(prediction))
        errors.append(out.substitutions + out.deletions + out.insertions)
    return errors


def wer_interval(
    predictions: Sequence[str], references: Sequence[str], draws: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """Bootstrap 95% interval of the corpus WER, resampling whole clips (a clip's words share its speaker, light
    and crop, so they are not independent); seeded, so a report is reproducible."""
    import numpy as np

    errors = np.array(clip_word_errors(predictions, references), dtype=float)
    words = np.array([len(normalize(r).split()) for r in references], dtype=float)
    picks = np.random.default_rng(seed).integers(0, len(errors), size=(draws, len(errors)))
    sampled = errors[picks].sum(axis=1) / words[picks].sum(axis=1)
    low, high = np.percentile(sampled, [2.5, 97.5])
    return float(low), float(high)


def confusions(predictions: Sequence[str], references: Sequence[str], slot: str) -> dict[tuple[str, str], int]:
    """Counts of (reference word, predicted word) at one slot, diagonal included, for confusion reports.

    Meant for the letter and digit slots, where visually similar classes get mixed up, but any slot works.
    Words are taken position-wise like `slot_accuracy`; a missing word is recorded as `MISSING_WORD`.
    """
    if slot not in SLOT_NAMES:
        raise ValueError(f"Unknown slot {slot!r}; expected one of {SLOT_NAMES}.")
    _check_inputs(predictions, references)
    position = SLOT_NAMES.index(slot)
    counts: Counter[tuple[str, str]] = Counter()
    for prediction, reference in zip(predictions, references):
        predicted = normalize(prediction).split()
        word = predicted[position] if position < len(predicted) else MISSING_WORD
        counts[(normalize(reference).split()[position], word)] += 1
    return dict(sorted(counts.items()))
