"""`lipagent push`: publish a dataset or an adapter to the Hub, the same as `push_to_hub.py`."""

from __future__ import annotations

import argparse

from lipagent.cli.options import HelpFormatter

INTERRUPTED = "nothing was published unless the upload's commit had gone through; the same command publishes it"


def register(commands: argparse._SubParsersAction) -> None:
    from lipagent.hub import add_push_arguments

    parser = commands.add_parser(
        "push",
        help="publish a dataset or an adapter to the Hub (push_to_hub.py)",
        description="Publish a prepared dataset or a trained adapter, with its card, to a private "
        "Hub repository (--public to open it; --dry-run --stage-dir DIR to look first).",
        formatter_class=HelpFormatter,
    )
    add_push_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from lipagent.hub import run_push

    run_push(args)
    return 0
