"""`lipagent eval`: score a lip reader on a dataset split, the same as `eval/run_eval.py`."""

from __future__ import annotations

import argparse

from lipagent.cli.options import HelpFormatter


def register(commands: argparse._SubParsersAction) -> None:
    from lipagent.scoring.evaluation import add_eval_arguments

    parser = commands.add_parser(
        "eval",
        help="score a lip reader on a dataset split (eval/run_eval.py)",
        description="Score a LoRA adapter, a baseline or a GGUF export on a mosaic dataset split: "
        "metrics.json, predictions.jsonl, report.png in --out.",
        formatter_class=HelpFormatter,
    )
    add_eval_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from lipagent.scoring.evaluation import run_and_report

    return run_and_report(args)
