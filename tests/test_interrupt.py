"""What an interrupted command leaves behind: nothing running (lipagent/interrupt.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import multiprocess
import pytest

from lipagent.interrupt import stop_pool_handlers

REPO = Path(__file__).resolve().parents[1]


def _children_after_a_task(pool) -> list:
    """Run one task; with maxtasksperchild=1 its worker then exits, as workers do when interpreter exit kills them."""
    assert pool.apply_async(sum, ([1, 2],)).get(timeout=30) == 3
    time.sleep(1.0)
    return multiprocess.active_children()


def test_a_pool_an_interrupt_left_running_stops_replacing_its_workers():
    """A Ctrl-C during a pool's set-up or teardown leaves it never terminated: its handler thread replaced each
    worker that exited (at interpreter exit: all of them), and the replacement outlived the command."""
    pool = multiprocess.Pool(2, maxtasksperchild=1)
    try:
        assert len(_children_after_a_task(pool)) == 2, "a running pool replaces a worker that exits"
        stop_pool_handlers()
        assert _children_after_a_task(pool) == [], "once stopped it replaces none, and winds the others down"
        pool._worker_handler.join(timeout=10)
        assert not pool._worker_handler.is_alive()
    finally:
        pool.terminate()
    assert multiprocess.active_children() == []


HUNG_TEARDOWN = """
import os, signal, time
import multiprocess
import pytest
from lipagent.interrupt import main_process_handles_ctrl_c

worker = multiprocess.Process(target=time.sleep, args=(60,), daemon=True)
worker.start()
with main_process_handles_ctrl_c("demo: interrupted", give_up_after=0.5):
    try:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)
    except KeyboardInterrupt:
        time.sleep(60)  # a teardown that never ends, as a pool's did
"""


def test_a_teardown_that_hangs_is_cut_short_with_its_one_line_and_no_worker_left():
    started = time.monotonic()
    run = subprocess.run([sys.executable, "-c", HUNG_TEARDOWN], capture_output=True, text=True, timeout=30)
    # communicate() returns only once every holder of the pipes is gone: the worker was killed, not orphaned.
    assert run.returncode == 130 and time.monotonic() - started < 15, run
    assert run.stderr.strip() == "demo: interrupted (its teardown hung and was cut short)", run.stderr


INTERRUPTED_IMPORT = """
import pathlib, sys, time
from lipagent.interrupt import main_process_handles_ctrl_c

folder = sys.argv[1]
pathlib.Path(folder, "slow_module.py").write_text(
    "import os, signal, time\\nos.kill(os.getpid(), signal.SIGINT)\\ntime.sleep(0.2)\\nDONE = True\\n"
)
sys.path.insert(0, folder)
with main_process_handles_ctrl_c():
    try:
        import slow_module
        print("imported", slow_module.DONE)
        time.sleep(5)
        print("not interrupted")
    except KeyboardInterrupt:
        print("interrupted after the import")
"""


def test_a_ctrl_c_during_an_import_stops_the_command_once_the_import_is_done(tmp_path):
    """Raised inside an import, KeyboardInterrupt reached C extensions that printed it as a traceback and went on
    (protobuf's descriptor pool, in CI): the handler lets the import finish and interrupts right after it."""
    run = subprocess.run(
        [sys.executable, "-c", INTERRUPTED_IMPORT, str(tmp_path)], capture_output=True, text=True, timeout=30
    )
    assert run.stdout.split("\n")[:2] == ["imported True", "interrupted after the import"], run


def test_a_teardown_that_ends_in_time_leaves_no_watchdog_behind():
    """A command run in-process (a notebook, `lipagent demo`) that was interrupted and stopped cleanly must not
    have its host killed by the watchdog afterwards."""
    from lipagent import interrupt

    with pytest.raises(KeyboardInterrupt), interrupt.main_process_handles_ctrl_c("x", give_up_after=0.3):
        signal.raise_signal(signal.SIGINT)
        time.sleep(2)
    time.sleep(0.5)
    assert interrupt._watchdog is None and interrupt.interrupted()
    signal.signal(signal.SIGINT, signal.default_int_handler)
    interrupt._interrupted = False  # this process goes on to run other commands' tests


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


def test_a_script_interrupted_while_it_runs_says_what_it_keeps():
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            "import signal, sys\n"
            "from lipagent.__main__ import run_script\n"
            "sys.exit(run_script('demo.py', 'signal:raise_signal', signal.SIGINT, 'what was kept'))",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert run.returncode == 130 and run.stderr.strip() == "demo.py: interrupted; what was kept", run


SWALLOWED_AT_START = """
import os, signal
from lipagent.interrupt import handle_ctrl_c_while_starting, main_process_handles_ctrl_c

handle_ctrl_c_while_starting()
try:
    os.kill(os.getpid(), signal.SIGINT)
    for _ in range(10**6):
        pass
except KeyboardInterrupt:
    pass  # a library's bare `except` around an import
try:
    with main_process_handles_ctrl_c():
        print("went on")
except KeyboardInterrupt:
    print("stopped")
"""


def test_a_ctrl_c_swallowed_while_starting_stops_the_command_when_it_starts():
    """In clean-clone CI a Ctrl-C 0.1 s after launch vanished and `prepare` ran to the end with status 0."""
    run = subprocess.run([sys.executable, "-c", SWALLOWED_AT_START], capture_output=True, text=True, timeout=30)
    assert run.stdout.strip() == "stopped", run
