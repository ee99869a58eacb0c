"""Evaluate a lip reader on a mosaic dataset split: metrics.json, predictions.jsonl, report.png (the same as
`lipagent eval`; the logic lives in lipagent/scoring/evaluation.py).

    python eval/run_eval.py --model out/gemma3n-lipreader/final-adapter --dataset team/grid-mosaics \\
        --split test --out out/eval [--baseline baseline/] [--max-samples 10] [--load-in-4bit]

--model is a LoRA adapter or a baseline folder from `lipagent baseline train` (--gguf: a GGUF export):
both are read through the same reader interface and scored by the same metric and report. --baseline also
scores a baseline on the same clips and puts its figures beside the model's (metrics.json "baseline", the
report's title, and from there the adapter's model card): a fine-tuned Gemma should beat a 1-MB CNN.
Models and datasets may be local folders or Hub ids (the Hub cache is used, HF_HUB_OFFLINE=1 works).
Named run_eval.py so it never shadows the `evaluate` package.
"""

from __future__ import annotations

import sys

from lipagent.interrupt import run_program


def main(argv: list[str] | None = None) -> int:
    from lipagent.scoring.evaluation import main as evaluate

    return evaluate(argv)


if __name__ == "__main__":
    sys.exit(run_program("run_eval.py", main))
