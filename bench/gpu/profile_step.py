"""Where a training step's time goes: torch.profiler over the timed steps of bench/bench_train.py's real trainer.

    bash bench/gpu/run.sh offline-profile --random-model e4b --config train/configs/gemma3n-e4b-lora.yaml  # GPU
    bash bench/gpu/run.sh profile --tiny --steps 1 --warmup-steps 1 --samples 8 --out DIR    # CPU check

Prints, and writes to DIR/profile.txt: the wall time of the profiled steps against the time the device spent in
kernels (a low share means the step waits on Python and kernel launches, and a larger micro-batch or CUDA graphs
help more than faster kernels), kernel launches per step, the device time of the model's parts (vision tower,
vision embedder, language model, LM head; forward and any activation-checkpointing recomputation), and the top
operators by device time. Every bench_train.py and train/sft.py flag works here.
"""

from __future__ import annotations

import argparse
import time
from contextlib import ExitStack
from pathlib import Path

import bench_train
import torch
import transformers
from torch.profiler import ProfilerActivity, profile, record_function

REPO = Path(__file__).resolve().parents[2]

PARTS = {"vision tower": "vision_tower", "vision embedder": "embed_vision", "language model": "language_model"}
"""Labelled sub-modules of Gemma3nModel; the LM head is the output embedding."""


class Profiled(transformers.TrainerCallback):
    """Profiles from the end of the warm-up steps to the end of the last step."""

    def __init__(self, warmup: int, activities: list[ProfilerActivity]) -> None:
        self.warmup, self.activities = warmup, activities
        self.profiler: profile | None = None
        self.started = self.seconds = 0.0

    def on_step_end(self, args, state, control, **kwargs):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        if state.global_step == self.warmup:
            self.profiler = profile(activities=self.activities)
            self.profiler.__enter__()
            self.started = time.perf_counter()
        elif state.global_step == state.max_steps and self.profiler is not None:
            self.seconds = time.perf_counter() - self.started
            self.profiler.__exit__(None, None, None)


def label_parts(model: torch.nn.Module, stack: ExitStack) -> None:
    """A record_function range around each part's forward, so the profile sums its kernels."""
    base = model.get_base_model().model
    parts = {label: getattr(base, name) for label, name in PARTS.items()}
    parts["lm head"] = model.get_base_model().get_output_embeddings()
    for label, module in parts.items():
        ranges: list = []

        def enter(_module, _inputs, label=label, ranges=ranges):
            ranges.append(record_function(f"part: {label}"))
            ranges[-1].__enter__()

        def leave(_module, _inputs, _output, ranges=ranges):
            ranges.pop().__exit__(None, None, None)

        stack.callback(module.register_forward_pre_hook(enter).remove)
        stack.callback(module.register_forward_hook(leave).remove)


def device_time(event) -> float:
    """Microseconds on the device (CUDA) or, without one, on the CPU."""
    if torch.cuda.is_available():
        return getattr(event, "device_time_total", 0.0)
    return event.cpu_time_total


def self_device_time(event) -> float:
    if torch.cuda.is_available():
        return getattr(event, "self_device_time_total", 0.0)
    return event.self_cpu_time_total


def report(callback: Profiled, steps: int) -> str:
    events = callback.profiler.key_averages()
    on_gpu = [e for e in events if e.device_type == torch.autograd.DeviceType.CUDA]
    # On a GPU, kernels are events of their own and the CPU ops that launched them carry their time too: sum one.
    busy_s = sum(self_device_time(e) for e in (on_gpu or events) if not e.key.startswith("part: ")) / 1e6
    parts = [e for e in events if e.key.startswith("part: ") and e.device_type != torch.autograd.DeviceType.CUDA]
    launches = sum(e.count for e in events if e.key.startswith(("cudaLaunchKernel", "cuLaunchKernel")))
    lines = [
        f"device: {torch.cuda.get_device_name() if torch.cuda.is_available() else 'cpu'}; torch {torch.__version__}",
        f"profiled: {steps} optimizer steps in {callback.seconds:.2f} s wall ({callback.seconds / steps:.2f} s/step)",
        f"busy in kernels (CPU ops without a GPU): {busy_s:.2f} s ({100 * busy_s / callback.seconds:.0f}% of wall)",
        f"kernel launches per step: {launches / steps:,.0f}",
        "",
        "part (forward + recomputation; TRL's fused loss uses the LM head's weight without calling it)",
        "                                   device s   share of kernel time",
    ]
    for event in sorted(parts, key=device_time, reverse=True):
        seconds = device_time(event) / 1e6
        lines.append(f"{event.key[6:]:<34} {seconds:8.2f}   {100 * seconds / busy_s:5.1f}%")
    lines += ["", "top operators by self device time       device s    calls"]
    ops = sorted((e for e in events if not e.key.startswith("part: ")), key=self_device_time, reverse=True)
    for event in ops[:20]:
        lines.append(f"{event.key[:38]:<38} {self_device_time(event) / 1e6:8.2f} {event.count:8d}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    own = argparse.ArgumentParser(add_help=False)
    own.add_argument("--out", type=Path, help="folder for profile.txt")
    mine, argv = own.parse_known_args(argv)
    out = mine.out
    bench, rest = bench_train.parse_bench_args(argv)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])
    callback = Profiled(bench.warmup_steps, activities)
    with bench_train.with_model(bench, rest) as rest, ExitStack() as stack:
        trainer = bench_train.build(bench, rest, [callback])
        label_parts(trainer.model, stack)
        trainer.train()
    text = report(callback, bench.steps)
    print(text)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "profile.txt").write_text(text + "\n")


if __name__ == "__main__":
    main()
