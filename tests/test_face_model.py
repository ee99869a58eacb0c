"""The Face Landmarker's model bundle: fetched once over HTTP (a loopback server here), hash-checked, cached; a local
copy named by LIPAGENT_FACE_LANDMARKER is checked the same way; each failure is one line."""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import mediapipe as mp
import numpy as np
import pytest

from lipagent.config import DEFAULT_CONFIG
from lipagent.transform.face_model import (
    FACE_LANDMARKER_SHA256,
    LEGACY_DETECTOR,
    LEGACY_LANDMARKS,
    LEGACY_WHEEL_ENV,
    MODEL_ENV,
    extend_landmarks,
    face_detector_model,
    face_landmarker_model,
    face_mesh_bundle,
    face_mesh_model,
    legacy_models,
)
from lipagent.transform.mouth import LIP_LANDMARKS
from lipagent.transform.pipeline import decode_all

LEGACY_STATIC_REFERENCE = Path(__file__).parent / "data" / "face_mesh_static_lips.json"
"""The legacy Face Mesh solution's own lip landmarks (static mode, mediapipe 0.10.21) on frame 30 of s1/bbaf2n."""


@pytest.fixture
def bundle(face_landmarker_bundle: Path) -> bytes:
    return face_landmarker_bundle.read_bytes()


class Served:
    """What a loopback HTTP server hands out, and how often it was asked."""

    def __init__(self) -> None:
        self.body = b""
        self.requests = 0


@pytest.fixture
def server() -> Iterator[tuple[str, Served]]:
    served = Served()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            served.requests += 1
            self.send_response(200)
            self.send_header("Content-Length", str(len(served.body)))
            self.end_headers()
            self.wfile.write(served.body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}/face_landmarker.task", served
    httpd.shutdown()


@pytest.fixture
def no_local_copy(monkeypatch, tmp_path) -> Path:
    monkeypatch.delenv(MODEL_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    return tmp_path / "lipagent" / "models"


def test_the_bundle_is_downloaded_once_checked_and_cached(bundle, server, no_local_copy):
    url, served = server
    served.body = bundle
    first = face_landmarker_model(url)
    assert first.parent == no_local_copy and first.read_bytes() == bundle and served.requests == 1
    assert face_landmarker_model(url) == first and served.requests == 1, "the cached copy is used"
    detector = face_detector_model(first)
    assert detector.read_bytes()[4:8] == b"TFL3", "the bundle's face detector, a TFLite model"


def test_a_download_that_is_not_the_bundle_is_refused_and_not_kept(bundle, server, no_local_copy):
    url, served = server
    served.body = bundle[:-1000]
    with pytest.raises(
        ValueError, match=r"^MediaPipe's face landmarker model downloaded from .* failed its hash check"
    ):
        face_landmarker_model(url)
    assert not list(no_local_copy.glob("*.task")), "nothing unchecked is cached"


def test_an_unreachable_model_storage_is_one_line_naming_the_way_out(no_local_copy):
    with pytest.raises(ValueError) as refused:
        face_landmarker_model("http://127.0.0.1:9/face_landmarker.task")
    message = str(refused.value)
    assert message.startswith("could not download MediaPipe's face landmarker model from http://127.0.0.1:9/")
    assert f"set {MODEL_ENV} to its path" in message and "\n" not in message


def test_a_local_copy_is_checked_like_a_download(face_landmarker_bundle, bundle, monkeypatch, tmp_path):
    monkeypatch.setenv(MODEL_ENV, str(face_landmarker_bundle))
    assert face_landmarker_model() == face_landmarker_bundle
    other = tmp_path / "other.task"
    other.write_bytes(bundle[:-1])
    monkeypatch.setenv(MODEL_ENV, str(other))
    with pytest.raises(
        ValueError, match=rf"is not the Face Landmarker bundle .* expected {FACE_LANDMARKER_SHA256[:12]}"
    ):
        face_landmarker_model()
    monkeypatch.setenv(MODEL_ENV, str(tmp_path / "gone.task"))
    with pytest.raises(ValueError, match=r"gone.task: no such file$"):
        face_landmarker_model()


def test_mosaics_made_with_the_legacy_face_mesh_solution_are_one_error_that_says_how_to_rebuild():
    """A dataset or model records its landmarker; LipAgent no longer runs the legacy solution, so reading with it is
    one error that says how to go on, not another runtime's landmarks."""
    from lipagent.transform.mouth import LipLandmarker

    with pytest.raises(ValueError) as refused:
        LipLandmarker(replace(DEFAULT_CONFIG, landmarker="face_mesh"))
    message = str(refused.value)
    assert "landmarker=face_mesh" in message and "rebuild the dataset (and retrain)" in message
    assert "face_mesh_tasks" in message and "\n" not in message


def test_the_face_detector_is_unpacked_where_it_can_be_written(face_landmarker_bundle, monkeypatch, tmp_path):
    locked = tmp_path / "locked"
    locked.write_text("a file where the cache folder would go")
    monkeypatch.setenv("XDG_CACHE_HOME", str(locked))
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "tmp"))
    detector = face_detector_model(face_landmarker_bundle)
    assert detector.parent == tmp_path / "tmp" / "lipagent" and detector.read_bytes()[4:8] == b"TFL3"


@pytest.fixture(scope="module")
def real_frames(unpacked: Path) -> list[np.ndarray]:
    return decode_all(unpacked / "s1" / "bbaf2n.mpg")


