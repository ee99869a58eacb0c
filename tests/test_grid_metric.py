"""Tests of the GRID metric module, loaded offline the way training and benchmarks load it."""

from __future__ import annotations

import socket
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from lipagent.grammar import SLOT_NAMES, normalize
from lipagent.torch_compat import ensure_torchvision_importable

ensure_torchvision_importable()

import evaluate  # noqa: E402
import jiwer  # noqa: E402

METRIC_DIR = Path(__file__).resolve().parents[1] / "eval" / "grid_metric"

REF_A = "bin blue at f two now"
REF_B = "place red by g nine soon"
REF_C = "lay green in k one again"
REF_D = "set white with z zero please"

ALL_RIGHT = {slot: 1.0 for slot in SLOT_NAMES}


def _no_network(*args: Any, **kwargs: Any) -> None:
    raise OSError("network access attempted while loading the GRID metric")


@pytest.fixture(scope="module")
def grid() -> evaluate.EvaluationModule:
    """The metric as evaluate loads it from the repository, with the Hub and the network out of reach."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("HF_EVALUATE_OFFLINE", "1")
        mp.setattr(evaluate.config, "HF_EVALUATE_OFFLINE", True)
        mp.setattr(socket.socket, "connect", _no_network)
        return evaluate.load(str(METRIC_DIR), keep_in_memory=True)


@pytest.fixture(scope="module")
def source() -> ModuleType:
    """The scores' home (lipagent.scoring.metrics), which the evaluate wrapper calls, tested without its cache."""
    import lipagent.scoring.metrics

    return lipagent.scoring.metrics


def _jiwer_scores(predictions: list[str], references: list[str]) -> tuple[float, float]:
    refs = [normalize(r) for r in references]
    hyps = [normalize(p) for p in predictions]
    return jiwer.wer(reference=refs, hypothesis=hyps), jiwer.cer(reference=refs, hypothesis=hyps)


ERROR_RATE_CASES = {
    "perfect": ([REF_A, REF_B], [REF_A, REF_B], 0.0, 0.0),
    "substitution": (["bin blue at e two now", REF_B], [REF_A, REF_B], 1 / 12, 1 / 45),
    "deletion": (["bin at f two now", REF_B], [REF_A, REF_B], 1 / 12, 5 / 45),
    "insertion": (["bin blue at f two now please", REF_B], [REF_A, REF_B], 1 / 12, 7 / 45),
    "mixed": (
        ["  BIN Blue at  f two", "place red by g g nine soon", "lay grin in k one again", ""],
        [REF_A, REF_B, REF_C, REF_D],
        9 / 24,
        None,
    ),
}


@pytest.mark.parametrize("case", list(ERROR_RATE_CASES))
def test_wer_cer_match_jiwer(grid: evaluate.EvaluationModule, case: str) -> None:
    predictions, references, expected_wer, expected_cer = ERROR_RATE_CASES[case]
    result = grid.compute(predictions=predictions, references=references)
    jiwer_wer, jiwer_cer = _jiwer_scores(predictions, references)
    assert result["wer"] == jiwer_wer
    assert result["cer"] == jiwer_cer
    assert result["wer"] == pytest.approx(expected_wer, abs=1e-12)
    if expected_cer is not None:
        assert result["cer"] == pytest.approx(expected_cer, abs=1e-12)
    assert isinstance(result["wer"], float) and isinstance(result["cer"], float)


def test_normalization_happens_before_scoring(grid: evaluate.EvaluationModule) -> None:
    result = grid.compute(predictions=["  Bin BLUE at F  two now "], references=["bin blue at f two now"])
    assert result["wer"] == 0.0
    assert result["cer"] == 0.0
    assert result["sentence_accuracy"] == 1.0
    assert result["valid_sentence_rate"] == 1.0


def test_one_wrong_letter(grid: evaluate.EvaluationModule) -> None:
    result = grid.compute(predictions=["bin blue at e two now", REF_B], references=[REF_A, REF_B])
    assert result["num_samples"] == 2
    assert result["sentence_accuracy"] == 0.5
    assert result["valid_sentence_rate"] == 1.0
    assert result["slot_accuracy"] == {**ALL_RIGHT, "letter": 0.5}
    assert list(result["slot_accuracy"]) == list(SLOT_NAMES)
    assert "per_speaker" not in result


def test_short_prediction_is_scored_position_wise(grid: evaluate.EvaluationModule) -> None:
    result = grid.compute(predictions=["bin at f two now"], references=[REF_A])
    assert result["valid_sentence_rate"] == 0.0
    assert result["sentence_accuracy"] == 0.0
    assert result["slot_accuracy"] == {slot: float(slot == "command") for slot in SLOT_NAMES}


