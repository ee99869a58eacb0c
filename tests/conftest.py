"""Shared fixtures: the real GRID samples in ../shared/grid and one prepared dataset built from them."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
GRID_DIR = Path(os.environ.get("LIPAGENT_GRID_DIR", REPO.parent / "shared" / "grid"))


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    """Ops as small as the tiny model's lose to thread sync, and 2 threads on 2 shared cores spike to seconds."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Gemma 3n (model + processor) written once for every test that needs one."""
    import lipagent.tiny_gemma3n as tiny

    return tiny.save_tiny_model(tmp_path_factory.mktemp("tiny-gemma3n") / "model", seed=0)


@pytest.fixture(scope="session")
def processor(tiny_dir: Path):
    import transformers

    return transformers.AutoProcessor.from_pretrained(tiny_dir, local_files_only=True)


@pytest.fixture(scope="session")
def grid_dir() -> Path:
    if not (GRID_DIR / "s1.zip").is_file():
        raise FileNotFoundError(f"the real GRID samples are missing at {GRID_DIR}; tests on real data cannot run")
    return GRID_DIR


@pytest.fixture(scope="session")
def unpacked(grid_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """s1, s2 and alignments unpacked once, for tests that need single files."""
    root = tmp_path_factory.mktemp("grid-unpacked")
    for name in ("s1.zip", "s2.zip", "alignments.zip"):
        with zipfile.ZipFile(grid_dir / name) as archive:
            archive.extractall(root)
    return root


@pytest.fixture(scope="session")
def prepared(grid_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """Every shared s1 and s2 clip prepared once with two workers: (output folder, summary)."""
    from lipagent.prepare import PrepareOptions, prepare

    root = tmp_path_factory.mktemp("prepared")
    out = root / "grid-mosaics"
    summary = prepare(
        PrepareOptions(speakers=("s1", "s2"), out=out, grid_dir=grid_dir, cache_dir=root / "cache", num_proc=2)
    )
    return out, summary
