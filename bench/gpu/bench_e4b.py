"""Gemma 3n E4B at its real size on one GPU, in one call: training speed and memory of the recipe and of the
settings that should make it faster or leaner, and reading latency and throughput with LipReader.

    bash bench/gpu/run.sh                  # on a CUDA machine: bench_e4b.py --out "${OUT:-gpu-bench-out}"
    bash bench/gpu/run.sh cpu-smoke DIR    # on a CPU: every section end to end on the tiny model

Training goes through the real train/sft.py code path (bench/bench_train.py: lipagent.model.training.build_trainer,
TRL's SFTTrainer, the recipe YAML) on the E4B architecture with random weights (speed and memory do not depend on
weight values) and synthetic mosaics of the default size. Sections, most informative first (see TRAINING): the
recipe; the same 16 samples a step as one micro-batch, padded to one length with the decoder layers compiled
(inductor); the same uncompiled; QLoRA with the per-layer embeddings in host memory; then reading, constrained with
a dynamic and a static KV cache and free; then, while time is left, CUDA graphs, plain QLoRA, the audio tower kept,
and the whole model compiled. Reading builds the same random E4B plus a random LoRA and times
`LipReader.transcribe_mosaics` from mosaic to text: per clip at batch 1 (median), and clips/s at batch 8 and 32. The
mosaic itself (video decode + Face Mesh, CPU) is measured by bench/bench_pipeline.py, not here: it runs on the CPU.

Each section is isolated (an out-of-memory error or a failed compile in one is recorded and the next runs) and the
figures are rewritten to OUT/gpu_bench.json and OUT/gpu_bench.md after every section, so a run cut short keeps what
it measured. Targets: the full recipe (4,000 samples x 5 epochs) within 10 minutes on one H100; peak memory at most
24 GB for bf16 LoRA and 12 GB for QLoRA; under 0.5 s per clip at batch 1 and a 500-clip evaluation within a minute.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import bench_train
import torch

REPO = Path(__file__).resolve().parents[2]

RECIPE = REPO / "train" / "configs" / "gemma3n-e4b-lora.yaml"
RECIPE_SAMPLES = 4000 * 5
"""The full recipe: about 4,000 training mosaics (a few GRID speakers), 5 epochs."""
TARGETS = {"recipe_minutes": 10.0, "bf16_peak_gb": 24.0, "qlora_peak_gb": 12.0, "latency_s": 0.5, "eval500_s": 60.0}

MICRO_BATCH_16 = ["--per_device_train_batch_size", "16", "--gradient_accumulation_steps", "1"]
PAD_TO = 352
"""Tokens every batch is padded to for compiled layers: a GRID sample is about 330 with E4B's processor."""
SMOKE_PAD_TO = 512
"""The same for the tiny model's processor (one token per letter: about 460)."""
COMPILED = [*MICRO_BATCH_16, "--pad_to_length", str(PAD_TO), "--compile_layers", "inductor"]


@dataclass(frozen=True)
class Section:
    """One training configuration: its name, memory target (bf16 or qlora), train/sft.py flags, and whether it
    waits until the reading figures are in (and runs only while the time budget lasts)."""

    name: str
    kind: str
    flags: tuple[str, ...]
    optional: bool = False
    gpu_only: bool = False


