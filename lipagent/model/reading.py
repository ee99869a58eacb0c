"""The one door to every lip reader: a video, camera frames or a mosaic in, GRID text out.

Two readers stand behind it: `lipagent.model.reader.LipReader` (Gemma 3n + a LoRA adapter) and
`lipagent.model.baseline.BaselineReader` (the small CNN that is the project's accuracy yardstick). Both build their
mosaics here, with the `MosaicConfig` their model was trained on, through the code the dataset builder uses,
so a clip is always seen as training saw it. `load_reader` tells the two kinds of folder apart. MediaPipe and
the models are imported only when used, so command lines build their help instantly.
"""

from __future__ import annotations

import io
import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from lipagent.config import DEFAULT_CONFIG, LEGACY_SETTINGS, MosaicConfig
from lipagent.transform.speech import Speech

logger = logging.getLogger(__name__)

BASELINE_MODEL_TYPE = "lipagent-slot-cnn"
"""`model_type` in a baseline folder's config.json."""

READING_RECORD = "lipagent.json"
"""Written beside an adapter by training: the mosaic settings and prompt it was trained with."""


class ReaderError(ValueError):
    """A request this machine, model or input cannot serve, said in words a user can act on."""


def hub_id_shaped(name: str | Path) -> bool:
    """Whether a name not found on disk can be an owner/name Hub id (not a path: one slash, no leading / . ~)."""
    return not str(name).startswith(("/", ".", "~")) and str(name).count("/") == 1


def adapter_record(adapter: Path) -> dict | None:
    """The adapter's lipagent.json (None when the adapter predates the record)."""
    record = Path(adapter) / READING_RECORD
    return json.loads(record.read_text()) if record.is_file() else None


def adapter_mosaic_config(adapter: Path) -> MosaicConfig:
    """The mosaic settings an adapter was trained on, from the `lipagent.json` training wrote beside it.

    An adapter without one predates the record, and every such adapter was trained on LipAgent 0.1 mosaics,
    so it gets those settings (with a warning), never today's defaults."""
    record = adapter_record(adapter)
    if record is not None:
        return MosaicConfig.from_dict(record.get("mosaic", {}))
    logger.warning(
        "%s has no %s: using the LipAgent 0.1 mosaic settings it must have been trained on (%s)",
        adapter,
        READING_RECORD,
        ", ".join(f"{k}={v}" for k, v in LEGACY_SETTINGS.items()),
    )
    return MosaicConfig.from_dict({})


def mosaic_image(mosaic: Image.Image | bytes) -> Image.Image:
    """A mosaic as the RGB image a model receives (JPEG bytes decoded like datasets does)."""
    image = Image.open(io.BytesIO(mosaic)) if isinstance(mosaic, (bytes, bytearray)) else mosaic
    return image.convert("RGB")


class Reader(ABC):
    """Reads lips from mosaics; videos and frames become mosaics exactly as the model's training data did."""

    config: MosaicConfig = DEFAULT_CONFIG
    description: str = ""
    """One line on what runs where (printed on stderr by the commands)."""

    @abstractmethod
    def transcribe_mosaics(self, mosaics: Sequence[Image.Image | bytes]) -> list[str]:
        """Transcriptions of a batch of mosaics (400x240 images or their JPEG bytes)."""

    def mosaic_for_video(self, path: str | Path, speech: Speech | None = None) -> bytes:
        """The mosaic this model would have been trained on for the clip. `speech`: the spoken frames (start, end),
        or 'auto' (default: found from the mouth's movement) or 'whole'."""
        from lipagent.transform.pipeline import prepare_video

        return prepare_video(path, speech or "auto", self.config).mosaic.jpeg

    def mosaic_for_frames(self, frames: Sequence[np.ndarray], speech: Speech | None = None) -> bytes:
        """The mosaic of a clip given as BGR frames (a camera's), sampled like a file's."""
        from lipagent.transform.pipeline import prepare_frames

        if len(frames) < self.config.num_frames:
            raise ReaderError(f"{len(frames)} frames given; a mosaic needs at least {self.config.num_frames}")
        return prepare_frames(frames, speech or "auto", self.config).mosaic.jpeg

    def transcribe_mosaic(self, mosaic: Image.Image | bytes) -> str:
        return self.transcribe_mosaics([mosaic])[0]

    def transcribe_video(self, path: str | Path, speech: Speech | None = None) -> str:
        return self.transcribe_mosaic(self.mosaic_for_video(path, speech))

    def transcribe_frames(self, frames: Sequence[np.ndarray], speech: Speech | None = None) -> str:
        return self.transcribe_mosaic(self.mosaic_for_frames(frames, speech))


