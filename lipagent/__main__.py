"""`lipagent` and `python -m lipagent`: the command line, with one Ctrl-C handler from its first line."""

from __future__ import annotations

import sys

from lipagent.interrupt import run_program


def _command() -> int:
    from lipagent.cli import main

    return main()


def main() -> int:
    return run_program("lipagent", _command)


if __name__ == "__main__":
    sys.exit(main())
