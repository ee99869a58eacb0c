"""`make setup` checks the Python first and names the versions that work, before anything is installed."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def check_python(*overrides: str) -> subprocess.CompletedProcess:
    command = ["make", "-s", "check-python", f"PYTHON={sys.executable}", *overrides]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=60)


def test_this_python_is_one_that_works():
    assert check_python().returncode == 0


def test_another_python_is_refused_in_one_line_that_names_the_ones_that_work():
    version = "%d.%d" % sys.version_info[:2]
    refused = check_python("PYTHONS=3.9")
    assert refused.returncode != 0
    assert refused.stderr.splitlines()[0] == (
        f"make setup: LipAgent installs on Python 3.9; {sys.executable} is Python {version}. "
        "Give another one: make setup PYTHON=python3.13"
    )


def test_setup_runs_the_check_before_creating_the_environment():
    plan = subprocess.run(["make", "-n", "-B", "setup"], cwd=REPO, capture_output=True, text=True, timeout=60).stdout
    assert plan.index("LipAgent installs on Python") < plan.index("-m venv")
