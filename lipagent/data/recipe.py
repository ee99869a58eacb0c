"""Which span a dataset samples each split over: a recipe of the dataset, apart from how a mosaic is made.

`aligned` spreads a clip's frames over the spoken part GRID's `.align` timings give; `detected` over the span the
visual detector finds, as inference without alignments finds it; `both` puts each training clip in twice, once per
span (span variety as augmentation, measured by `bench/bench_speech.py --train-on-mix`), and the evaluation splits
over the detected span, which is what the model will read. A dataset's card records its recipe, and a model trained
on it copies the record, so `eval` knows which datasets hold what the model will read.
"""

from __future__ import annotations

SPEECH_SPANS: tuple[str, ...] = ("aligned", "detected", "both")
DEFAULT_SPEECH_SPAN = "aligned"


def check_speech_span(speech_span: str) -> str:
    if speech_span not in SPEECH_SPANS:
        raise ValueError(f"speech span {speech_span!r} is not one of {', '.join(SPEECH_SPANS)}")
    return speech_span


def spans_of_split(speech_span: str, split: str) -> tuple[str, ...]:
    """The spans (`aligned`, `detected`) a dataset of this recipe holds each clip of `split` over."""
    if check_speech_span(speech_span) != "both":
        return (speech_span,)
    return ("aligned", "detected") if split == "train" else ("detected",)


def evaluated_span(speech_span: str) -> str:
    """The span a dataset's evaluation splits hold: a `both` dataset's are detected spans, so a model trained on
    one is scored on a `detected` dataset as on its own test split, and the other way round."""
    return spans_of_split(speech_span, "test")[-1]


def describe_span(speech_span: str) -> str:
    """Where the frames of the dataset's mosaics were taken, in words (for cards)."""
    aligned = "the spoken part of the clip (from the `.align` word timings)"
    detected = "the spoken part the mouth shows (found by LipAgent's visual speech-span detector, as when reading)"
    if check_speech_span(speech_span) == "aligned":
        return aligned
    if speech_span == "detected":
        return detected
    return (
        "the spoken part of the clip: in `train` each clip is two rows, one over its `.align` word timings and one "
        "over the span LipAgent's visual speech-span detector finds (as when reading a clip with no alignment); "
        "in the other splits one row, over the detected span"
    )
