"""Silencing native libraries that write straight to the process's stderr."""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Silence file descriptor 2: MediaPipe's C++ chatter ignores GLOG settings and OpenCV's FFmpeg
    warns about the MPEG-1 tag it writes; both would scribble over progress bars."""
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def quiet_known_library_warnings() -> None:
    """Drop warnings users can do nothing about: PEFT reads `model.is_gradient_checkpointing`, which transformers 5
    deprecates with a FutureWarning on every model load."""
    warnings.filterwarnings("ignore", message=r"`is_gradient_checkpointing` is deprecated", category=FutureWarning)
