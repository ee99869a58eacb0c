"""`lipagent validate`: check a prepared dataset folder."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "validate",
        help="check a prepared dataset folder",
        description="Check a folder written by `lipagent prepare`: shards, splits, columns, image size, GRID texts, "
        "no id in two splits.",
    )
    parser.add_argument("folder", type=Path)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from lipagent.data.validate import validate_folder

    report = validate_folder(args.folder)
    print(report.text())
    return 0 if report.ok else 1