def test_extra_word_keeps_slots_but_is_invalid(grid: evaluate.EvaluationModule) -> None:
    result = grid.compute(predictions=["bin blue at f two now please"], references=[REF_A])
    assert result["slot_accuracy"] == ALL_RIGHT
    assert result["valid_sentence_rate"] == 0.0
    assert result["sentence_accuracy"] == 0.0
    assert result["wer"] == pytest.approx(1 / 6, abs=1e-12)


def test_out_of_vocabulary_words(grid: evaluate.EvaluationModule) -> None:
    predictions = ["bin blew at f two now", "place red by w nine soon", REF_C, "empty"]
    references = [REF_A, REF_B, REF_C, REF_D]
    result = grid.compute(predictions=predictions, references=references)
    assert result["valid_sentence_rate"] == 0.25
    assert result["sentence_accuracy"] == 0.25
    assert result["slot_accuracy"] == {
        "command": 0.75,
        "color": 0.5,
        "preposition": 0.75,
        "letter": 0.5,
        "digit": 0.75,
        "adverb": 0.75,
    }


def test_per_speaker(grid: evaluate.EvaluationModule, source: ModuleType) -> None:
    predictions = ["bin blue at e two now", REF_B, REF_C, "set white with z now"]
    references = [REF_A, REF_B, REF_C, REF_D]
    speakers = ["s2", "s1", "s2", "s1"]
    result = grid.compute(predictions=predictions, references=references, speakers=speakers)
    per_speaker = result["per_speaker"]
    assert list(per_speaker) == ["s1", "s2"]
    assert per_speaker["s2"]["num_samples"] == 2
    assert per_speaker["s2"]["slot_accuracy"] == {**ALL_RIGHT, "letter": 0.5}
    assert per_speaker["s2"]["sentence_accuracy"] == 0.5
    assert per_speaker["s2"]["valid_sentence_rate"] == 1.0
    assert per_speaker["s1"]["slot_accuracy"] == {**ALL_RIGHT, "digit": 0.5, "adverb": 0.5}
    assert per_speaker["s1"]["valid_sentence_rate"] == 0.5
    assert per_speaker["s1"]["wer"] == pytest.approx(2 / 12, abs=1e-12)
    assert per_speaker["s1"] == source.compute_grid_metrics([REF_B, predictions[3]], [REF_B, REF_D])
    assert set(per_speaker["s1"]) == set(result) - {"per_speaker"}
    assert result["slot_accuracy"] == {**ALL_RIGHT, "letter": 0.75, "digit": 0.75, "adverb": 0.75}


def test_speakers_line_up_with_batches(grid: evaluate.EvaluationModule, source: ModuleType) -> None:
    grid.add_batch(predictions=["bin blue at e two now"], references=[REF_A])
    grid.add_batch(predictions=[REF_B, REF_C], references=[REF_B, REF_C])
    result = grid.compute(speakers=["s1", "s2", "s2"])
    expected = source.compute_grid_metrics(
        ["bin blue at e two now", REF_B, REF_C], [REF_A, REF_B, REF_C], ["s1", "s2", "s2"]
    )
    assert result == expected
    assert result["per_speaker"]["s1"]["sentence_accuracy"] == 0.0
    assert result["per_speaker"]["s2"]["sentence_accuracy"] == 1.0


def test_confusions(source: ModuleType) -> None:
    predictions = ["bin blue at e two now", REF_A, "BIN BLUE AT E THREE NOW", "bin at f two now", "bin blue"]
    references = [REF_A] * 5
    assert source.confusions(predictions, references, "letter") == {
        ("f", "e"): 2,
        ("f", "f"): 1,
        ("f", "two"): 1,
        ("f", source.MISSING_WORD): 1,
    }
    assert source.confusions(predictions, references, "digit") == {
        ("two", "now"): 1,
        ("two", "three"): 1,
        ("two", "two"): 2,
        ("two", source.MISSING_WORD): 1,
    }
    assert source.confusions(["bin blue at"], [REF_A], "letter") == {("f", source.MISSING_WORD): 1}, "just too short"
    with pytest.raises(ValueError, match="Unknown slot"):
        source.confusions(predictions, references, "number")


def test_evaluate_module_matches_pure_function(grid: evaluate.EvaluationModule, source: ModuleType) -> None:
    predictions, references, _, _ = ERROR_RATE_CASES["mixed"]
    speakers = ["a", "b", "a", "b"]
    assert grid.compute(predictions=predictions, references=references, speakers=speakers) == (
        source.compute_grid_metrics(predictions, references, speakers)
    )


