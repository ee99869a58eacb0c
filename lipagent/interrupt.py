"""One Ctrl-C stops a command: the main process decides, its worker processes ignore the signal.

A terminal's Ctrl-C reaches every process of the foreground group: `datasets`' map workers and its queue manager
each died with their own traceback (or, hit while starting, took the run down with them in ways the main process
did not notice). Here the SIGINT handler is a Python function that worker processes inherit (forked) or install
(`ignore_in_workers`, for forkserver workers): in a child it does nothing, in the main process it raises
KeyboardInterrupt, and the main process tears the pool down through the normal exception path.
"""

from __future__ import annotations

import _thread
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import NoReturn

GIVE_UP_AFTER_S = 3.0
"""Seconds an interrupted `prepare` may take to tear down its worker pools (0.3-0.5 s measured) before it is ended
by force."""

_main_pid = os.getpid()
_interrupted = False
_starting_interrupted = False
_farewell: str | None = None
_give_up_after: float | None = None
_watchdog: threading.Timer | None = None


def _on_sigint(signum: int, frame: FrameType | None) -> None:
    global _interrupted
    if os.getpid() != _main_pid:
        return  # a worker or the queue manager: the main process stops them
    _interrupted = True
    _start_watchdog()
    _stop_main_thread(frame)


def _stop_main_thread(frame: FrameType | None) -> None:
    """Raise KeyboardInterrupt, unless `frame` is inside an import: raised there, it can reach a C extension that
    prints it as a traceback and carries on (seen in protobuf's descriptor pool); so the import finishes, then the
    main thread is interrupted again, 50 ms later, where it can stop cleanly."""
    if _inside_import(frame):
        retry = threading.Timer(0.05, _thread.interrupt_main)
        retry.daemon = True
        retry.start()
        return
    raise KeyboardInterrupt


def handle_ctrl_c_while_starting() -> None:
    """From a program's first line until its command installs `main_process_handles_ctrl_c`: a Ctrl-C raises
    KeyboardInterrupt as Python's default does, but not inside an import (`_stop_main_thread`), and it is remembered,
    so that one a library swallows (a bare `except` around an import) still stops the command when its handler is
    installed. Without this, a Ctrl-C 0.1 s after launch once vanished and the build ran to the end (clean-clone CI)."""
    global _main_pid
    _main_pid = os.getpid()
    signal.signal(signal.SIGINT, _on_sigint_while_starting)


def interrupted_while_starting() -> bool:
    """Whether a Ctrl-C came while the program started (whatever became of its KeyboardInterrupt)."""
    return _starting_interrupted


def _on_sigint_while_starting(signum: int, frame: FrameType | None) -> None:
    global _starting_interrupted
    if os.getpid() != _main_pid:
        raise KeyboardInterrupt
    _starting_interrupted = True
    _stop_main_thread(frame)


def _inside_import(frame: FrameType | None) -> bool:
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False


def _start_watchdog() -> None:
    global _watchdog
    if _watchdog is None and _give_up_after is not None:
        _watchdog = threading.Timer(_give_up_after, _give_up)
        _watchdog.daemon = True
        _watchdog.start()


def _give_up() -> None:
    """The teardown hung: a pool terminated while a worker held its task queue's lock waits for it forever
    (seen about once in 30 interrupts on a busy machine, inside `datasets`' `with Pool`). Outputs are written
    through staging folders, so ending here loses nothing but the wait; workers are killed, not orphaned."""
    end_interrupted(f"{_farewell} (its teardown hung and was cut short)" if _farewell else None)


def end_interrupted(line: str | None = None) -> NoReturn:
    """End an interrupted process now: its worker processes killed, `line` on stderr, status 130, no exit-time
    teardown (a pool's can hang; and a KeyboardInterrupt that passed through a C extension's PyRun_String while
    importing leaves CPython's "unhandled KeyboardInterrupt" flag set, so the interpreter would end itself by SIGINT,
    status -2, whatever the exit code).

    A pool's worker handler replaces a worker that dies: told to stop first, and given a moment to finish a
    replacement it had begun, so that no new worker outlives this process, orphaned, waiting forever for the task
    queue's lock while it holds the caller's pipes."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C deferred out of an import may still be on its way
        with contextlib.suppress(OSError, ValueError):  # os._exit drops what is buffered; a closed pipe drops it too
            sys.stdout.flush()  # (not from the watchdog's thread: the main thread may hold the buffer's lock)
    import multiprocess

    handlers = stop_pool_handlers()
    for child in multiprocess.active_children():
        child.kill()
    for thread in handlers:
        thread.join(0.5)
    for child in multiprocess.active_children():
        child.kill()
    if line:
        os.write(2, f"{line}\n".encode())
    os._exit(130)


def said_farewell() -> None:
    """The command has printed its one line; a forced end after this prints nothing more."""
    global _farewell
    _farewell = None


@contextmanager
def main_process_handles_ctrl_c(farewell: str = "interrupted", give_up_after: float | None = None) -> Iterator[None]:
    """Install the handler for the length of a command (the process that enters is the main one). After an
    interruption Ctrl-C stays ignored: the command is on its way out, and a second one must not turn a clean exit
    into a traceback. With `give_up_after`, an interrupted command whose teardown has not ended that many seconds
    later prints `farewell` and exits 130 (for commands whose pools can hang; not for one that finishes a model
    call or prints a summary on its way out)."""
    global _main_pid, _interrupted, _farewell, _give_up_after, _watchdog
    if _starting_interrupted:  # a start-up Ctrl-C that some library swallowed
        raise KeyboardInterrupt
    _main_pid, _interrupted, _farewell, _give_up_after = os.getpid(), False, farewell, give_up_after
    previous = signal.signal(signal.SIGINT, _on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN if _interrupted else previous)
        if _watchdog is not None:  # the teardown ended: a process that goes on (a notebook, a test) must live
            _watchdog.cancel()
            _watchdog = None


def ignore_in_workers() -> None:
    """Called by work that runs in pool workers: one started fresh (forkserver) did not inherit the handler, so it
    ignores Ctrl-C from here on, as forked ones do."""
    import multiprocess

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


def stop_pool_handlers() -> list[threading.Thread]:
    """After an interrupted command: tell every process pool's worker handler to stop replacing workers.

    A Ctrl-C that lands while `datasets` makes or tears down its map pool (forking, so more often on a busy machine)
    can leave a pool never terminated. At interpreter exit its workers are terminated (one of them holding the task
    queue's lock), its handler thread replaces them, and the replacement, orphaned, waits for that lock forever while
    holding the terminal's pipes: the run printed its line and exited, yet its caller never got control back. With
    the handler's state set to TERMINATE (what Pool.terminate sets), it wakes at the first worker's exit and stops
    instead. multiprocess gives no handle on a pool another library made, so the threads are found by their target."""
    from multiprocess.pool import TERMINATE

    handlers = [
        thread
        for thread in threading.enumerate()
        if getattr(getattr(thread, "_target", None), "__name__", "") == "_handle_workers"
    ]
    for thread in handlers:
        thread._state = TERMINATE
    return handlers
