"""Ctrl-C: one line, status 130, nothing half-written, no worker left running.

A terminal's Ctrl-C reaches every process of the foreground group. Pool workers ignore it (the handler does nothing
outside the main process; `ignore_in_workers` covers workers that did not inherit it), the main process raises
KeyboardInterrupt, and a program's entry (`run_program`) catches it once and ends through `end_interrupted`: the
command's one line, workers killed, status 130. Outputs are written through staging folders (lipagent.outputs), and
a forced end removes those still unfinished, so nothing half-written is left. A teardown still running
GIVE_UP_AFTER_S after the Ctrl-C (a process pool's can hang), or a KeyboardInterrupt that a library swallowed, is
ended the same way by a timer; a Ctrl-C that lands inside an import ends the program at once.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import NoReturn

from lipagent.outputs import remove_unfinished

GIVE_UP_AFTER_S = 3.0
"""Seconds an interrupted command may take to stop (a pool's teardown takes 0.3-0.5 s) before it is ended by force."""

_main_pid: int | None = None
_interrupted = False
_line = "interrupted"


def say_when_interrupted(line: str) -> None:
    """The one line this process prints if a Ctrl-C stops it from now on (what the command leaves, in words)."""
    global _line
    _line = line


def run_program(program: str, main: Callable[[], int | None]) -> int:
    """A program's whole run (`lipagent`, train/sft.py, ...): the handler first, then `main`, which imports what it
    needs; a Ctrl-C anywhere, those imports included, ends in one line and status 130."""
    global _main_pid, _interrupted
    _main_pid, _interrupted = os.getpid(), False
    say_when_interrupted(f"{program}: interrupted while starting; nothing was written")
    signal.signal(signal.SIGINT, _on_sigint)
    try:
        return main() or 0
    except BaseException:
        if _interrupted:  # KeyboardInterrupt, or whatever the interrupted work raised while it was torn down
            end_interrupted()
        raise


def _on_sigint(signum: int, frame: FrameType | None) -> None:
    global _interrupted
    if os.getpid() != _main_pid:
        return  # a forked worker: the main process stops it
    _interrupted = True
    if _inside_import(frame):
        # Raised inside an import, KeyboardInterrupt can reach a C extension that prints it as a traceback and goes on
        # (protobuf's descriptor pool does); an import holds nothing to tear down, so end here.
        end_interrupted()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the command is on its way out; a second Ctrl-C changes nothing
    watchdog = threading.Timer(GIVE_UP_AFTER_S, end_interrupted, kwargs={"cut_short": True})
    watchdog.daemon = True
    watchdog.start()
    raise KeyboardInterrupt


def _inside_import(frame: FrameType | None) -> bool:
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False


def end_interrupted(cut_short: bool = False) -> NoReturn:
    """End an interrupted process now: unfinished outputs removed, worker processes killed, its line on stderr, status
    130, and no exit-time teardown (a pool's can hang)."""
    import multiprocess

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        with contextlib.suppress(OSError, ValueError):  # os._exit drops what is buffered
            sys.stdout.flush()
    remove_unfinished()
    for _ in range(5):  # a pool replaces a worker that dies, so its replacements are killed too
        for child in multiprocess.active_children():
            child.kill()
        time.sleep(0.05)
    os.write(2, f"{_line}{' (its teardown hung and was cut short)' if cut_short else ''}\n".encode())
    os._exit(130)


def ignore_in_workers() -> None:
    """Called by work that runs in pool workers: one started afresh (forkserver) did not inherit the handler."""
    import multiprocess

    if multiprocess.current_process().name != "MainProcess":
        signal.signal(signal.SIGINT, signal.SIG_IGN)
