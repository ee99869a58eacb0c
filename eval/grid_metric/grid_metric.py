"""GRID lip-reading metric: WER/CER, exact match, grammar validity and per-slot accuracy.

One module computes every number the project reports, so that training-time evaluation, benchmarks and the
confusion report cannot drift apart. Load it offline with `evaluate.load("<repo>/eval/grid_metric")`; the logic
lives in `lipagent.scoring.metrics` (`compute_grid_metrics`, `confusions`, `wer_interval`), importable without evaluate.

The scoring rules are in `lipagent.scoring.metrics`'s docstring.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lipagent.torch_compat import ensure_torchvision_importable

# `import evaluate` pulls in transformers and so torchvision, whose compiled ops cannot load on the CPU box.
# Import lines carry no trailing comments: evaluate's dependency parser would take one for a pip spec.
# ruff: noqa: E402
ensure_torchvision_importable()

import datasets
import evaluate

from lipagent.data.card import GRID_CITATION
from lipagent.scoring.metrics import compute_grid_metrics

_DESCRIPTION = """\
Scores lip-reading transcriptions of the GRID corpus (sentences of the form
`command color preposition letter digit adverb`, e.g. "bin blue at f two now").
Reports corpus-level word and character error rates (jiwer), exact-sentence accuracy, the share of
predictions that are valid GRID sentences, and the accuracy of each of the six slots, overall and, when
speaker ids are given, per speaker. Text is lowercased and whitespace-collapsed on both sides first.
"""

_CITATION = (
    GRID_CITATION
    + """
@misc{jiwer,
  title        = {jiwer: evaluate your speech-to-text system with similarity measures},
  author       = {Vaessen, Nik},
  howpublished = {\\url{https://github.com/jitsi/jiwer}}
}
"""
)

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
