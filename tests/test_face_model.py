"""The Face Landmarker's model bundle: fetched once over HTTP (a loopback server here), hash-checked, cached; a local
copy named by LIPAGENT_FACE_LANDMARKER is checked the same way; each failure is one line."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import mediapipe as mp
import pytest

from lipagent.config import DEFAULT_CONFIG
from lipagent.transform.face_model import (
    FACE_LANDMARKER_SHA256,
    MODEL_ENV,
    face_detector_model,
    face_landmarker_model,
)


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
    with pytest.raises(ValueError, match=r"^the face landmarker model downloaded from .* failed its hash check"):
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


def test_mosaics_made_with_face_mesh_need_a_mediapipe_that_has_it(monkeypatch):
    """A dataset or model records its landmarker; where MediaPipe no longer has the legacy Face Mesh, reading with it
    is one error that says how to go on, not a different model's landmarks."""
    from lipagent.transform.mouth import LipLandmarker

    monkeypatch.delattr(mp, "solutions", raising=False)
    with pytest.raises(ValueError, match=r"install mediapipe==0.10.21 .* or rebuild the dataset .* --landmarker"):
        LipLandmarker(DEFAULT_CONFIG)


def test_the_face_detector_is_unpacked_where_it_can_be_written(face_landmarker_bundle, monkeypatch, tmp_path):
    locked = tmp_path / "locked"
    locked.write_text("a file where the cache folder would go")
    monkeypatch.setenv("XDG_CACHE_HOME", str(locked))
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "tmp"))
    detector = face_detector_model(face_landmarker_bundle)
    assert detector.parent == tmp_path / "tmp" / "lipagent" and detector.read_bytes()[4:8] == b"TFL3"
