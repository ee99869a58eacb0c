"""Scoring a lip reader on a mosaic dataset split: metrics.json, predictions.jsonl, report.png.

`lipagent eval` and eval/run_eval.py (the entry point users were promised) both run `main` here. --model is a LoRA
adapter, a baseline folder or a GGUF export (--gguf), all read through the same reader interface and scored by the
same metric (lipagent.scoring.metrics, also wrapped as the `evaluate` metric in eval/grid_metric) and report.
--baseline also scores a baseline on the same clips and puts its figures beside the model's (metrics.json
"baseline", the report's title, and from there the adapter's model card): a fine-tuned Gemma should beat a 1-MB
CNN. Models and datasets may be local folders or Hub ids (the Hub cache is used, HF_HUB_OFFLINE=1 works).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from lipagent.arguments import positive_int
from lipagent.readers.factory import Reader, add_reader_arguments, load_reader, reader_from_args

if TYPE_CHECKING:
    import datasets

# datasets, evaluate (which pulls in transformers) and matplotlib are imported where they are used: the lipagent
# command line builds this module's flags for every command, and its --help must not wait seconds for them.

METRIC_DIR = Path(__file__).resolve().parents[2] / "eval" / "grid_metric"
"""The `evaluate` metric module (a folder evaluate.load reads; it calls lipagent.scoring.metrics)."""


def add_eval_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of `lipagent eval` and eval/run_eval.py (one definition for both)."""
    add_reader_arguments(parser)
    parser.add_argument("--dataset", required=True, help="dataset folder written by `lipagent prepare`, or Hub id")
    parser.add_argument("--split", default="test", help="split to evaluate (default: test)")
    parser.add_argument(
        "--out", type=Path, required=True, help="folder for metrics.json, predictions.jsonl, report.png"
    )
    parser.add_argument("--baseline", help="a baseline folder (or Hub id) to score on the same clips, for comparison")
    parser.add_argument("--max-samples", type=positive_int, help="evaluate only the first N samples")
    parser.add_argument("--batch-size", type=positive_int, default=8, help="mosaics per generate call (default: 8)")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_eval_arguments(parser)
    return parser.parse_args(argv)


def load_split(dataset: str, split: str, max_samples: int | None) -> datasets.Dataset:
    import datasets

    from lipagent.records import resolve

    rows = datasets.load_dataset(str(resolve(dataset, "dataset")), split=split)
    if max_samples is not None:
        rows = rows.select(range(min(max_samples, len(rows))))
    if len(rows) == 0:
        raise ValueError(f"split {split!r} of {dataset} has no rows")
    return rows


def predict(reader: Reader, rows: datasets.Dataset, batch_size: int, what: str = "Transcribing") -> list[str]:
    from tqdm.auto import tqdm

    predictions: list[str] = []
    with tqdm(total=len(rows), desc=what, unit=" clips") as bar:
        for start in range(0, len(rows), batch_size):
            batch = rows[start : start + batch_size]["image"]
            predictions += reader.transcribe_mosaics(batch)
            bar.update(len(batch))
    return predictions


def check_mosaic_settings(model: str | Path, dataset: str) -> None:
    """Refuse to score a model on mosaics cut differently from the ones it learned from, or over other spans than its
    test split would hold: the figure would measure the mismatch, not the model."""
    from lipagent.data.recipe import evaluated_span
    from lipagent.records import read_dataset_record, read_record, resolve

    built, trained = read_dataset_record(resolve(dataset, "dataset")), read_record(resolve(model))
    settings = {
        **{key: (value, trained.mosaic.to_dict()[key]) for key, value in built.mosaic.to_dict().items()},
        "speech_span": (evaluated_span(built.speech_span), evaluated_span(trained.speech_span)),
    }
    differ = [f"{key}: {ours} vs {theirs}" for key, (ours, theirs) in settings.items() if ours != theirs]
    if differ:
        raise ValueError(
            f"{dataset} was built with other mosaic settings than the model was trained on ({', '.join(differ)}); "
            "rebuild the dataset with the model's settings"
        )


