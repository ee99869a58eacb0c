"""Evaluate a lip-reading adapter on a mosaic dataset split: metrics.json, predictions.jsonl, report.png.

    python eval/run_eval.py --adapter out/gemma3n-lipreader/final-adapter --dataset team/grid-mosaics \\
        --split test --output out/eval [--max_samples 10] [--load_in_4bit] [--decoding constrained|free]

The adapter and dataset may be local folders or Hub ids (the Hub cache is used, HF_HUB_OFFLINE=1 works).
Named run_eval.py so it never shadows the `evaluate` package.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from lipagent.torch_compat import ensure_torchvision_importable  # noqa: E402

ensure_torchvision_importable()

import datasets  # noqa: E402
import evaluate  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

from eval.report import draw_report  # noqa: E402
from lipagent.hub import resolve_dataset  # noqa: E402
from lipagent.reader import DECODINGS, LipReader  # noqa: E402

METRIC_DIR = Path(__file__).resolve().parent / "grid_metric"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--adapter", required=True, help="adapter folder or Hub id")
    parser.add_argument("--dataset", required=True, help="dataset folder written by `lipagent prepare`, or Hub id")
    parser.add_argument("--split", default="test", help="split to evaluate (default: test)")
    parser.add_argument("--output", type=Path, required=True, help="folder for metrics.json, predictions.jsonl, report.png")
    parser.add_argument("--base_model", help="base model (default: the one in the adapter's adapter_config.json)")
    parser.add_argument("--max_samples", type=int, help="evaluate only the first N samples")
    parser.add_argument("--batch_size", type=int, default=8, help="mosaics per generate call (default: 8)")
    parser.add_argument("--decoding", choices=DECODINGS, default="constrained",
                        help="constrained (default): only valid GRID sentences; free: plain greedy decoding")
    parser.add_argument("--load_in_4bit", action="store_true", help="4-bit NF4 base model (CUDA only)")
    parser.add_argument("--device", help="cuda, mps or cpu (default: the best available)")
    parser.add_argument("--dtype", choices=("float32", "bfloat16", "float16"), help="default: chosen for the device")
    return parser.parse_args(argv)


def load_split(dataset: str, split: str, max_samples: int | None) -> datasets.Dataset:
    rows = datasets.load_dataset(resolve_dataset(dataset), split=split)
    if max_samples is not None:
        rows = rows.select(range(min(max_samples, len(rows))))
    if len(rows) == 0:
        raise ValueError(f"split {split!r} of {dataset} has no rows")
    return rows


def predict(reader: LipReader, rows: datasets.Dataset, batch_size: int) -> list[str]:
    predictions: list[str] = []
    with tqdm(total=len(rows), desc=f"Transcribing ({reader.decoding})", unit=" clips") as bar:
        for start in range(0, len(rows), batch_size):
            batch = rows[start : start + batch_size]["image"]
            predictions += reader.transcribe_mosaics(batch)
            bar.update(len(batch))
    return predictions


def run(args: argparse.Namespace) -> dict:
    rows = load_split(args.dataset, args.split, args.max_samples)
    reader = LipReader.from_pretrained(args.adapter, args.base_model, load_in_4bit=args.load_in_4bit,
                                       device=args.device, dtype=args.dtype, decoding=args.decoding)
    print(reader.plan.reason, file=sys.stderr)
    started = time.perf_counter()
    predictions = predict(reader, rows, args.batch_size)
    seconds = time.perf_counter() - started
    references, speakers = rows["text"], rows["speaker"]
    metric = evaluate.load(str(METRIC_DIR))
    metrics = metric.compute(predictions=predictions, references=references, speakers=speakers)
    metrics.update(adapter=str(args.adapter), dataset=args.dataset, split=args.split, decoding=args.decoding,
                   clips_per_second=len(rows) / seconds)
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "metrics.json").write_text(json.dumps(metrics, indent=2))
    with open(args.output / "predictions.jsonl", "w", encoding="utf-8") as handle:
        for video_id, speaker, reference, prediction in zip(rows["video_id"], speakers, references, predictions):
            handle.write(json.dumps({"video_id": video_id, "speaker": speaker, "reference": reference,
                                     "prediction": prediction}) + "\n")
    module = sys.modules[type(metric).__module__]
    draw_report(metrics, predictions, references, module.confusions, module.MISSING_WORD,
                args.output / "report.png", f"{args.adapter} on {args.dataset} [{args.split}], {args.decoding} decoding")
    return metrics


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    metrics = run(args)
    print(f"WER {metrics['wer']:.2%}  CER {metrics['cer']:.2%}  sentences {metrics['sentence_accuracy']:.2%}  "
          f"valid {metrics['valid_sentence_rate']:.2%}  ({metrics['num_samples']} clips, "
          f"{metrics['clips_per_second']:.1f}/s) -> {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
