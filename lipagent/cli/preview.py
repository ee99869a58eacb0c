"""`lipagent preview`: a contact sheet of a dataset's mosaics."""

from __future__ import annotations

import argparse
from pathlib import Path

from lipagent.arguments import positive_int
from lipagent.cli.options import HelpFormatter


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "preview",
        help="write a contact sheet of mosaics",
        description="Write a PNG contact sheet of the first mosaics of every split with their transcriptions.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("folder", help="a dataset folder written by `lipagent prepare`, or a Hub dataset id")
    parser.add_argument("--out", type=Path, default=Path("sheet.png"), help="PNG to write")
    parser.add_argument("--per-split", type=positive_int, default=4, help="mosaics shown from each split")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from lipagent.data.preview import preview
    from lipagent.records import resolve

    print(f"wrote {preview(resolve(args.folder, 'dataset'), args.out, per_split=args.per_split)}")
    return 0