def score(reader: Reader, rows: datasets.Dataset, batch_size: int, what: str) -> tuple[dict, list[str], float]:
    """The metric over a reader's predictions for `rows`, its predictions and its clips per second."""
    from lipagent.scoring.metrics import wer_interval
    from lipagent.torch_compat import ensure_torchvision_importable

    ensure_torchvision_importable()
    import evaluate

    started = time.perf_counter()
    predictions = predict(reader, rows, batch_size, what)
    seconds = time.perf_counter() - started
    metric = evaluate.load(str(METRIC_DIR))
    metrics = metric.compute(predictions=predictions, references=rows["text"], speakers=rows["speaker"])
    metrics["wer_interval"] = list(wer_interval(predictions, list(rows["text"])))
    return metrics, predictions, len(rows) / seconds


def run(args: argparse.Namespace) -> dict:
    from lipagent.scoring.metrics import MISSING_WORD, confusions
    from lipagent.scoring.report import draw_report

    check_mosaic_settings(args.model, args.dataset)
    rows = load_split(args.dataset, args.split, args.max_samples)
    reader = reader_from_args(args)
    print(reader.description, file=sys.stderr)
    decoding = getattr(reader, "decoding", "slot classifier")
    metrics, predictions, speed = score(reader, rows, args.batch_size, f"Transcribing ({decoding})")
    metrics.update(
        model=str(args.model), dataset=args.dataset, split=args.split, decoding=decoding, clips_per_second=speed
    )
    title = f"{args.model} on {args.dataset} [{args.split}], {decoding}"
    records = [
        {"video_id": video_id, "speaker": speaker, "reference": reference, "prediction": prediction}
        for video_id, speaker, reference, prediction in zip(
            rows["video_id"], rows["speaker"], rows["text"], predictions
        )
    ]
    if args.baseline:
        check_mosaic_settings(args.baseline, args.dataset)
        baseline = load_reader(args.baseline, device=args.device)
        base_metrics, base_predictions, _ = score(baseline, rows, args.batch_size, "Baseline")
        for record, prediction in zip(records, base_predictions, strict=True):
            record["baseline_prediction"] = prediction
        metrics["baseline"] = {
            "model": str(args.baseline),
            **{k: base_metrics[k] for k in ("wer", "wer_interval", "cer", "sentence_accuracy", "slot_accuracy")},
        }
        title += f"; baseline WER {base_metrics['wer']:.1%}"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    with open(args.out / "predictions.jsonl", "w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(record) + "\n" for record in records)
    draw_report(metrics, predictions, list(rows["text"]), confusions, MISSING_WORD, args.out / "report.png", title)
    return metrics


def baseline_line(metrics: dict) -> str:
    """One line on the model against the baseline: what the yardstick says."""
    from lipagent.model.card import baseline_gap

    base = metrics["baseline"]
    return (
        f"baseline {base['model']}: WER {base['wer']:.2%} on the same clips; the model {baseline_gap(metrics)} "
        "(a fine-tuned Gemma should beat this small CNN clearly)"
    )


def report_line(metrics: dict, output: Path) -> str:
    low, high = metrics["wer_interval"]
    return (
        f"WER {metrics['wer']:.2%} (95% CI {low:.1%} to {high:.1%} over clips)  CER {metrics['cer']:.2%}  "
        f"sentences {metrics['sentence_accuracy']:.2%}  "
        f"valid {metrics['valid_sentence_rate']:.2%}  ({metrics['num_samples']} clips, "
        f"{metrics['clips_per_second']:.1f}/s) -> {output}"
    )


def run_and_report(args: argparse.Namespace) -> int:
    """`run`, then the lines a user reads (the baseline's, then the model's)."""
    metrics = run(args)
    if "baseline" in metrics:
        print(baseline_line(metrics))
    print(report_line(metrics, args.out))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return run_and_report(args)
    except (ValueError, OSError) as error:
        print(f"run_eval: error: {error}", file=sys.stderr)
        return 2
