"""`lipagent baseline train`: the baseline lip reader, the project's accuracy yardstick, trained in minutes on a CPU."""

from __future__ import annotations

import argparse
from dataclasses import fields
from pathlib import Path

from lipagent.arguments import positive_int
from lipagent.cli.options import HelpFormatter
from lipagent.model.baseline_config import BaselineTrainingArgs as Defaults

INTERRUPTED = "--out was not touched; training starts over when run again"


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "baseline",
        help="train the baseline lip reader (the accuracy yardstick)",
        description="The baseline lip reader: a small CNN + GRU trained from scratch on the mosaics, "
        "predicting the six GRID slots. It is how LipAgent measures whether its mosaics can be read.",
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    train = actions.add_parser(
        "train",
        help="train it on a prepared dataset",
        formatter_class=HelpFormatter,
        description="Train the baseline on the `image` column of a `lipagent prepare` dataset (a "
        "folder or a Hub id). Writes model.safetensors, config.json (architecture and the "
        "dataset's mosaic settings) and history.json to --out. Deterministic for a --seed on "
        "one machine; the 344 training clips of the 450 real s1 clips train in about 2 minutes "
        "on 2 cores.",
    )
    train.add_argument("dataset", help="dataset folder written by `lipagent prepare`, or a Hub dataset id")
    train.add_argument("--out", type=Path, required=True, help="folder to write the model to")
    train.add_argument("--epochs", type=positive_int, default=Defaults.epochs, help="passes over the training split")
    train.add_argument("--batch-size", type=positive_int, default=Defaults.batch_size, help="clips per step")
    train.add_argument("--learning-rate", type=float, default=Defaults.learning_rate, help="AdamW peak learning rate")
    train.add_argument("--weight-decay", type=float, default=Defaults.weight_decay, help="AdamW weight decay")
    train.add_argument("--label-smoothing", type=float, default=Defaults.label_smoothing, help="loss label smoothing")
    train.add_argument("--max-grad-norm", type=float, default=Defaults.max_grad_norm, help="gradient clipping (0: off)")
    train.add_argument(
        "--shift",
        type=int,
        default=Defaults.shift,
        help="augmentation: random shift in pixels of the halved cells, the same for all a clip's cells",
    )
    train.add_argument(
        "--flip", action=argparse.BooleanOptionalAction, default=Defaults.flip, help="augmentation: mirror half of them"
    )
    train.add_argument(
        "--gamma", type=float, default=Defaults.gamma, help="augmentation: random gamma in [1-g, 1+g] per clip (light)"
    )
    train.add_argument("--seed", type=int, default=Defaults.seed, help="seed of every random choice")
    train.add_argument("--train-split", default=Defaults.train_split, help="split to learn from")
    train.add_argument(
        "--eval-split", default=Defaults.eval_split, help="split scored after every epoch (history.json), or 'none'"
    )
    train.add_argument("--max-samples", type=positive_int, help="learn from the first N clips only (smoke runs)")
    train.add_argument("--overwrite", action="store_true", help="replace --out if it holds an earlier baseline")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from lipagent.model.baseline_training import train_baseline

    settings = {f.name: getattr(args, f.name) for f in fields(Defaults) if f.name != "arch"}
    settings["eval_split"] = None if args.eval_split == "none" else args.eval_split
    out, history = train_baseline(Defaults(**settings))
    last = history[-1]
    score = f", {args.eval_split} WER {last['eval_wer']:.3f}" if "eval_wer" in last else ""
    print(
        f"trained {last['epoch']} epochs: loss {last['loss']:.3f}, training slot accuracy "
        f"{last['train_slot_accuracy']:.3f}{score}"
    )
    print(f"wrote {out}/ (evaluate it with: lipagent eval --model {out} --dataset {args.dataset} --out eval)")
    return 0
