"""`lipagent` and `python -m lipagent`: the command line, with a Ctrl-C during start-up handled like any other.

The command's own Ctrl-C handler (lipagent.interrupt) is installed once the command runs; before that, Python's
default turns a Ctrl-C into a traceback from whichever import it hit (about the first 0.3 s of every command).
The scripts (train/sft.py, eval/run_eval.py, push_to_hub.py) start through `run_script` for the same reason.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any, NoReturn

STARTING = "interrupted while starting; nothing was written"


def _ended_while_starting(program: str) -> NoReturn:
    """Not a return but `end_interrupted` (why: its docstring; 2 start-up interrupts in about 120 ended -2 before).
    Nothing has been written yet, so nothing is lost."""
    from lipagent.interrupt import end_interrupted

    end_interrupted(f"{program}: {STARTING}")


def main() -> int:
    """Run the command; a Ctrl-C before it installs its own handler (imports, parsing) ends here."""
    try:
        from lipagent.interrupt import end_interrupted, handle_ctrl_c_while_starting

        handle_ctrl_c_while_starting()
        from lipagent.cli import main as run_command

        code = run_command()
    except KeyboardInterrupt:
        _ended_while_starting("lipagent")
    if code == 130:  # interrupted, its line printed: end now rather than in a pool's exit-time teardown
        end_interrupted()
    return code


def run_script(program: str, target: str, argv: list[str] | None, interrupted: str, **kwargs: Any) -> int:
    """A script's `main`: import `module:function` (the script's work, in the library) and call it with `argv` (and
    `kwargs`).

    A Ctrl-C while importing ends in one line and status 130, as in `main`; one while it runs, in one line saying
    what an interrupted run keeps (`interrupted`) and status 130, instead of a traceback."""
    from lipagent.interrupt import end_interrupted, handle_ctrl_c_while_starting, interrupted_while_starting

    module, _, name = target.partition(":")
    try:
        handle_ctrl_c_while_starting()
        function: Callable[..., int | None] = getattr(importlib.import_module(module), name)
    except KeyboardInterrupt:
        _ended_while_starting(program)
    if interrupted_while_starting():  # a Ctrl-C that an imported library swallowed
        _ended_while_starting(program)
    try:
        return function(argv, **kwargs) or 0
    except KeyboardInterrupt:
        end_interrupted(f"{program}: interrupted; {interrupted}")


if __name__ == "__main__":
    sys.exit(main())