@pytest.fixture(scope="session")
def legacy() -> dict[str, bytes]:
    """The legacy Face Mesh models from wherever this machine has them (a wheel named by LIPAGENT_FACE_MESH_WHEEL, or
    the wheel cached from PyPI)."""
    return legacy_models()


def wheel_holding(models: dict[str, bytes], path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in models.items():
            archive.writestr(name, data)
    return path


def test_the_landmark_model_is_extended_to_the_478_points_the_tasks_graph_reads(legacy):
    from mediapipe.tasks.metadata import schema_py_generated as tfl

    extended = tfl.ModelT.InitFromPackedBuf(extend_landmarks(legacy[LEGACY_LANDMARKS]), 0).subgraphs[0]
    original = tfl.ModelT.InitFromPackedBuf(legacy[LEGACY_LANDMARKS], 0).subgraphs[0]
    assert list(extended.tensors[extended.outputs[0]].shape) == [1, 1, 1, 478 * 3]
    assert len(extended.outputs) == len(original.outputs) == 2, "the face-presence output stays second"
    assert extended.tensors[extended.outputs[1]].name == original.tensors[original.outputs[1]].name
    with pytest.raises(ValueError, match="not the 468-point Face Mesh landmark model: its first output has 1434"):
        extend_landmarks(extend_landmarks(legacy[LEGACY_LANDMARKS]))


def test_the_face_mesh_bundle_reproduces_the_legacy_models_landmarks_on_a_real_frame(legacy, real_frames, tmp_path):
    """Static mode runs the same model on the same face crop: the bundle's 468 points must be the legacy solution's
    own (a plainly zipped model misplaces them by tens of pixels without an error)."""
    bundle = tmp_path / "face_mesh.task"
    bundle.write_bytes(face_mesh_bundle(legacy[LEGACY_LANDMARKS], legacy[LEGACY_DETECTOR]))
    vision = mp.tasks.vision
    options = vision.FaceLandmarkerOptions(
        base_options=mp.tasks.BaseOptions(model_asset_path=str(bundle)), running_mode=vision.RunningMode.IMAGE
    )
    with vision.FaceLandmarker.create_from_options(options) as landmarker:
        rgb = np.ascontiguousarray(real_frames[30][:, :, ::-1])
        found = landmarker.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb)).face_landmarks[0]
    height, width = rgb.shape[:2]
    points = np.array([(p.x * width, p.y * height) for p in found])
    assert points.shape == (478, 2)
    assert np.abs(points[468:] - points[:10]).max() < 1e-3, "the ten extra points repeat landmarks 0-9"
    reference = json.loads(LEGACY_STATIC_REFERENCE.read_text())
    np.testing.assert_allclose(points[list(LIP_LANDMARKS)], np.array(reference["lips"]), rtol=0, atol=0.05)


def test_the_bundle_is_built_once_from_a_local_wheel_and_cached(legacy, monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv(LEGACY_WHEEL_ENV, str(wheel_holding(legacy, tmp_path / "mediapipe.whl")))
    first = face_mesh_model()
    assert first.parent == tmp_path / "cache" / "lipagent" / "models"
    assert first.read_bytes() == face_mesh_bundle(legacy[LEGACY_LANDMARKS], legacy[LEGACY_DETECTOR])
    monkeypatch.setenv(LEGACY_WHEEL_ENV, str(tmp_path / "gone.whl"))
    assert face_mesh_model() == first, "the cached bundle is used"


def test_a_wheel_without_the_legacy_models_is_refused(legacy, monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    changed = {**legacy, LEGACY_DETECTOR: legacy[LEGACY_DETECTOR][:-1]}
    monkeypatch.setenv(LEGACY_WHEEL_ENV, str(wheel_holding(changed, tmp_path / "other.whl")))
    with pytest.raises(ValueError, match=r"other.whl: .*face_detection_short_range.tflite is not the legacy Face Mesh"):
        face_mesh_model()
    monkeypatch.setenv(LEGACY_WHEEL_ENV, str(wheel_holding({}, tmp_path / "empty.whl")))
    with pytest.raises(ValueError, match=r"empty.whl is not a mediapipe 0.10.21 wheel"):
        face_mesh_model()
    monkeypatch.setenv(LEGACY_WHEEL_ENV, str(tmp_path / "gone.whl"))
    with pytest.raises(ValueError, match=r"gone.whl: no such file$"):
        face_mesh_model()
    assert not list((tmp_path / "cache").rglob("*.task")), "nothing unchecked is cached"


def test_the_wheel_is_downloaded_once_checked_and_cached(legacy, server, monkeypatch, tmp_path):
    monkeypatch.delenv(LEGACY_WHEEL_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    url, served = server
    served.body = wheel_holding(legacy, tmp_path / "served.whl").read_bytes()
    digest = hashlib.sha256(served.body).hexdigest()
    with pytest.raises(
        ValueError,
        match=r"^the mediapipe 0.10.21 wheel that holds the Face Mesh models downloaded from .* failed its hash check",
    ):
        face_mesh_model(url, "0" * 64)
    assert face_mesh_model(url, digest).is_file() and served.requests == 2
    assert face_mesh_model(url, digest) and served.requests == 2, "the cached bundle is used"
    with pytest.raises(ValueError) as refused:
        legacy_models("http://127.0.0.1:9/mediapipe.whl", digest)
    message = str(refused.value)
    assert message.startswith("could not download the mediapipe 0.10.21 wheel") and "\n" not in message
    assert f"set {LEGACY_WHEEL_ENV} to its path" in message