def resolve_model(name: str | Path) -> Path:
    """A local folder for a model folder or Hub id (fetched into, or with HF_HUB_OFFLINE=1 found in, the Hub
    cache)."""
    local = Path(name).expanduser()
    if local.is_dir():
        return local
    if local.exists():
        raise ReaderError(f"{name} is a file; pass the model folder (a baseline folder or an adapter folder)")
    if not hub_id_shaped(name):
        raise ReaderError(f"{name}: no such folder (and not an owner/name Hub id)")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        return Path(snapshot_download(str(name)))
    except (HfHubHTTPError, LocalEntryNotFoundError, OSError, ValueError) as error:
        raise ReaderError(
            f"{name}: no such local folder, and the Hub did not give it ({error.__class__.__name__}: "
            f"{str(error).splitlines()[0]}); "
            "with HF_HUB_OFFLINE=1 it must already be in the cache"
        ) from None


def model_kind(folder: Path) -> str:
    """'baseline', 'adapter' or 'gguf', from the files a folder holds."""
    from lipagent.gguf.gguf_export import is_gguf_export

    if is_gguf_export(folder):
        return "gguf"
    config = folder / "config.json"
    if config.is_file():
        try:
            if json.loads(config.read_text()).get("model_type") == BASELINE_MODEL_TYPE:
                return "baseline"
        except json.JSONDecodeError:
            pass
    if (folder / "adapter_config.json").is_file():
        return "adapter"
    raise ReaderError(
        f"{folder} is neither a baseline lip reader (config.json of a `lipagent baseline train` "
        "run) nor a LoRA adapter (adapter_config.json) nor a `lipagent export --gguf` folder"
    )


def recorded_config(model: str | Path) -> MosaicConfig:
    """The mosaic settings a model folder (or Hub id) was trained with, read without loading its weights, so
    an input can be checked (and its mosaic built) before the expensive part."""
    folder = resolve_model(model)
    kind = model_kind(folder)
    if kind == "baseline":
        return MosaicConfig.from_dict(json.loads((folder / "config.json").read_text())["mosaic"])
    if kind == "gguf":
        from lipagent.gguf.gguf_export import gguf_export_record

        return MosaicConfig.from_dict(gguf_export_record(folder)["mosaic"])
    return adapter_mosaic_config(folder)


def load_reader(model: str | Path, **gemma_options: Any) -> Reader:
    """The reader for a baseline folder or an adapter folder (local or a Hub id).

    `gemma_options` (base_model, load_in_4bit, device, dtype, decoding) go to `LipReader.from_pretrained`;
    a baseline ignores them except `device`."""
    folder = resolve_model(model)
    kind = model_kind(folder)
    if kind == "baseline":
        from lipagent.model.baseline import BaselineReader

        return BaselineReader.from_pretrained(folder, device=gemma_options.get("device"))
    if kind == "gguf":
        from lipagent.gguf.gguf_reader import GGUFReader

        return GGUFReader(folder, decoding=gemma_options.get("decoding") or "constrained")
    from lipagent.model.reader import LipReader

    return LipReader.from_pretrained(folder, **gemma_options)


def gguf_folder(value: str) -> Path:
    """argparse type of --gguf: a folder `lipagent export --gguf` wrote (a usage error otherwise)."""
    import argparse

    from lipagent.gguf.gguf_export import is_gguf_export

    if not is_gguf_export(Path(value)):
        raise argparse.ArgumentTypeError(f"{value} is not a folder written by `lipagent export --gguf`")
    return Path(value)


def add_reader_arguments(parser: Any) -> None:
    """The reading flags `lipagent transcribe` and `eval/run_eval.py` share (one definition for both)."""
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--model",
        "--adapter",
        dest="model",
        help="a baseline folder (`lipagent baseline train --out`) or a LoRA adapter folder, "
        "or a Hub id of either (--adapter is the same flag)",
    )
    which.add_argument(
        "--gguf",
        dest="model",
        type=gguf_folder,
        help="a folder written by `lipagent export --gguf`: read with llama.cpp (CPU or Metal) under "
        "the GRID grammar; needs the gguf extra",
    )
    parser.add_argument(
        "--base_model",
        "--base-model",
        dest="base_model",
        help="adapters only: base model (default: the one named in adapter_config.json)",
    )
    parser.add_argument(
        "--load_in_4bit",
        "--load-in-4bit",
        dest="load_in_4bit",
        action="store_true",
        help="adapters only: load the base model in 4-bit NF4 (CUDA only)",
    )
    parser.add_argument(
        "--decoding",
        choices=("constrained", "free"),
        default="constrained",
        help="adapters only: constrained = only valid GRID sentences; free = plain greedy decoding "
        "(a baseline always gives a valid sentence)",
    )
    parser.add_argument("--device", help="cuda, mps or cpu (default: the best available)")
    parser.add_argument(
        "--dtype", choices=("float32", "bfloat16", "float16"), help="adapters only (default: chosen for the device)"
    )


def reader_from_args(args: Any) -> Reader:
    """`load_reader` with the flags of `add_reader_arguments`."""
    return load_reader(
        args.model,
        base_model=args.base_model,
        load_in_4bit=args.load_in_4bit,
        device=args.device,
        dtype=args.dtype,
        decoding=args.decoding,
    )
