"""GGUF at Gemma 3n E4B's real size: file sizes, llama.cpp's peak memory and seconds reading one mosaic on the CPU.

    python bench/bench_gguf.py --work /big/disk/gguf-bench          # about 50 GB of disk, 20 GB of RAM, 30+ min
    python bench/bench_gguf.py --work DIR --tiny                     # the same steps on the tiny model (a check)

Builds the E4B architecture (transformers' Gemma3nConfig() defaults, 7.8 B parameters) with random weights in
bf16 and the real token layout (bench_train.real_layout_processor, written as a SentencePiece tokenizer.model as the
real checkpoint ships it), puts a random LoRA adapter on it (the recipe's targets and rank), and exports it with
`export_gguf` as users do (--quant f16: merge, llama.cpp's converter, the vision projector). The f16 text model is
then quantized with the same `quantize` to each of --quants. Each folder is read in a fresh process by GGUFReader:
load time, the time to read one mosaic (a real one when ../shared/grid is there), and the process's peak resident
memory (VmHWM; llama.cpp maps the files, so the pages it touches count; Python, torch and lipagent's imports are
under 0.5 GB of it: the tiny model's export reads in 0.47 GB in all). Never part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

READ_ONE = """
import json, sys, time
from lipagent.readers.gguf import GGUFReader
started = time.perf_counter()
reader = GGUFReader(sys.argv[1], threads=int(sys.argv[3]))
loaded = time.perf_counter()
text = reader.transcribe_mosaic(open(sys.argv[2], "rb").read())
read = time.perf_counter()
status = dict(line.split(":", 1) for line in open("/proc/self/status"))
print(json.dumps({"load_s": loaded - started, "read_s": read - loaded, "text": text,
                  "peak_rss_gb": int(status["VmHWM"].split()[0]) * 1024 / 1e9}))
"""
# VmHWM, not ru_maxrss: Linux carries the parent's high-water mark across fork and exec into ru_maxrss.


def build_base(folder: Path, tiny_model: bool) -> None:
    """The random-weight base model with the real token layout, as a Hub download would lay it out."""
    import bench_train
    import torch
    import transformers

    import lipagent.testing.tiny_gemma3n as tiny

    if tiny_model:
        tiny.save_tiny_model(folder, llama_cpp_shape=True)
        return
    torch.manual_seed(0)
    config = bench_train.random_model_config("e4b")
    model = transformers.AutoModelForImageTextToText.from_config(config, dtype=torch.bfloat16)
    model.save_pretrained(folder)
    del model
    processor = bench_train.real_layout_processor()
    processor.save_pretrained(folder)
    vocab = processor.tokenizer.get_vocab()
    ids = bench_train.REAL_SPECIAL_IDS
    (folder / "tokenizer.model").write_bytes(
        tiny.sentencepiece_model(
            vocab, set(ids), {"unk": ids["<unk>"], "bos": ids["<bos>"], "eos": ids["<eos>"], "pad": ids["<pad>"]}
        )
    )


def build_adapter(base: Path, folder: Path) -> None:
    """A random LoRA adapter with the recipe's rank and targets, and the reading record training writes."""
    import torch
    import yaml
    from peft import LoraConfig

    import lipagent.testing.tiny_gemma3n as tiny

    recipe = yaml.safe_load((REPO / "train" / "configs" / "gemma3n-e4b-lora.yaml").read_text())
    lora = LoraConfig(r=recipe["lora_r"], lora_alpha=recipe["lora_alpha"], target_modules=recipe["lora_target_modules"])
    tiny.save_random_adapter(base, folder, lora, std=0.02, dtype=torch.bfloat16)


def quantized_copy(f16: Path, target: Path, quant: str) -> Path:
    """A sibling export folder whose text model is `quant`, through llama_cpp_tools.quantize."""
    from lipagent.gguf.llama import quantize
    from lipagent.records import READING_RECORD

    target.mkdir(parents=True)
    record = json.loads((f16 / READING_RECORD).read_text())
    for name in (record["mmproj"], "grid.gbnf", "README.md"):
        shutil.copy2(f16 / name, target / name)
    quantize(f16 / record["model"], target / f"model-{quant}.gguf", quant)
    record.update(model=f"model-{quant}.gguf", quant=quant)
    (target / READING_RECORD).write_text(json.dumps(record, indent=2) + "\n")
    return target


