"""Write a tiny random Gemma 3n (model + processor) to a folder, for tests and CPU smoke runs of training.

It loads offline with `AutoProcessor`/`AutoModelForImageTextToText.from_pretrained(folder)` once its vision encoder is
known to timm (`lipagent.model.loading.register_tiny_encoder`, which the training and reading code call themselves).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from lipagent.testing.tiny_gemma3n import save_tiny_model


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="folder to write (created if missing)")
    parser.add_argument("--seed", type=int, default=0, help="weight seed; the same seed writes the same files")
    parser.add_argument(
        "--llama-cpp-shape",
        action="store_true",
        help="text-model widths llama.cpp can run, so the model and its adapters also export with `export --gguf`",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    out = save_tiny_model(args.out, seed=args.seed, llama_cpp_shape=args.llama_cpp_shape)
    print(f"tiny Gemma 3n written to {out}")


if __name__ == "__main__":
    main()
