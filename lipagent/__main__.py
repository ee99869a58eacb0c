"""`lipagent` and `python -m lipagent`: the command line, with a Ctrl-C during start-up handled like any other.

The command's own Ctrl-C handler (lipagent.interrupt) is installed once the command runs; before that, Python's
default turns a Ctrl-C into a traceback from whichever import it hit (about the first 0.3 s of every command).
"""

from __future__ import annotations

import sys

STARTING = "lipagent: interrupted while starting; nothing was written"


def main() -> int:
    try:
        from lipagent.cli import main as run_command
    except KeyboardInterrupt:
        print(STARTING, file=sys.stderr)
        return 130
    return run_command()


if __name__ == "__main__":
    sys.exit(main())
