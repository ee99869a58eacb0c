"""`lipagent demo`: the whole loop on an embedded default, offline and on a CPU, in a few minutes.

It renders a small GRID-like corpus, prepares the mosaic dataset, trains the baseline lip reader and a tiny
random Gemma 3n for a few steps, evaluates both, transcribes a clip with both and stages the dataset and adapter
exactly as they would be pushed to the Hub. Each stage runs the `lipagent` command a user would run (printed
first, then called in this process: the same function the command line calls), so the demo doubles as a tour.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import shlex
import shutil
import zipfile
from pathlib import Path

from lipagent.arguments import positive_int
from lipagent.cli.commands import run_command

DEMO_SPEAKERS = ("s1", "s2", "s3")
REPO = Path(__file__).resolve().parents[2]
STAGES = 9
TINY_CONFIG = REPO / "train" / "configs" / "tiny-cpu.yaml"
BASELINE_EPOCHS = 30


def _step(number: int, what: str) -> None:
    print(f"\n[{number}/{STAGES}] {what}", flush=True)


def _lipagent(args: list[str]) -> str:
    """Run one `lipagent` command in this process, echoing it and its output; its stdout is returned."""
    print(f"$ lipagent {shlex.join(args)}", flush=True)
    captured = io.StringIO()
    with contextlib.redirect_stdout(captured):
        code = run_command(args)
    print(captured.getvalue(), end="", flush=True)
    if code != 0:
        raise RuntimeError(f"`lipagent {shlex.join(args)}` failed with exit code {code}")
    return captured.getvalue()


def run_demo(out: Path, num_proc: int | None = None) -> dict[str, Path]:
    """Run every stage under `out` and return where each artifact is."""
    from lipagent.data.prepare import PrepareOptions, prepare
    from lipagent.data.preview import preview
    from lipagent.data.validate import validate_folder
    from lipagent.testing.synthetic import render_corpus
    from lipagent.testing.tiny_gemma3n import save_tiny_model

    if not TINY_CONFIG.is_file():
        raise FileNotFoundError(f"the demo trains with the repository's {TINY_CONFIG.relative_to(REPO)}; it is missing")
    out = Path(out).resolve()
    for stale in ("grid", "tiny-gemma3n", "baseline", "run", "eval", "hub"):
        shutil.rmtree(out / stale, ignore_errors=True)
    sources, dataset = out / "grid", out / "grid-mosaics"

    _step(1, f"render a GRID-like sample corpus from a public-domain face photo -> {sources}")
    render_corpus(sources, speakers=DEMO_SPEAKERS)

    _step(2, f"lipagent prepare --grid-dir {sources} --speakers {' '.join(DEMO_SPEAKERS)} --out {dataset}")
    summary = prepare(
        PrepareOptions(
            speakers=DEMO_SPEAKERS,
            out=dataset,
            grid_dir=sources,
            cache_dir=out / "cache",
            num_proc=num_proc,
            overwrite=True,
        )
    )
    print(summary.text())

    _step(3, f"lipagent validate {dataset} && lipagent preview {dataset}")
    report = validate_folder(dataset)
    print(report.text())
    if not report.ok:
        raise ValueError(f"the demo dataset did not validate:\n{report.text()}")
    sheet = preview(dataset, out / "sheet.png")
    print(f"wrote {sheet}")

    _step(4, "the baseline lip reader, trained from scratch in seconds (the yardstick any model must beat)")
    baseline = out / "baseline"
    _lipagent(["baseline", "train", str(dataset), "--out", str(baseline), "--epochs", str(BASELINE_EPOCHS)])
    print(
        "(20 synthetic clips are far too few to learn from, and these mouths only open by each word's first vowel: "
        "step 7 measures how it reads clips it did not see)"
    )

    _step(5, "a tiny random Gemma 3n (the real run uses google/gemma-3n-E4B-it)")
    model = out / "tiny-gemma3n"
    print(f"$ python train/tiny_model.py {model}", flush=True)
    print(f"wrote {save_tiny_model(model)}")

    _step(6, "LoRA fine-tuning with TRL (a few steps on the CPU)")
    run = out / "run"
    _lipagent(
        [
            "train",
            "--config",
            str(TINY_CONFIG),
            "--model_name_or_path",
            str(model),
            "--dataset_name",
            str(dataset),
            "--out",
            str(run),
        ]
    )
    adapter = run / "final-adapter"

    _step(7, "evaluation with grammar-constrained decoding, beside the baseline on the same clips")
    _lipagent(
        [
            "eval",
            "--model",
            str(adapter),
            "--baseline",
            str(baseline),
            "--dataset",
            str(dataset),
            "--split",
            "validation",
            "--out",
            str(out / "eval"),
            "--batch-size",
            "4",
        ]
    )

    print(measured_line(json.loads((out / "eval" / "metrics.json").read_text())))

    _step(8, "transcribe a clip with both (the random tiny Gemma reads nonsense, but always a valid GRID sentence)")
    clip, reference = _first_video(sources, out / "clip")
    text = _lipagent(["transcribe", str(clip), "--model", str(adapter)]).strip().splitlines()[-1]
    baseline_text = _lipagent(["transcribe", str(clip), "--model", str(baseline)]).strip().splitlines()[-1]

    _step(9, "stage the Hub uploads (--dry-run: written, not sent)")
    hub = out / "hub"
    _lipagent(
        [
            "push",
            "dataset",
            str(dataset),
            "--repo",
            "team/grid-mosaics",
            "--dry-run",
            "--stage-dir",
            str(hub / "dataset"),
        ]
    )
    _lipagent(
        [
            "push",
            "adapter",
            str(adapter),
            "--repo",
            "team/gemma3n-lipreader-lora",
            "--eval",
            str(out / "eval" / "metrics.json"),
            "--dataset",
            "team/grid-mosaics",
            "--dry-run",
            "--stage-dir",
            str(hub / "adapter"),
        ]
    )

    artifacts = {
        "dataset": dataset,
        "preview": sheet,
        "baseline": baseline,
        "adapter": adapter,
        "trainer state": run / "trainer_state.json",
        "metrics": out / "eval" / "metrics.json",
        "eval report": out / "eval" / "report.png",
        "staged dataset": hub / "dataset",
        "staged adapter": hub / "adapter",
    }
    print(
        f"\nclip {clip.name}, spoken: {reference}\n  baseline read: {baseline_text}\n"
        f"  tiny Gemma read: {text}\n\nartifacts:"
    )
    for name, path in artifacts.items():
        print(f"  {name:<15} {path}")
    print("\nNext: the real thing (Zenodo, Gemma 3n E4B, a GPU): README.md and docs/.")
    return artifacts


def measured_line(metrics: dict) -> str:
    """What step 7 measured, beside the WER of random GRID sentences (what reading nothing scores)."""
    from lipagent.scoring.metrics import chance_wer

    readers = [("tiny Gemma", metrics)] + ([("baseline", metrics["baseline"])] if "baseline" in metrics else [])
    scores = "; ".join(
        f"{name} WER {m['wer']:.3f} (95% interval {m['wer_interval'][0]:.3f}-{m['wer_interval'][1]:.3f})"
        for name, m in readers
    )
    chance = f"a random GRID sentence scores {chance_wer():.3f}"
    return f"measured on {metrics['num_samples']} unseen clips: {scores}; {chance}"


def _first_video(sources: Path, folder: Path) -> tuple[Path, str]:
    """Unpack one demo clip to show transcription on a plain video file; its path and spoken sentence."""
    from lipagent.data.align import parse_alignment

    with zipfile.ZipFile(sources / f"{DEMO_SPEAKERS[1]}.zip") as archive:
        name = sorted(n for n in archive.namelist() if n.endswith(".mpg"))[0]
        archive.extract(name, folder)
    with zipfile.ZipFile(sources / "alignments.zip") as archive:
        align = archive.read(f"alignments/{DEMO_SPEAKERS[1]}/{Path(name).stem}.align").decode()
    return folder / name, parse_alignment(align).text


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "demo",
        help="run the whole loop offline on clips it renders itself",
        description="Render a small GRID-like corpus from a public-domain face photo, prepare, validate and preview "
        "it, train the baseline and a tiny random Gemma 3n, evaluate both, transcribe a clip and stage the Hub "
        "uploads: the whole loop with no network and no GPU.",
    )
    parser.add_argument("--out", type=Path, default=Path("demo-out"), help="folder for everything the demo writes")
    parser.add_argument("--num-proc", type=positive_int, help="worker processes (default: cores, max 8)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    run_demo(args.out, num_proc=args.num_proc)
    return 0
