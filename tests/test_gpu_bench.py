"""The prepared GPU benchmark (bench/gpu/) runs end to end here on the tiny model, so it is ready when a GPU is lent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import bench_e4b
import wheels

REPO = Path(__file__).resolve().parents[1]


def test_cpu_smoke_run_measures_every_section(tmp_path):
    env = {**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        ["bash", str(REPO / "bench" / "gpu" / "run.sh"), "cpu-smoke", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads((tmp_path / "out" / "gpu_bench.json").read_text())
    assert figures["cpu_smoke"] is True
    names = [row["config"] for row in figures["training"]]
    assert all("error" not in row for row in figures["training"]), figures["training"]
    assert names == [s.name for s in bench_e4b.TRAINING if not s.gpu_only], "every section the CPU can run, in order"
    skipped = [s.name for s in bench_e4b.TRAINING if s.gpu_only]
    assert [note.split("'")[1] for note in figures["notes"] if "skipped in the CPU smoke run" in note] == skipped
    for row in figures["training"]:
        assert row["samples_per_s"] > 0 and row["tokens_per_s"] > 0 and row["peak_memory_gb"] > 0
        assert row["recipe_minutes"] == 4000 * 5 / row["samples_per_s"] / 60
    assert [(row["decoding"], row["cache"]) for row in figures["reading"]] == bench_e4b.READING
    assert all(row["latency_s"] > 0 and row["clips_per_s_batch_2"] > 0 for row in figures["reading"])
    table = (tmp_path / "out" / "gpu_bench.md").read_text()
    assert "CPU SMOKE RUN, not GPU figures" in table and "| constrained decoding, static cache |" in table


def test_wheels_pin_the_checkouts_versions_and_count_what_travels():
    pins = wheels.pins()
    assert pins["transformers"].startswith("==") and pins["trl"].startswith("==")
    assert all(name in wheels.MISSING for name in ("trl", "datasets", "bitsandbytes"))
    assert 0 < wheels.tree_bytes() < wheels.LIMIT / 4, "the working tree must leave room for the wheels"


def test_run_sh_with_an_unknown_mode_says_how_to_use_it():
    run_sh = str(REPO / "bench" / "gpu" / "run.sh")
    result = subprocess.run(["bash", run_sh, "sometimes"], capture_output=True, text=True)
    assert result.returncode == 2 and "usage" in result.stderr


def test_profile_step_names_the_parts_and_the_top_operators(tmp_path):
    """bench/gpu/profile_step.py (where a training step's time goes) runs on the tiny model and writes its table."""
    env = {**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [
            "bash",
            str(REPO / "bench" / "gpu" / "run.sh"),
            "profile",
            "--tiny",
            "--steps",
            "1",
            "--warmup-steps",
            "1",
            "--samples",
            "4",
            "--out",
            str(tmp_path),
            "--output_dir",
            str(tmp_path / "trainer"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    text = (tmp_path / "profile.txt").read_text()
    assert "profiled: 1 optimizer steps" in text
    parts = [line.split()[0] for line in text.splitlines() if line.startswith(("vision", "language"))]
    assert {"vision", "language"} <= set(parts)
    assert "aten::" in text.split("top operators")[1]
