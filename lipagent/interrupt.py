"""One Ctrl-C stops a command: the main process decides, its worker processes ignore the signal.

A terminal's Ctrl-C reaches every process of the foreground group: `datasets`' map workers and its queue manager
each died with their own traceback (or, hit while starting, took the run down with them in ways the main process
did not notice). Here the SIGINT handler is a Python function that worker processes inherit (forked) or install
(`ignore_in_workers`, for forkserver workers): in a child it does nothing, in the main process it raises
KeyboardInterrupt, and the main process tears the pool down through the normal exception path.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

import multiprocess

_main_pid = os.getpid()
_interrupted = False


def _on_sigint(signum: int, frame: FrameType | None) -> None:
    global _interrupted
    if os.getpid() != _main_pid:
        return  # a worker or the queue manager: the main process stops them
    _interrupted = True
    raise KeyboardInterrupt


@contextmanager
def main_process_handles_ctrl_c() -> Iterator[None]:
    """Install the handler for the length of a command (the process that enters is the main one). After an
    interruption Ctrl-C stays ignored: the command is on its way out, and a second one must not turn a clean exit
    into a traceback."""
    global _main_pid, _interrupted
    _main_pid, _interrupted = os.getpid(), False
    previous = signal.signal(signal.SIGINT, _on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN if _interrupted else previous)


def ignore_in_workers() -> None:
    """Called by work that runs in pool workers: one started fresh (forkserver) did not inherit the handler, so it
    ignores Ctrl-C from here on, as forked ones do."""
    if multiprocess.current_process().name != "MainProcess":
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def stop_if_interrupted() -> None:
    """A checkpoint between stages: a Ctrl-C whose KeyboardInterrupt some library swallowed (a bare `except:` around
    an import or a cleanup) still stops the command here."""
    if _interrupted and os.getpid() == _main_pid:
        raise KeyboardInterrupt


def interrupted() -> bool:
    """Whether Ctrl-C stopped the command (the exception that surfaced may be another one, raised while the
    interrupted work was being torn down)."""
    return _interrupted
