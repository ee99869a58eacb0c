"""`lipagent` and `python -m lipagent`: the command line, with a Ctrl-C during start-up handled like any other.

The command's own Ctrl-C handler (lipagent.interrupt) is installed once the command runs; before that, Python's
default turns a Ctrl-C into a traceback from whichever import it hit (about the first 0.3 s of every command).
"""

from __future__ import annotations

import os
import sys

STARTING = "lipagent: interrupted while starting; nothing was written"


def main() -> int:
    """Run the command; a Ctrl-C before it installs its own handler (imports, parsing) ends here."""
    try:
        from lipagent.cli import main as run_command
        from lipagent.interrupt import end_interrupted

        code = run_command()
    except KeyboardInterrupt:
        print(STARTING, file=sys.stderr, flush=True)
        # Not a return: a KeyboardInterrupt that passed through a C extension's PyRun_String while importing leaves
        # CPython's "unhandled KeyboardInterrupt" flag set, and the interpreter then ends itself by SIGINT (status
        # -2) whatever the exit code (2 runs in about 120). Nothing has been written yet, so nothing is lost.
        os._exit(130)
    if code == 130:  # interrupted, its line printed: end now rather than in a pool's exit-time teardown
        sys.stdout.flush()
        end_interrupted()
    return code


if __name__ == "__main__":
    sys.exit(main())
