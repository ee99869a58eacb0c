"""Evaluate a lip reader on a mosaic dataset split: metrics.json, predictions.jsonl, report.png (the same as
`lipagent eval`; the logic lives in lipagent/scoring/evaluation.py).

    python eval/run_eval.py --model out/gemma3n-lipreader/final-adapter --dataset team/grid-mosaics \\
        --split test --output out/eval [--baseline baseline/] [--max_samples 10] [--load_in_4bit]

--model is a LoRA adapter (--adapter is the same flag) or a baseline folder from `lipagent baseline train`:
both are read through the same reader interface and scored by the same metric and report. --baseline also
scores a baseline on the same clips and puts its figures beside the model's (metrics.json "baseline", the
report's title, and from there the adapter's model card): a fine-tuned Gemma should beat a 1-MB CNN.
Models and datasets may be local folders or Hub ids (the Hub cache is used, HF_HUB_OFFLINE=1 works).
Named run_eval.py so it never shadows the `evaluate` package.
"""

from __future__ import annotations

import sys

from lipagent.__main__ import run_script


def main(argv: list[str] | None = None) -> int:
    """`lipagent.scoring.evaluation.main`, imported with a Ctrl-C during start-up ending in one line."""
    return run_script("run_eval.py", "lipagent.scoring.evaluation:main", argv, "nothing was written")


if __name__ == "__main__":
    sys.exit(main())
