"""The model bundles MediaPipe's Tasks API runs, which no MediaPipe wheel ships since 0.10.30.

- The Face Landmarker's official bundle: fetched once from MediaPipe's model storage, checked against the hash
  LipAgent was measured with, and cached. `LIPAGENT_FACE_LANDMARKER` names a local copy instead (machines without
  that storage, tests); it is checked the same way, so a different model can never make mosaics silently.
- A bundle of the legacy Face Mesh models (the 468-point landmark model and the short-range face detector that
  mediapipe 0.10.21 ships inside its wheel), built here: the models are taken from a copy of that wheel
  (`LIPAGENT_FACE_MESH_WHEEL`) or from the wheel downloaded once from PyPI, checked by hash, and the landmark
  model's output is extended to the 478 points the Tasks graph reads (`extend_landmarks`).

Downloads and what is built from them live in the cache's `models/` folder, or in the temporary folder where the
cache cannot be written.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

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
    return _download(
        url,
        FACE_LANDMARKER_SHA256,
        f"face_landmarker-{FACE_LANDMARKER_SHA256[:12]}.task",
        "MediaPipe's face landmarker model",
        MODEL_ENV,
    )


def face_detector_model(bundle: Path) -> Path:
    """The bundle's face detector as its own file (the Tasks FaceDetector reads a .tflite), unpacked once per bundle
    hash."""
    import pooch

    def unpack() -> bytes:
        with zipfile.ZipFile(bundle) as archive:
            return archive.read(FACE_DETECTOR_MEMBER)

    name = f"face_detector-{pooch.file_hash(str(bundle), alg='sha256')[:12]}.tflite"
    return _cached(name, unpack, f"the face detector unpacked from {bundle}")


def _cached(name: str, make: Callable[[], bytes], what: str) -> Path:
    """The file `name` in the models cache, made by `make` the first time (in the temporary folder where the cache
    cannot be written)."""
    folders = (cache_root() / "models", Path(tempfile.gettempdir()) / "lipagent")
    for folder in folders:
        if (folder / name).is_file():
            return folder / name
    data = make()
    for folder in folders:
        try:
            return write_file(folder / name, data)
        except OSError:
            continue
    raise OSError(f"could not write {what} into {cache_root()} or the temp folder")


def _download(url: str, sha256: str, name: str, what: str, env: str) -> Path:
    """`url` fetched once into the models cache, checked against `sha256`; each failure one line, naming `env`, the
    way to a local copy."""
    import pooch
    import requests

    try:
        return Path(
            pooch.retrieve(
                url, known_hash=f"sha256:{sha256}", fname=name, path=cache_root() / "models", progressbar=True
            )
        )
    except requests.RequestException as error:
        raise ValueError(
            f"could not download {what} from {url} ({type(error).__name__}); on a machine without access, put a copy "
            f"anywhere and set {env} to its path"
        ) from None
    except ValueError as error:  # pooch's hash mismatch: the download is not the file this hash names
        raise ValueError(f"{what} downloaded from {url} failed its hash check: {error}") from None


LEGACY_WHEEL_URL = (
    "https://files.pythonhosted.org/packages/ad/83/56f760fecdc60de84c529d6c05c9dfc7d972617c6632bd254d5e021e5b16/"
    "mediapipe-0.10.21-cp311-cp311-manylinux_2_28_x86_64.whl"
)
LEGACY_WHEEL_SHA256 = "05dc4a9e593655a79558d05d6227d31018c2537a4bd3362b51e230cf22aecfe3"
"""One wheel of mediapipe 0.10.21 (every platform's wheel holds the same models; this one is only downloaded)."""
LEGACY_WHEEL_ENV = "LIPAGENT_FACE_MESH_WHEEL"
LEGACY_LANDMARKS = "mediapipe/modules/face_landmark/face_landmark.tflite"
LEGACY_DETECTOR = "mediapipe/modules/face_detection/face_detection_short_range.tflite"
LEGACY_MODELS_SHA256 = {
    LEGACY_LANDMARKS: "1055cb9d4a9ca8b8c688902a3a5194311138ba256bcc94e336d8373a5f30c814",
    LEGACY_DETECTOR: "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8",
}
"""The legacy Face Mesh's 468-point landmark model and its short-range face detector, as mediapipe 0.10.21 ships
them (`mp.solutions.face_mesh` with refine_landmarks=False runs exactly these)."""
TASKS_LANDMARKS = 478
"""Landmarks the Tasks graph reads from the landmark model's first output (468 face points, then 10 iris points)."""
LANDMARKS_MEMBER = "face_landmarks_detector.tflite"


def extend_landmarks(model: bytes) -> bytes:
    """The legacy 468-point landmark model with its first output extended to the 478 points the Tasks graph reads.

    Zipped as it is, the Tasks graph runs it without error and misplaces every landmark (it reads 478 x 3 values
    from a 468 x 3 output); padding the output with zeros loses the face in VIDEO mode (the ten extra points feed
    the tracking box). So the ten extra points repeat landmarks 0-9, appended by a SLICE and a CONCATENATION on the
    output; the 468 points LipAgent uses are the model's own, unchanged."""
    import flatbuffers
    from mediapipe.tasks.metadata import schema_py_generated as tfl

    graph = tfl.ModelT.InitFromPackedBuf(model, 0)
    subgraph = graph.subgraphs[0]
    output = subgraph.tensors[subgraph.outputs[0]]
    values = int(output.shape[-1])
    if values != 468 * 3:
        raise ValueError(f"not the 468-point Face Mesh landmark model: its first output has {values} values")
    extra = (TASKS_LANDMARKS - 468) * 3

    def add_tensor(shape: list[int], kind: int, name: bytes, data: bytes | None = None) -> int:
        buffer = tfl.BufferT()
        buffer.data = data
        graph.buffers.append(buffer)
        tensor = tfl.TensorT()
        tensor.shape, tensor.type, tensor.name, tensor.buffer = (
            np.array(shape, np.int32),
            kind,
            name,
            len(graph.buffers) - 1,
        )
        subgraph.tensors.append(tensor)
        return len(subgraph.tensors) - 1

    def add_operator(code: int, inputs: list[int], outputs: list[int], options_type: int, options: object) -> None:
        known = [max(c.builtinCode, c.deprecatedBuiltinCode) for c in graph.operatorCodes]
        if code not in known:
            opcode = tfl.OperatorCodeT()
            opcode.builtinCode, opcode.deprecatedBuiltinCode, opcode.version = code, code, 1
            graph.operatorCodes.append(opcode)
            known.append(code)
        operator = tfl.OperatorT()
        operator.opcodeIndex, operator.inputs, operator.outputs = known.index(code), inputs, outputs
        operator.builtinOptionsType, operator.builtinOptions = options_type, options
        subgraph.operators.append(operator)

    int32 = tfl.TensorType.INT32
    begin = add_tensor([4], int32, b"extra_begin", np.zeros(4, np.int32).tobytes())
    size = add_tensor([4], int32, b"extra_size", np.array([1, 1, 1, extra], np.int32).tobytes())
    repeated = add_tensor([1, 1, 1, extra], output.type, b"extra_landmarks")
    full = add_tensor([1, 1, 1, TASKS_LANDMARKS * 3], output.type, b"landmarks_478")
    first = int(subgraph.outputs[0])
    add_operator(
        tfl.BuiltinOperator.SLICE,
        [first, begin, size],
        [repeated],
        tfl.BuiltinOptions.SliceOptions,
        tfl.SliceOptionsT(),
    )
    concatenation = tfl.ConcatenationOptionsT()
    concatenation.axis = 3
    add_operator(
        tfl.BuiltinOperator.CONCATENATION,
        [first, repeated],
        [full],
        tfl.BuiltinOptions.ConcatenationOptions,
        concatenation,
    )
    subgraph.outputs = [full, *list(subgraph.outputs[1:])]
    builder = flatbuffers.Builder(len(model) + 4096)
    builder.Finish(graph.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def face_mesh_bundle(landmarks: bytes, detector: bytes) -> bytes:
    """A Tasks API bundle (an uncompressed zip, as the Tasks API maps it) of the legacy models."""
    import io

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
        for name, data in ((FACE_DETECTOR_MEMBER, detector), (LANDMARKS_MEMBER, extend_landmarks(landmarks))):
            archive.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data)
    return out.getvalue()


def _models_in_wheel(wheel: Path) -> dict[str, bytes]:
    """The two legacy models out of a mediapipe 0.10.21 wheel, each checked against its hash."""
    import hashlib

    try:
        with zipfile.ZipFile(wheel) as archive:
            models = {name: archive.read(name) for name in LEGACY_MODELS_SHA256}
    except (zipfile.BadZipFile, KeyError):
        raise ValueError(f"{wheel} is not a mediapipe 0.10.21 wheel (its Face Mesh models are missing)") from None
    for name, expected in LEGACY_MODELS_SHA256.items():
        if hashlib.sha256(models[name]).hexdigest() != expected:
            raise ValueError(f"{wheel}: {name} is not the legacy Face Mesh model LipAgent's mosaics are made with")
    return models


def legacy_models(url: str = LEGACY_WHEEL_URL, wheel_sha256: str = LEGACY_WHEEL_SHA256) -> dict[str, bytes]:
    """The two legacy models, hash-checked, from the wheel `LIPAGENT_FACE_MESH_WHEEL` names, else from the wheel
    downloaded once into the cache."""
    local = os.environ.get(LEGACY_WHEEL_ENV)
    if local:
        if not Path(local).is_file():
            raise ValueError(f"{LEGACY_WHEEL_ENV}={local}: no such file")
        return _models_in_wheel(Path(local))
    what = "the mediapipe 0.10.21 wheel that holds the Face Mesh models"
    return _models_in_wheel(_download(url, wheel_sha256, url.rsplit("/", 1)[-1], what, LEGACY_WHEEL_ENV))


def face_mesh_model(url: str = LEGACY_WHEEL_URL, wheel_sha256: str = LEGACY_WHEEL_SHA256) -> Path:
    """The legacy Face Mesh bundle for the Tasks API, built once from the checked legacy models and cached."""

    def build() -> bytes:
        models = legacy_models(url, wheel_sha256)
        return face_mesh_bundle(models[LEGACY_LANDMARKS], models[LEGACY_DETECTOR])

    name = f"face_mesh-{LEGACY_MODELS_SHA256[LEGACY_LANDMARKS][:12]}.task"
    return _cached(name, build, "the Face Mesh bundle")


def landmarker_bundle(landmarker: str) -> Path:
    """The checked bundle a Tasks API landmarker (`MosaicConfig.landmarker`) runs."""
    return face_mesh_model() if landmarker == "face_mesh_tasks" else face_landmarker_model()