TRAINING = [
    Section("bf16 LoRA, activation checkpointing (the recipe)", "bf16", ()),
    Section("bf16 LoRA, micro-batch 16 x 1, padded, decoder layers compiled (inductor)", "bf16", tuple(COMPILED)),
    Section("bf16 LoRA, micro-batch 16 x 1 (the recipe's 16 samples a step)", "bf16", tuple(MICRO_BATCH_16)),
    Section(
        "QLoRA (NF4), per-layer embeddings in host memory",
        "qlora",
        ("--load_in_4bit", "true", "--per_layer_embeddings_on_host", "true"),
    ),
    Section(
        "bf16 LoRA, micro-batch 16 x 1, padded, decoder layers compiled with CUDA graphs",
        "bf16",
        (*COMPILED, "--compile_layers_mode", "reduce-overhead"),
        optional=True,
        gpu_only=True,
    ),
    Section("QLoRA (NF4), activation checkpointing", "qlora", ("--load_in_4bit", "true"), optional=True),
    Section(
        "bf16 LoRA, micro-batch 16 x 1, audio tower kept",
        "bf16",
        (*MICRO_BATCH_16, "--drop_audio_tower", "false"),
        optional=True,
    ),
    Section(
        "bf16 LoRA, micro-batch 16 x 1, torch.compile (whole model)",
        "bf16",
        (*MICRO_BATCH_16, "--torch_compile", "true"),
        optional=True,
        gpu_only=True,
    ),
]
"""Measured on an H200 (docs/results.md): the recipe is launch-bound (52,000 kernel launches a step), 16 x 1 is
1.55x faster on the same samples per step, and activation checkpointing buys no memory. Compiling the decoder
layers (one compiled layer serves all, shapes kept static by padding) is the lever for fewer, fused kernels; the
audio tower is left out by default (lipagent.model.efficiency). The CPU smoke run runs every section the CPU can
(compiling with the aot_eager backend, which traces and differentiates the same graphs without generating code);
CUDA graphs and whole-model compilation need a GPU."""
READING = [("constrained", "dynamic"), ("constrained", "static"), ("free", "dynamic")]
"""Decoding and KV cache of each reading row; static: the cache allocated once and the decoding step compiled."""


def smoke_flags(flags: Sequence[str]) -> list[str]:
    """A section's flags for the tiny model on a CPU: compiled with aot_eager, padded to the tiny layout's length."""
    out = list(flags)
    for flag, value in (("--compile_layers", "aot_eager"), ("--pad_to_length", str(SMOKE_PAD_TO))):
        if flag in out:
            out[out.index(flag) + 1] = value
    return out


def free_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def has_bitsandbytes() -> bool:
    try:
        import bitsandbytes  # noqa: F401
    except Exception:  # a missing wheel or a broken CUDA binding both mean "no QLoRA here"
        return False
    return True


def training_figures(name: str, kind: str, extra: list[str], args: argparse.Namespace) -> dict[str, Any]:
    """One training configuration through bench_train.run (the real trainer), as a flat dict of figures."""
    extra = smoke_flags(extra) if args.cpu_smoke else extra
    model = ["--model_name_or_path", str(args.tiny_dir)] if args.cpu_smoke else ["--random-model", "e4b"]
    config = bench_train.TINY_CONFIG if args.cpu_smoke else RECIPE
    bench, rest = bench_train.parse_bench_args(
        [
            *model,
            "--config",
            str(config),
            "--steps",
            str(args.steps),
            "--warmup-steps",
            str(args.warmup_steps),
            "--samples",
            str(args.samples),
            *extra,
        ]
    )
    figures = bench_train.run(bench, rest)
    peak_gb = figures.peak_memory_gib * 2**30 / 1e9
    limit = TARGETS["qlora_peak_gb" if kind == "qlora" else "bf16_peak_gb"]
    minutes = RECIPE_SAMPLES / figures.samples_per_s / 60
    return {
        "config": name,
        "device": figures.device,
        "samples_per_step": figures.samples_per_step,
        "samples_per_s": figures.samples_per_s,
        "tokens_per_s": figures.tokens_per_s,
        "mfu": figures.mfu,
        "achieved_tflops": figures.achieved_tflops,
        "peak_memory_gb": peak_gb,
        "memory_kind": figures.memory_kind,
        "recipe_minutes": minutes,
        "meets_time": minutes <= TARGETS["recipe_minutes"],
        "meets_memory": peak_gb <= limit,
        "memory_target_gb": limit,
        "trainable_params": figures.trainable_params,
        "total_params": figures.total_params,
    }


def synthetic_mosaics(count: int) -> list:
    return list(bench_train.synthetic_mosaics(count)["train"]["image"])


