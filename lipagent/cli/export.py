"""`lipagent export`: an adapter merged into its base model, or written as llama.cpp GGUF files."""

from __future__ import annotations

import argparse
from pathlib import Path

from lipagent.cli.options import HelpFormatter

INTERRUPTED = "--merged/--gguf was not touched"


def register(commands: argparse._SubParsersAction) -> None:
    from lipagent.gguf.llama import QUANT_CHOICES

    parser = commands.add_parser(
        "export",
        help="merge an adapter into its base model, or write it as llama.cpp GGUF files",
        description="Merge a LoRA adapter into its base model and save model and processor (for runtimes that "
        "cannot load PEFT adapters): `lipagent export ADAPTER --merged OUT`. Or write it for llama.cpp, to read lips "
        "on a laptop in 4 bits: `lipagent export ADAPTER --gguf OUT`: the text model (quantized, --quant), the "
        "vision projector (mmproj, f16), the GRID grammar (GBNF) and the mosaic settings and prompt the adapter was "
        "trained with; `lipagent transcribe --gguf OUT` reads it. GGUF needs the gguf extra (pip install -e "
        '".[gguf]") and fetches llama.cpp\'s converter of the installed version once.',
        formatter_class=HelpFormatter,
    )
    parser.add_argument("adapter", help="adapter folder or Hub id")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--merged", type=Path, help="folder for the merged model and processor")
    where.add_argument("--gguf", type=Path, help="folder for the GGUF files")
    parser.add_argument(
        "--quant",
        choices=QUANT_CHOICES,
        default="Q4_K_M",
        help="GGUF text-model type: Q4_K_M (laptop default), other llama.cpp quantizations, or f16/f32 "
        "(unquantized, for exact comparisons)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier GGUF export in --gguf")
    parser.add_argument("--base-model", help="default: the one adapter_config.json names")
    parser.add_argument(
        "--dtype",
        choices=("float32", "bfloat16", "float16"),
        default="bfloat16",
        help="merged model only (GGUF merges in bfloat16, float32 for --quant f32)",
    )
    parser.set_defaults(run=run)


def reads_a_mosaic(folder: Path) -> None:
    """llama.cpp loads the export and reads one mosaic of the recorded size with it."""
    import numpy as np
    from PIL import Image

    from lipagent.readers.gguf import GGUFReader

    reader = GGUFReader(folder)
    # Noise, not a flat grey: a flat picture through filters that sum to zero (the tiny models') leaves all-zero
    # activations, which llama.cpp's vision tower normalises to NaN where PyTorch's gives zeros.
    pixels = np.random.default_rng(0).integers(0, 256, (reader.config.height, reader.config.width, 3), dtype=np.uint8)
    try:
        reader.transcribe_mosaic(Image.fromarray(pixels))
    finally:
        reader.close()


def run(args: argparse.Namespace) -> int:
    if args.gguf is not None:
        from lipagent.gguf.export import export_gguf

        out = export_gguf(args.adapter, args.gguf, args.quant, args.base_model, args.overwrite, check=reads_a_mosaic)
        print(f"wrote {out}")
        return 0
    from lipagent.model.loading import export_merged

    print(f"wrote {export_merged(args.adapter, args.merged, args.base_model, args.dtype)}")
    return 0
