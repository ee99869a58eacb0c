"""Silencing native libraries that write straight to the process's stderr."""

from __future__ import annotations

import os
import sys
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

_LOCK = threading.Lock()
_DEPTH = 0
_SAVED: int | None = None
"""While some thread is quiet: a duplicate of the real stderr, put back on file descriptor 2 by the last to leave."""


@contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Silence file descriptor 2: MediaPipe's C++ chatter ignores GLOG settings and OpenCV's FFmpeg
    warns about the MPEG-1 tag it writes; both would scribble over progress bars.

    Threads may overlap (a capture loop and a reader): the first to enter silences, the last to leave restores, and
    the program's own messages go through `sys.stderr`, which `separate_python_stderr` keeps off the descriptor.
    """
    global _DEPTH, _SAVED
    with _LOCK:
        if _DEPTH == 0:
            _separate_python_stderr()
            _SAVED, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
            os.close(devnull)
        _DEPTH += 1
    try:
        yield
    finally:
        with _LOCK:
            _DEPTH -= 1
            if _DEPTH == 0 and _SAVED is not None:
                os.dup2(_SAVED, 2)
                os.close(_SAVED)
                _SAVED = None


def separate_python_stderr() -> None:
    """Give `sys.stderr` its own duplicate of the real stderr, so that silencing file descriptor 2 for native
    libraries never swallows a message of the program. Call it before starting threads that go quiet; a no-op when
    `sys.stderr` is not the descriptor (pytest's capture, a notebook) or already separate."""
    with _LOCK:
        _separate_python_stderr()


def _separate_python_stderr() -> None:
    stream = sys.stderr
    try:
        on_fd_2 = stream.fileno() == 2
    except (AttributeError, OSError, ValueError):
        on_fd_2 = False
    if on_fd_2:
        stream.flush()
        real = _SAVED if _SAVED is not None else 2
        sys.stderr = open(os.dup(real), "w", buffering=1, encoding=stream.encoding, errors="backslashreplace")


def quiet_known_library_warnings() -> None:
    """Drop warnings users can do nothing about: PEFT reads `model.is_gradient_checkpointing`, which transformers 5
    deprecates with a FutureWarning on every model load."""
    warnings.filterwarnings("ignore", message=r"`is_gradient_checkpointing` is deprecated", category=FutureWarning)
