"""The `lipagent` command line: prepare, validate, preview, baseline, train, eval, push, transcribe, live, export
and demo, one module each (lipagent/cli/<command>.py)."""

from __future__ import annotations

from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Run one `lipagent` command (the demo included) and return its exit status."""
    from lipagent.cli import demo
    from lipagent.cli.commands import COMMANDS, run_command

    return run_command(argv, (*COMMANDS, demo))
