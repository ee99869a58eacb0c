"""The one door to every lip reader: `load_reader` knows each kind of model folder (a baseline, a LoRA adapter, a GGUF
export; local or a Hub id) and which reader reads it. The models are imported only when one is loaded, so command
lines build their help instantly."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from lipagent.readers.base import Reader, ReaderError
from lipagent.records import record_kind, resolve

READER_KINDS = ("baseline", "adapter", "gguf")


def model_folder(model: str | Path) -> tuple[Path, str]:
    """The local folder of a model folder or Hub id, and its kind (one of READER_KINDS)."""
    folder = resolve(model)
    kind = record_kind(folder)
    if kind not in READER_KINDS:
        raise ReaderError(
            f"{folder} is neither a baseline lip reader (config.json of a `lipagent baseline train` "
            "run) nor a LoRA adapter (adapter_config.json) nor a `lipagent export --gguf` folder"
        )
    return folder, kind


def load_reader(model: str | Path, **gemma_options: Any) -> Reader:
    """The reader for a baseline folder, an adapter folder or a GGUF export (local or a Hub id).

    `gemma_options` (base_model, load_in_4bit, device, dtype, decoding, cache) go to `LipReader.from_pretrained`;
    a baseline takes only `device`, a GGUF export only `decoding`."""
    folder, kind = model_folder(model)
    if kind == "baseline":
        from lipagent.readers.baseline import BaselineReader

        return BaselineReader.from_pretrained(folder, device=gemma_options.get("device"))
    if kind == "gguf":
        from lipagent.readers.gguf import GGUFReader

        return GGUFReader(folder, decoding=gemma_options.get("decoding") or "constrained")
    from lipagent.readers.gemma import LipReader

    return LipReader.from_pretrained(folder, **gemma_options)


def gguf_folder(value: str) -> Path:
    """argparse type of --gguf: a folder `lipagent export --gguf` wrote (a usage error otherwise)."""
    if record_kind(Path(value)) != "gguf":
        raise argparse.ArgumentTypeError(f"{value} is not a folder written by `lipagent export --gguf`")
    return Path(value)


def add_reader_arguments(parser: argparse.ArgumentParser) -> None:
    """The reading flags `lipagent transcribe`, `lipagent live` and `lipagent eval` share (one definition)."""
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--model",
        help="a baseline folder (`lipagent baseline train --out`), a LoRA adapter folder, or a Hub id of either",
    )
    which.add_argument(
        "--gguf",
        dest="model",
        type=gguf_folder,
        help="a folder written by `lipagent export --gguf`: read with llama.cpp (CPU or Metal) under "
        "the GRID grammar; needs the gguf extra",
    )
    parser.add_argument("--base-model", help="adapters only: base model (default: the one adapter_config.json names)")
    parser.add_argument(
        "--load-in-4bit", action="store_true", help="adapters only: load the base model in 4-bit NF4 (CUDA only)"
    )
    parser.add_argument(
        "--decoding",
        choices=("constrained", "free"),
        default="constrained",
        help="constrained = only valid GRID sentences; free = plain greedy decoding (a baseline always gives a valid "
        "sentence)",
    )
    parser.add_argument("--device", help="cuda, mps or cpu (default: the best available)")
    parser.add_argument(
        "--dtype", choices=("float32", "bfloat16", "float16"), help="adapters only (default: chosen for the device)"
    )
    parser.add_argument(
        "--cache",
        choices=("dynamic", "static"),
        default="dynamic",
        help="adapters only: the KV cache while decoding; static is allocated once, and on a GPU the decoding step "
        "is then compiled (same transcriptions; faster once warm)",
    )


def reader_from_args(args: argparse.Namespace) -> Reader:
    """`load_reader` with the flags of `add_reader_arguments`."""
    return load_reader(
        args.model,
        base_model=args.base_model,
        load_in_4bit=args.load_in_4bit,
        device=args.device,
        dtype=args.dtype,
        decoding=args.decoding,
        cache=args.cache,
    )