def test_empty_input_raises(grid: evaluate.EvaluationModule, source: ModuleType) -> None:
    with pytest.raises(ValueError, match="empty input"):
        source.compute_grid_metrics([], [])
    with pytest.raises(ValueError, match="empty input"):
        grid.compute(predictions=[], references=[])
    with pytest.raises(ValueError, match="empty input"):
        source.confusions([], [], "letter")


def test_inconsistent_input_raises(source: ModuleType) -> None:
    with pytest.raises(ValueError, match="2 predictions but 1 references"):
        source.compute_grid_metrics([REF_A, REF_B], [REF_A])
    with pytest.raises(ValueError, match="1 speakers for 2 predictions"):
        source.compute_grid_metrics([REF_A, REF_B], [REF_A, REF_B], speakers=["s1"])
    with pytest.raises(ValueError, match="not a valid GRID sentence"):
        source.compute_grid_metrics([REF_A], ["bin blue at f two"])
    with pytest.raises(TypeError, match="predictions\\[0\\]"):
        source.compute_grid_metrics([None], [REF_A])


def test_metric_info(grid: evaluate.EvaluationModule) -> None:
    assert "Cooke" in grid.citation and "2421--2424" in grid.citation
    assert "jiwer" in grid.citation
    assert "GRID" in grid.description
    assert set(grid.features) == {"predictions", "references"}
    assert all(feature.dtype == "string" for feature in grid.features.values())


def test_clip_errors_add_up_to_the_corpus_wer_and_the_interval_brackets_it(source: ModuleType) -> None:
    references = ["bin blue at f two now", "lay red by g nine again", "set white in z zero soon"] * 10
    predictions = ["bin blue at f two now", "lay red by", "set white in z zero soon please"] * 10
    errors = source.clip_word_errors(predictions, references)
    assert errors[:3] == [0, 3, 1]
    assert sum(errors) / (6 * len(references)) == pytest.approx(jiwer.wer(references, predictions))
    low, high = source.wer_interval(predictions, references, draws=500)
    assert low <= jiwer.wer(references, predictions) <= high and low < high
    assert source.wer_interval(predictions, references, draws=500) == (low, high), "seeded: reproducible"
    assert source.wer_interval(references, references, draws=100) == (0.0, 0.0)


def test_the_interval_is_95_percent_wide(source: ModuleType) -> None:
    """400 clips of 6 words with 0, 1, 2, 3 wrong words in turn: WER 0.25, and the clip mean's standard error is
    sqrt(1.25 / 400) / 6 words, so a 95% interval spans 2 x 1.96 of it (0.0365); a 90% one would span 0.0307."""
    reference = "bin blue at f two now"
    wrong = ["bin blue at f two now", "lay blue at f two now", "lay red at f two now", "lay red by f two now"]
    predictions = [wrong[i % 4] for i in range(400)]
    low, high = source.wer_interval(predictions, [reference] * 400, draws=4000)
    expected = 2 * 1.96 * (1.25 / 400) ** 0.5 / 6
    assert (high - low) == pytest.approx(expected, rel=0.07), (low, high)
    assert (low + high) / 2 == pytest.approx(0.25, abs=0.002)


def test_chance_wer_is_what_random_sentences_score(source: ModuleType) -> None:
    import random

    from lipagent.grammar import SLOTS

    rng = random.Random(0)
    draw = lambda: " ".join(rng.choice(SLOTS[slot]) for slot in SLOT_NAMES)  # noqa: E731
    references, guesses = [draw() for _ in range(4000)], [draw() for _ in range(4000)]
    assert source.chance_wer() == pytest.approx(jiwer.wer(references, guesses), abs=0.01)
    assert source.chance_wer() == pytest.approx(0.81)


def test_the_interval_is_the_percentile_bootstrap_over_whole_clips(source: ModuleType) -> None:
    """Recomputed here from its definition: 2000 resamples of whole clips (seed 0), 2.5th and 97.5th percentiles of
    the resampled corpus WER (total word errors over total reference words)."""
    import numpy as np

    references = ["bin blue at f two now", "lay red by g nine again", "set white in z zero soon"] * 7
    predictions = ["bin blue at f two now", "lay red by", "set white in z zero"] * 7
    errors = np.array([jiwer.process_words(r, p).wer * 6 for r, p in zip(references, predictions)])
    picks = np.random.default_rng(0).integers(0, len(errors), size=(2000, len(errors)))
    expected = np.percentile(errors[picks].sum(axis=1) / (6 * len(errors)), [2.5, 97.5])
    assert source.wer_interval(predictions, references) == pytest.approx(tuple(expected), abs=1e-12)
