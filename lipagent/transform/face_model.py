"""The model bundle of MediaPipe's Face Landmarker (its Tasks API), which no MediaPipe wheel ships since 0.10.30:
fetched once from MediaPipe's model storage, checked against the hash LipAgent was measured with, and cached.

`LIPAGENT_FACE_LANDMARKER` names a local copy instead (machines without that storage, tests); it is checked the same
way, so a different model can never make mosaics silently.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from pathlib import Path

from lipagent.config import cache_root
from lipagent.outputs import write_file

FACE_LANDMARKER_URL = (
    "https://storage.googleapis.com/mediapipe-models/face_landmarker/face_landmarker/float16/1/face_landmarker.task"
)
FACE_LANDMARKER_SHA256 = "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff"
"""Face Landmarker float16, version 1: a zip of face_detector.tflite, face_landmarks_detector.tflite (478 points)
and face_blendshapes.tflite."""
MODEL_ENV = "LIPAGENT_FACE_LANDMARKER"
FACE_DETECTOR_MEMBER = "face_detector.tflite"


def face_landmarker_model(url: str = FACE_LANDMARKER_URL) -> Path:
    """The checked bundle: `LIPAGENT_FACE_LANDMARKER`'s file, or the cached download (fetched on first use)."""
    import pooch
    import requests

    local = os.environ.get(MODEL_ENV)
    if local:
        path = Path(local)
        if not path.is_file():
            raise ValueError(f"{MODEL_ENV}={local}: no such file")
        if (found := pooch.file_hash(str(path), alg="sha256")) != FACE_LANDMARKER_SHA256:
            raise ValueError(
                f"{MODEL_ENV}={local} is not the Face Landmarker bundle LipAgent's mosaics are made with "
                f"(sha256 {found[:12]}..., expected {FACE_LANDMARKER_SHA256[:12]}...; it is at {FACE_LANDMARKER_URL})"
            )
        return path
    folder = cache_root() / "models"
    try:
        return Path(
            pooch.retrieve(
                url,
                known_hash=f"sha256:{FACE_LANDMARKER_SHA256}",
                fname=f"face_landmarker-{FACE_LANDMARKER_SHA256[:12]}.task",
                path=folder,
                progressbar=True,
            )
        )
    except requests.RequestException as error:
        raise ValueError(
            f"could not download MediaPipe's face landmarker model from {url} ({type(error).__name__}); "
            f"on a machine without access, put a copy anywhere and set {MODEL_ENV} to its path"
        ) from None
    except ValueError as error:  # pooch's hash mismatch: the download is not the file this hash names
        raise ValueError(f"the face landmarker model downloaded from {url} failed its hash check: {error}") from None


def face_detector_model(bundle: Path) -> Path:
    """The bundle's face detector as its own file (the Tasks FaceDetector reads a .tflite), unpacked once per bundle
    hash into the cache, or into the temporary folder where the cache cannot be written."""
    name = f"face_detector-{FACE_LANDMARKER_SHA256[:12]}.tflite"
    for folder in (cache_root() / "models", Path(tempfile.gettempdir()) / "lipagent"):
        target = folder / name
        if target.is_file():
            return target
        try:
            with zipfile.ZipFile(bundle) as archive:
                return write_file(target, archive.read(FACE_DETECTOR_MEMBER))
        except OSError:
            continue
    raise OSError(f"could not write the face detector unpacked from {bundle} into {cache_root()} or the temp folder")