def reading_figures(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Random E4B + a random LoRA behind LipReader: latency at batch 1 and clips/s at larger batches."""
    from peft import LoraConfig, get_peft_model
    from trl import ModelConfig

    from lipagent.model.efficiency import drop_audio_tower
    from lipagent.model.training import LORA_TARGET_MODULES
    from lipagent.readers.gemma import LipReader, plan_device

    plan = plan_device()
    if args.cpu_smoke:
        from transformers import AutoModelForImageTextToText

        import lipagent.testing.tiny_gemma3n as tiny

        model, processor = AutoModelForImageTextToText.from_pretrained(args.tiny_dir), tiny.build_processor()
    else:
        model_args = ModelConfig(dtype="bfloat16" if plan.dtype == torch.bfloat16 else "float32")
        model, processor = bench_train.random_model("e4b", model_args), bench_train.real_layout_processor()
    drop_audio_tower(model)  # as LipReader.from_pretrained does
    model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, target_modules=LORA_TARGET_MODULES)).eval()
    mosaics = synthetic_mosaics(max(args.batch_sizes + [args.clips]))
    rows = []
    for decoding, cache in READING:
        reader = LipReader(model, processor, plan, decoding, cache=cache)
        reader.transcribe_mosaics(mosaics[:1])
        latencies = []
        for mosaic in mosaics[: args.clips]:
            started = time.perf_counter()
            reader.transcribe_mosaic(mosaic)
            latencies.append(time.perf_counter() - started)
        row: dict[str, Any] = {
            "decoding": decoding,
            "cache": cache,
            "device": plan.reason,
            "latency_s": statistics.median(latencies),
            "latency_clips": len(latencies),
        }
        for size in args.batch_sizes:
            batch = mosaics[:size]
            reader.transcribe_mosaics(batch)
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            started = time.perf_counter()
            reader.transcribe_mosaics(batch)
            row[f"clips_per_s_batch_{size}"] = size / (time.perf_counter() - started)
        best = max(row[f"clips_per_s_batch_{size}"] for size in args.batch_sizes)
        row["eval500_s"] = 500 / best
        row["meets_latency"] = row["latency_s"] <= TARGETS["latency_s"]
        row["meets_eval500"] = row["eval500_s"] <= TARGETS["eval500_s"]
        if torch.cuda.is_available():
            row["peak_memory_gb"] = torch.cuda.max_memory_allocated() / 1e9
        rows.append(row)
    del model, reader
    free_memory()
    return rows


def markdown(results: dict[str, Any]) -> str:
    lines = [
        f"GPU figures, {results['device']}, {results['date']} "
        f"({'CPU SMOKE RUN, not GPU figures' if results['cpu_smoke'] else 'random-weight E4B'})",
        "",
    ]
    lines += [
        "| training config | samples/s | tokens/s | MFU | peak memory | full recipe (4,000 x 5) | targets |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in results["training"]:
        if "error" in row:
            lines.append(f"| {row['config']} | failed: {row['error']} | | | | | |")
            continue
        mfu = "n/a" if row["mfu"] is None else f"{row['mfu']:.1%}"
        verdict = (
            ("time ok" if row["meets_time"] else "time MISSED")
            + ", "
            + (
                f"memory ok (<= {row['memory_target_gb']:g} GB)"
                if row["meets_memory"]
                else f"memory MISSED (> {row['memory_target_gb']:g} GB)"
            )
        )
        lines.append(
            f"| {row['config']} | {row['samples_per_s']:.2f} | {row['tokens_per_s']:,.0f} | {mfu} | "
            f"{row['peak_memory_gb']:.1f} GB | {row['recipe_minutes']:.1f} min | {verdict} |"
        )
    lines += [
        "",
        "| reading (LipReader, mosaic in, text out) | latency, batch 1 | "
        + " | ".join(f"clips/s, batch {b}" for b in results["batch_sizes"])
        + " | 500-clip eval | targets |",
        "|---|---|" + "---|" * len(results["batch_sizes"]) + "---|---|",
    ]
    for row in results["reading"]:
        if "error" in row:
            lines.append(f"| {row.get('decoding', 'reading')} | failed: {row['error']} |")
            continue
        rates = " | ".join(f"{row[f'clips_per_s_batch_{b}']:.1f}" for b in results["batch_sizes"])
        verdict = (
            ("latency ok" if row["meets_latency"] else "latency MISSED")
            + ", "
            + ("eval ok" if row["meets_eval500"] else "eval MISSED")
        )
        lines.append(
            f"| {row['decoding']} decoding, {row['cache']} cache | {row['latency_s'] * 1000:.0f} ms | {rates} | "
            f"{row['eval500_s']:.0f} s | {verdict} |"
        )
    lines += ["", *results["notes"]]
    return "\n".join(lines) + "\n"


def save(results: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_bench.json").write_text(json.dumps(results, indent=2))
    (out / "gpu_bench.md").write_text(markdown(results))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="folder for gpu_bench.json and gpu_bench.md")
    parser.add_argument("--cpu-smoke", action="store_true", help="tiny widths, one step each: checks the script here")
    parser.add_argument("--steps", type=int, help="timed optimizer steps per config (default: 4; smoke: 1)")
    parser.add_argument("--warmup-steps", type=int, help="untimed steps first (default: 2; smoke: 1)")
    parser.add_argument("--samples", type=int, help="synthetic mosaics to train on (default: 128; smoke: 16)")
    parser.add_argument("--clips", type=int, help="clips for the batch-1 latency (default: 16; smoke: 2)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", help="reading batch sizes (default: 8 32; smoke: 2)")
    parser.add_argument(
        "--budget-s",
        type=float,
        default=420.0,
        help="skip the optional training config once this many seconds have passed (default: 420)",
    )
    args = parser.parse_args(argv)
    smoke = args.cpu_smoke
    args.steps = args.steps or (1 if smoke else 4)
    args.warmup_steps = args.warmup_steps or (1 if smoke else 2)
    args.samples = args.samples or (16 if smoke else 128)
    args.clips = args.clips or (2 if smoke else 16)
    args.batch_sizes = args.batch_sizes or ([2] if smoke else [8, 32])
    if not smoke and not torch.cuda.is_available():
        parser.error("no CUDA GPU here: the E4B figures need one (use --cpu-smoke to check the script on a CPU)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-e4b-") as folder:
        if args.cpu_smoke:
            import lipagent.testing.tiny_gemma3n as tiny

            args.tiny_dir = tiny.save_tiny_model(Path(folder) / "tiny", seed=0)
        return measure(args)


def train_section(
    section: Section, args: argparse.Namespace, results: dict[str, Any], qlora: bool, started: float
) -> None:
    """Measure one training section into `results` (or note why it was skipped), then save the figures."""
    if section.kind == "qlora" and not qlora:
        return
    if section.gpu_only and args.cpu_smoke:
        results["notes"].append(f"'{section.name}' skipped in the CPU smoke run (it needs a GPU).")
        return
    if section.optional and time.perf_counter() - started > args.budget_s:
        results["notes"].append(f"'{section.name}' skipped: the time budget ({args.budget_s:.0f} s) was spent.")
        return
    print(f"== training: {section.name}", flush=True)
    try:
        results["training"].append(training_figures(section.name, section.kind, list(section.flags), args))
    except Exception as error:  # one config failing (out of memory, a failed compile) must not lose the others
        traceback.print_exc()
        results["training"].append({"config": section.name, "error": f"{type(error).__name__}: {str(error)[:200]}"})
    free_memory()
    save(results, args.out)


def measure(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    results: dict[str, Any] = {
        "device": device,
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
        "cpu_smoke": args.cpu_smoke,
        "torch": torch.__version__,
        "batch_sizes": args.batch_sizes,
        "training": [],
        "reading": [],
        "targets": TARGETS,
        "notes": [],
    }
    if args.cpu_smoke:
        results["notes"].append("CPU smoke run: sections that compile use the aot_eager backend, not inductor.")
    qlora = has_bitsandbytes()
    if not qlora:
        results["notes"].append("QLoRA skipped: bitsandbytes is not installed.")
    for section in [s for s in TRAINING if not s.optional]:
        train_section(section, args, results, qlora, started)
    print("== reading", flush=True)
    try:
        results["reading"] = reading_figures(args)
    except Exception as error:  # keep the training figures whatever happens here
        traceback.print_exc()
        results["reading"] = [{"error": f"{type(error).__name__}: {str(error)[:200]}"}]
    save(results, args.out)
    for section in [s for s in TRAINING if s.optional]:
        train_section(section, args, results, qlora, started)
    results["notes"].append(
        "Reading excludes the mosaic (video decode + Face Mesh on the CPU, ~70-130 ms per clip "
        "on one core: bench/bench_pipeline.py); add it for end-to-end latency."
    )
    results["seconds"] = time.perf_counter() - started
    save(results, args.out)
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