def a_mosaic(path: Path) -> Path:
    """A real s1 mosaic when the GRID samples are there, else a synthetic one (sizes and speed do not care)."""
    import zipfile

    from lipagent.transform.pipeline import prepare_video

    grid = REPO.parent / "shared" / "grid" / "s1.zip"
    if grid.is_file():
        with zipfile.ZipFile(grid) as archive:
            name = next(n for n in archive.namelist() if n.endswith(".mpg"))
            archive.extract(name, path.parent)
        path.write_bytes(prepare_video(path.parent / name, "auto").mosaic.jpeg)
    else:
        from PIL import Image

        Image.new("RGB", (400, 240), (128, 96, 96)).save(path, format="JPEG")
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, required=True, help="an empty folder on a disk with ~50 GB free")
    parser.add_argument("--quants", nargs="+", default=["Q4_K_M", "Q8_0"], help="default: Q4_K_M Q8_0")
    parser.add_argument("--threads", type=int, default=2, help="llama.cpp threads while reading (default: 2)")
    parser.add_argument("--tiny", action="store_true", help="the tiny model instead of E4B: checks the steps")
    parser.add_argument("--keep", action="store_true", help="keep the base model, adapter and f16 export")
    args = parser.parse_args(argv)
    from lipagent.gguf.export import export_gguf

    args.work.mkdir(parents=True, exist_ok=True)
    figures: dict = {"model": "tiny (llama.cpp shape)" if args.tiny else "Gemma 3n E4B, random weights"}
    started = time.perf_counter()
    build_base(args.work / "base", args.tiny)
    build_adapter(args.work / "base", args.work / "adapter")
    figures["base_safetensors_gb"] = sum(p.stat().st_size for p in (args.work / "base").glob("*.safetensors")) / 1e9
    figures["build_s"] = time.perf_counter() - started
    started = time.perf_counter()
    f16 = export_gguf(args.work / "adapter", args.work / "gguf-f16", "f16", base_model=str(args.work / "base"))
    figures["export_f16_s"] = time.perf_counter() - started
    mosaic = a_mosaic(args.work / "mosaic.jpg")
    rows = []
    for quant in args.quants:
        started = time.perf_counter()
        folder = quantized_copy(f16, args.work / f"gguf-{quant}", quant)
        quantize_s = time.perf_counter() - started
        result = subprocess.run(
            [sys.executable, "-c", READ_ONE, str(folder), str(mosaic), str(args.threads)],
            capture_output=True,
            text=True,
            cwd=REPO,
        )
        if result.returncode != 0:
            raise SystemExit(f"reading {folder} failed: {result.stderr.strip().splitlines()[-1:]}")
        read = json.loads(result.stdout.strip().splitlines()[-1])
        record = json.loads((folder / "lipagent.json").read_text())
        rows.append(
            {
                "quant": quant,
                "quantize_s": quantize_s,
                "model_gb": (folder / record["model"]).stat().st_size / 1e9,
                "mmproj_gb": (folder / record["mmproj"]).stat().st_size / 1e9,
                **read,
            }
        )
    figures["reads"] = rows
    if not args.keep:
        for name in ("base", "adapter", "gguf-f16"):
            shutil.rmtree(args.work / name, ignore_errors=True)
    (args.work / "bench_gguf.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(
        f"{figures['model']}: base model {figures['base_safetensors_gb']:.2f} GB of safetensors; "
        f"export to f16 GGUF {figures['export_f16_s']:.0f} s"
    )
    print("| quant | text model | mmproj | total | peak memory reading one mosaic | load | read one mosaic |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['quant']} | {row['model_gb']:.2f} GB | {row['mmproj_gb']:.2f} GB | "
            f"{row['model_gb'] + row['mmproj_gb']:.2f} GB | {row['peak_rss_gb']:.2f} GB | {row['load_s']:.1f} s | "
            f"{row['read_s']:.1f} s |"
        )


if __name__ == "__main__":
    main()
