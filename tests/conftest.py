"""Shared fixtures: the real GRID samples in ../shared/grid and one prepared dataset built from them."""

from __future__ import annotations

import os
import shutil
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
    import lipagent.testing.tiny_gemma3n as tiny

    return tiny.save_tiny_model(tmp_path_factory.mktemp("tiny-gemma3n") / "model", seed=0)


@pytest.fixture(scope="session")
def processor(tiny_dir: Path):
    import transformers

    return transformers.AutoProcessor.from_pretrained(tiny_dir, local_files_only=True)


@pytest.fixture(scope="session")
def grid_dir() -> Path:
    """The real clips. Without them the tests that need them skip, saying why; CI never skips them, because
    `.ci/run` refuses to start without ../shared/grid."""
    if not (GRID_DIR / "s1.zip").is_file():
        pytest.skip(f"the real GRID samples are missing at {GRID_DIR} (set LIPAGENT_GRID_DIR to their folder)")
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
    from lipagent.data.prepare import PrepareOptions, prepare

    root = tmp_path_factory.mktemp("prepared")
    out = root / "grid-mosaics"
    summary = prepare(
        PrepareOptions(speakers=("s1", "s2"), out=out, grid_dir=grid_dir, cache_dir=root / "cache", num_proc=2)
    )
    return out, summary


@pytest.fixture(scope="session")
def few_prepared(grid_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 12 s1 clips prepared with one worker: real mosaics in seconds, for tests that need a few."""
    from lipagent.data.prepare import PrepareOptions, prepare

    root = tmp_path_factory.mktemp("few-prepared")
    out = root / "grid-mosaics"
    prepare(
        PrepareOptions(speakers=("s1",), out=out, grid_dir=grid_dir, limit=12, cache_dir=root / "cache", num_proc=1)
    )
    return out


@pytest.fixture(scope="session")
def baseline_dir(prepared, tmp_path_factory) -> Path:
    """`lipagent baseline train` on the real mosaics, as a user runs it (few epochs and clips, to stay quick)."""
    from lipagent.cli import main as lipagent_main

    out, _ = prepared
    folder = tmp_path_factory.mktemp("baseline") / "baseline"
    assert (
        lipagent_main(["baseline", "train", str(out), "--out", str(folder), "--epochs", "2", "--max-samples", "32"])
        == 0
    )
    return folder


def _cache_snapshot(hub_cache: Path, kind: str, repo_id: str, source: Path) -> None:
    """Lay files out as huggingface_hub's cache does after a download."""
    revision = "0123456789abcdef0123456789abcdef01234567"
    root = hub_cache / f"{kind}s--{repo_id.replace('/', '--')}"
    shutil.copytree(source, root / "snapshots" / revision)
    (root / "refs").mkdir(parents=True)
    (root / "refs" / "main").write_text(revision)


@pytest.fixture
def cache_snapshot():
    """`cache_snapshot(hub_cache, "model"|"dataset", repo_id, folder)`: put a folder in a Hub cache, as if
    downloaded, for offline tests of Hub ids."""
    return _cache_snapshot
