"""Ctrl-C (lipagent/interrupt.py): one line, status 130, no traceback, nothing half-written, no worker left running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

PROGRAM = """
import os, signal, sys, time
from pathlib import Path
import multiprocess
from lipagent.interrupt import run_program, say_when_interrupted
from lipagent.outputs import output_lock, staging_for

def main():
    say_when_interrupted("demo: interrupted; nothing was written")
{body}

sys.exit(run_program("demo", main))
"""


def run_program(body: str, *args: str) -> subprocess.CompletedProcess:
    script = PROGRAM.format(body="\n".join("    " + line for line in body.strip().splitlines()))
    return subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=60)


HUNG = """
worker = multiprocess.Process(target=time.sleep, args=(60,), daemon=True)
worker.start()
out = Path(sys.argv[1]) / "out"
with output_lock(out), staging_for(out) as staging:
    (staging / "half.parquet").write_bytes(b"half")
    try:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)
    except KeyboardInterrupt:
        {after}
    time.sleep(60)  # the command goes on
"""


@pytest.mark.parametrize(
    "after",
    ["time.sleep(60)  # a teardown that never ends, as a process pool's did", "pass  # a library's bare except"],
    ids=["hung teardown", "swallowed"],
)
def test_a_ctrl_c_whose_stop_does_not_end_is_cut_short_and_leaves_nothing(after, tmp_path):
    started = time.monotonic()
    run = run_program(HUNG.replace("{after}", after), str(tmp_path))
    # run() returns only once every holder of the pipes is gone: the worker was killed, not orphaned.
    assert run.returncode == 130 and time.monotonic() - started < 20, run
    assert run.stderr.strip() == "demo: interrupted; nothing was written (its teardown hung and was cut short)", run
    assert list(tmp_path.iterdir()) == [], "the staging folder and the lock are removed"


PRINTING_IMPORT = """
sys.path.insert(0, sys.argv[1])
Path(sys.argv[1], "printing_module.py").write_text(
    "import os, signal, time, traceback\\n"
    "try:\\n"
    "    os.kill(os.getpid(), signal.SIGINT)\\n"
    "    time.sleep(0.3)\\n"
    "except BaseException:\\n"
    "    traceback.print_exc()  # what a C extension does with an exception from Python code it runs\\n"
)
import printing_module
print("imported", flush=True)
time.sleep(5)
print("not interrupted")
"""


def test_a_ctrl_c_inside_an_import_ends_the_program_without_a_traceback(tmp_path):
    """Raised inside an import, KeyboardInterrupt reached C code that printed it as a traceback and went on (protobuf's
    descriptor pool, 2 start-ups in 25): inside an import the handler ends the program instead of raising."""
    run = run_program(PRINTING_IMPORT, str(tmp_path))
    assert run.returncode == 130 and "Traceback" not in run.stderr, run
    assert run.stdout == "" and run.stderr.strip() == "demo: interrupted; nothing was written", run


def test_a_ctrl_c_while_it_runs_is_the_commands_one_line():
    run = run_program("os.kill(os.getpid(), signal.SIGINT)\ntime.sleep(5)")
    assert run.returncode == 130 and run.stderr.strip() == "demo: interrupted; nothing was written", run


def test_a_script_interrupted_while_it_imports_says_one_line():
    """train/sft.py spends its first seconds importing torch, transformers and TRL: a Ctrl-C there was a traceback."""
    run = subprocess.Popen(
        [sys.executable, "train/sft.py", "--help"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    time.sleep(1.5)
    os.killpg(run.pid, signal.SIGINT)
    out, err = run.communicate(timeout=60)
    line = "sft.py: interrupted while starting; nothing was written"
    assert run.returncode == 130 and err.strip() == line and out == "", (run.returncode, err[-2000:])
