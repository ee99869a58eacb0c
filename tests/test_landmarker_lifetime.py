"""A landmarker dropped without close, and one still open at exit, must not hang or spill errors: mediapipe 1.x
closes an unclosed task from its __del__, which never returns when the garbage collector runs it, and raises once
the interpreter has shut its executors down."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import gc
import numpy as np
from lipagent.config import DEFAULT_CONFIG
from lipagent.transform.mouth import LipLandmarker

frame = np.zeros((288, 360, 3), np.uint8)
for _ in range(3):
    dropped = LipLandmarker(DEFAULT_CONFIG)
    dropped.clip_boxes([frame, frame])
    dropped.face_scores(frame)
    del dropped
    gc.collect()
kept = LipLandmarker(DEFAULT_CONFIG)
print("read", kept.clip_boxes([frame]))
"""


def test_dropped_and_open_landmarkers_neither_hang_nor_spill_errors_at_exit():
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "read [None]" in done.stdout
    assert "Exception ignored" not in done.stderr and "Traceback" not in done.stderr, done.stderr[-2000:]
