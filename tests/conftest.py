"""Shared fixtures: the real GRID samples in ../shared/grid and one prepared dataset built from them."""

from __future__ import annotations

import os
import pickle
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
GRID_DIR = Path(os.environ.get("LIPAGENT_GRID_DIR", REPO.parent / "shared" / "grid"))
FACE_LANDMARKER_BUNDLE = GRID_DIR.parent / "models" / "face_landmarker.task"
if FACE_LANDMARKER_BUNDLE.is_file():  # MediaPipe's model storage cannot be reached from the test machines
    os.environ.setdefault("LIPAGENT_FACE_LANDMARKER", str(FACE_LANDMARKER_BUNDLE))


def built_once(name: str, tmp_path_factory: pytest.TempPathFactory, build: Callable[[Path], None]) -> Path:
    """A folder that `build` fills: afresh in every test session, or, where LIPAGENT_TEST_CACHE names a folder (make
    mutation sets it), once for all sessions. A mutation run tests once per planted bug, and what is built here are
    the tests' inputs, made from the code before any bug was planted."""
    cache = os.environ.get("LIPAGENT_TEST_CACHE")
    if cache is None:
        folder = tmp_path_factory.mktemp(name)
        build(folder)
        return folder
    folder = Path(cache) / name
    if not (folder / ".built").is_file():
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        build(folder)
        (folder / ".built").touch()
    return folder


@pytest.fixture(scope="session")
def build_once(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, Callable[[Path], None]], Path]:
    """`build_once(name, build)`: `built_once` for a test module's own expensive inputs."""
    return lambda name, build: built_once(name, tmp_path_factory, build)


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

    root = built_once("tiny-gemma3n", tmp_path_factory, lambda folder: tiny.save_tiny_model(folder / "model", seed=0))
    return root / "model"


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
def face_landmarker_bundle() -> Path:
    """MediaPipe's Face Landmarker bundle beside the GRID samples (../shared/models), which LIPAGENT_FACE_LANDMARKER
    points every test at."""
    if not FACE_LANDMARKER_BUNDLE.is_file():
        pytest.skip(f"MediaPipe's face landmarker bundle is missing at {FACE_LANDMARKER_BUNDLE}")
    return FACE_LANDMARKER_BUNDLE


@pytest.fixture(scope="session")
def s31_unpacked(grid_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ten real clips of a second speaker (../shared/grid-s31, beside the s1 samples) and their alignments."""
    folder = grid_dir.parent / "grid-s31"
    if not (folder / "s31.zip").is_file():
        pytest.skip(f"the s31 samples are missing at {folder}")
    root = tmp_path_factory.mktemp("s31-unpacked")
    for name in ("s31.zip", "alignments.zip"):
        with zipfile.ZipFile(folder / name) as archive:
            archive.extractall(root)
    return root


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

    def build(root: Path) -> None:
        options = PrepareOptions(
            speakers=("s1", "s2"), out=root / "grid-mosaics", grid_dir=grid_dir, cache_dir=root / "cache", num_proc=2
        )
        (root / "summary.pickle").write_bytes(pickle.dumps(prepare(options)))

    root = built_once("prepared", tmp_path_factory, build)
    return root / "grid-mosaics", pickle.loads((root / "summary.pickle").read_bytes())


@pytest.fixture(scope="session")
def few_prepared(grid_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 12 s1 clips prepared with one worker: real mosaics in seconds, for tests that need a few."""
    from lipagent.data.prepare import PrepareOptions, prepare

    def build(root: Path) -> None:
        out, cache = root / "grid-mosaics", root / "cache"
        prepare(PrepareOptions(speakers=("s1",), out=out, grid_dir=grid_dir, limit=12, cache_dir=cache, num_proc=1))

    return built_once("few-prepared", tmp_path_factory, build) / "grid-mosaics"


@pytest.fixture(scope="session")
def baseline_dir(prepared, tmp_path_factory) -> Path:
    """`lipagent baseline train` on the real mosaics, as a user runs it (few epochs and clips, to stay quick)."""
    from lipagent.cli import main as lipagent_main

    out, _ = prepared

    def build(root: Path) -> None:
        argv = ["baseline", "train", str(out), "--out", str(root / "baseline"), "--epochs", "2", "--max-samples", "32"]
        assert lipagent_main(argv) == 0

    return built_once("baseline", tmp_path_factory, build) / "baseline"


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
