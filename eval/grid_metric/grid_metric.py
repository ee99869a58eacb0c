"""GRID lip-reading metric: WER/CER, exact match, grammar validity and per-slot accuracy.

One module computes every number the project reports, so that training-time evaluation, benchmarks and the
confusion report cannot drift apart. Load it offline with `evaluate.load("<repo>/eval/grid_metric")`, or
import `compute_grid_metrics` / `confusions` to use the logic without evaluate's caching machinery.

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

from lipagent.torch_compat import ensure_torchvision_importable

# `import evaluate` pulls in transformers and so torchvision, whose compiled ops cannot load on the CPU box.
# Import lines carry no trailing comments: evaluate's dependency parser would take one for a pip spec.
# ruff: noqa: E402
ensure_torchvision_importable()

import datasets
import evaluate
import jiwer

from lipagent.grammar import SLOT_NAMES, is_valid_sentence, normalize, parse_sentence

MISSING_WORD = "<missing>"
"""The predicted word recorded by `confusions` when the prediction has no word at that slot."""

_DESCRIPTION = """\
Scores lip-reading transcriptions of the GRID corpus (sentences of the form
`command color preposition letter digit adverb`, e.g. "bin blue at f two now").
Reports corpus-level word and character error rates (jiwer), exact-sentence accuracy, the share of
predictions that are valid GRID sentences, and the accuracy of each of the six slots, overall and, when
speaker ids are given, per speaker. Text is lowercased and whitespace-collapsed on both sides first.
"""

_CITATION = """\
@article{cooke2006grid,
  title   = {An audio-visual corpus for speech perception and automatic speech recognition},
  author  = {Cooke, Martin and Barker, Jon and Cunningham, Stuart and Shao, Xu},
  journal = {The Journal of the Acoustical Society of America},
  volume  = {120},
  number  = {5},
  pages   = {2421--2424},
  year    = {2006}
}
@misc{jiwer,
  title        = {jiwer: evaluate your speech-to-text system with similarity measures},
  author       = {Vaessen, Nik},
  howpublished = {\\url{https://github.com/jitsi/jiwer}}
}
"""

_KWARGS_DESCRIPTION = """\
Args:
    predictions (`list` of `str`): model transcriptions, one per sample.
    references (`list` of `str`): ground-truth GRID sentences, one per sample; each must be valid.
    speakers (`list` of `str`, optional, compute keyword only): speaker id of each sample; adds `per_speaker`.
Returns:
    num_samples (`int`), wer (`float`), cer (`float`), sentence_accuracy (`float`),
    valid_sentence_rate (`float`), slot_accuracy (`dict[str, float]`, keys = the six slot names),
    per_speaker (`dict[str, dict]`, only with `speakers`): the same keys for each speaker.
Examples:
    >>> grid = evaluate.load("eval/grid_metric")
    >>> grid.compute(predictions=["bin blue at e two now"], \
references=["bin blue at f two now"])["slot_accuracy"]["letter"]
    0.0
"""


def _check_inputs(
    predictions: Sequence[str], references: Sequence[str], speakers: Sequence[str] | None = None
) -> None:
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
        "slot_accuracy": {
            slot: sum(sample[i] for sample in hits) / count for i, slot in enumerate(SLOT_NAMES)
        },
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


def clip_word_errors(predictions: Sequence[str], references: Sequence[str]) -> list[int]:
    """Word edits (substitutions + deletions + insertions, as jiwer counts them) of each prediction."""
    _check_inputs(predictions, references)
    errors = []
    for prediction, reference in zip(predictions, references):
        out = jiwer.process_words(reference=normalize(reference), hypothesis=normalize(prediction))
        errors.append(out.substitutions + out.deletions + out.insertions)
    return errors


def wer_interval(predictions: Sequence[str], references: Sequence[str], draws: int = 2000, seed: int = 0
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


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class GridMetric(evaluate.Metric):
    """evaluate wrapper around `compute_grid_metrics`, for use next to the Hub's metrics."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.Value("string", id="sequence"),
                    "references": datasets.Value("string", id="sequence"),
                }
            ),
            codebase_urls=["https://github.com/jitsi/jiwer"],
            reference_urls=["https://spandh.dcs.shef.ac.uk/gridcorpus/"],
        )

    def _compute(
        self, predictions: list[str], references: list[str], speakers: Sequence[str] | None = None
    ) -> dict[str, Any]:
        return compute_grid_metrics(predictions, references, speakers)
