"""Does the Gemma path learn to read lips from the pixels? Train a small Gemma 3n from scratch on real mosaics and
read clips it never saw, beside two controls.

    python bench/bench_learning.py                           # about two hours on 2 cores; the table in the end
    python bench/bench_learning.py --markdown learning.md    # also write the table
    python bench/bench_learning.py --memorise 16 --batch-size 4   # 20 minutes: read the 16 clips it trained on

A small Gemma 3n of the real architecture (the tiny one of lipagent.testing in the widths llama.cpp runs, weights
from scratch) is trained through train/sft.py with train/configs/learning-check.yaml on the train split of a
`lipagent prepare` dataset (the real s1 clips of ../shared/grid by default), then read through eval/run_eval.py on
the test split. Beside it, read the same way:

- the shuffled control: the same model trained the same way on the same rows with the images shuffled across
  clips, so it can learn only the sentences' prior; a path that drops the image, masks the wrong tokens or destroys
  the cells reads no better than this;
- the baseline reader (`lipagent baseline train`), what the mosaics allow a small CNN;
- the Gemma reader exported with `lipagent export --gguf` and read by llama.cpp (`eval --gguf`).

The check holds when the Gemma reader's WER is at least 15 points below the shuffled control's with their 95%
intervals apart; the GGUF reader should be within 2 points of PyTorch. Also printed: how much the first answer
token's distribution moves when the image changes (0 for a model that ignores it). A step whose output in --work
was made by the same command from the same inputs is not redone. A benchmark, not a test: it prints figures (a
smoke run of it is in the tests).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from bench_accuracy import paired_interval, report, resized_and_back

from lipagent.grammar import SLOT_NAMES
from lipagent.scoring.metrics import clip_word_errors

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "train" / "configs" / "learning-check.yaml"
MARGIN = 0.15
"""How far below the shuffled control the Gemma reader's WER must be for the check to hold."""
GGUF_TOLERANCE = 0.02
MEMORISE_EPOCHS = 20
"""--memorise's default length: 16 clips are memorised in 20 epochs (docs/results.md)."""


class StepFailed(ValueError):
    """A command of the check ended with an error; its log says why."""


def recorded(marker: Path, value: object) -> bool:
    """Whether `marker` holds `value`: what a step was last made from."""
    return marker.is_file() and json.loads(marker.read_text()) == value


def step(what: str, command: list[str], log: Path, out: Path, inputs: str, force: bool = False) -> bool:
    """Run one command of the check as a user would (its output in `log`) unless `out` holds what the same command
    made from the same `inputs` (a fingerprint of what it reads); `force` when a step it depends on was redone.
    Returns whether it ran."""
    marker = log.with_suffix(".done.json")
    done = {"command": command, "inputs": inputs}
    if not force and out.exists() and recorded(marker, done):
        return False
    marker.unlink(missing_ok=True)
    if out.exists():
        shutil.rmtree(out)  # made with other settings, or left half-written
    print(f"{what} ... (log: {log})", flush=True)
    started = time.perf_counter()
    with open(log, "w", encoding="utf-8") as handle:
        status = subprocess.run(command, cwd=REPO, stdout=handle, stderr=subprocess.STDOUT, check=False).returncode
    if status:
        tail = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-1:] or [""]
        raise StepFailed(f"{what} failed (status {status}): {tail[0]} (see {log})")
    marker.write_text(json.dumps(done))
    print(f"  done in {time.perf_counter() - started:.0f} s", flush=True)
    return True


def fingerprint(folder: Path) -> str:
    """What a folder holds, by name, size and time of change of each file: a rebuilt dataset reads as new."""
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    listing = [(str(p.relative_to(folder)), p.stat().st_size, p.stat().st_mtime_ns) for p in files]
    return hashlib.sha256(json.dumps(listing).encode()).hexdigest()[:16]


def lipagent(*args: str) -> list[str]:
    return [sys.executable, "-m", "lipagent", *args]


def shuffle_images(dataset: Path, out: Path, seed: int, force: bool = False) -> Path:
    """A copy of `dataset` whose train and validation images are shuffled across rows (the texts stay): what a model
    can learn from it is the sentences' prior. The test split is untouched: it is read with its own images."""
    import pyarrow.parquet as pq

    if (out / "README.md").is_file() and not force:
        return out
    shutil.rmtree(out, ignore_errors=True)
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    (partial / "data").mkdir(parents=True, exist_ok=True)
    (partial / "README.md").write_bytes((dataset / "README.md").read_bytes())
    rng = np.random.default_rng(seed)
    for path in sorted((dataset / "data").glob("*.parquet")):
        table = pq.read_table(path)
        if not path.name.startswith("test"):
            order = rng.permutation(table.num_rows)
            column = table.schema.get_field_index("image")
            table = table.set_column(column, table.schema.field(column), table.column("image").take(order))
        pq.write_table(table, partial / "data" / path.name)
    partial.rename(out)
    return out


def first_token_shift(adapter: Path, dataset: Path, split: str, clips: int) -> float:
    """Mean total-variation distance between the first answer token's distributions of two different clips' images:
    how much the image moves the answer (0 for a model that ignores it). The clips are spread over the split, which is
    sorted by video id, so that their sentences start with different commands."""
    import datasets
    import torch

    from lipagent.readers.gemma import LipReader

    reader = LipReader.from_pretrained(adapter, device="cpu")
    rows = datasets.load_dataset(str(dataset), split=split)
    spread = np.unique(np.linspace(0, len(rows) - 1, min(clips, len(rows))).round().astype(int))
    images = rows.select(spread.tolist())["image"]
    with torch.inference_mode():
        logits = reader.model(**reader.prompt_inputs(images)).logits[:, -1].float()
    probabilities = torch.softmax(logits, dim=-1)
    distances = [
        0.5 * (probabilities[i] - probabilities[j]).abs().sum().item()
        for i in range(len(images))
        for j in range(i + 1, len(images))
    ]
    return float(np.mean(distances)) if distances else 0.0


def processor_round_trip(model: Path, dataset: Path, split: str, clips: int) -> float:
    """Mean absolute difference, in grey levels of 255, between a mosaic and what the model's processor makes of it
    (its 768x768 resize) scaled back to the mosaic's size: how much of the cells reaches the vision tower."""
    import datasets

    from lipagent.model.loading import load_processor

    processor = load_processor(model, str(model))
    rows = datasets.load_dataset(str(dataset), split=split)
    images = [image.convert("RGB") for image in rows.select(range(min(clips, len(rows))))["image"]]
    differences = []
    for image in images:
        back = resized_and_back(processor.image_processor, image)
        differences.append(np.abs(back - np.asarray(image, dtype=float)).mean())
    return float(np.mean(differences))


def read_eval(folder: Path) -> dict:
    """An eval folder's figures and per-clip word errors (recomputed from its predictions, for paired intervals),
    and the baseline's beside them when it was scored too."""
    metrics = json.loads((folder / "metrics.json").read_text())
    records = [json.loads(line) for line in (folder / "predictions.jsonl").read_text().splitlines()]
    references = [r["reference"] for r in records]

    def scored(figures: dict, column: str) -> dict:
        return {
            **{key: figures[key] for key in ("wer", "wer_interval", "sentence_accuracy", "slot_accuracy")},
            "clips": [r["video_id"] for r in records],
            "errors": clip_word_errors([r[column] for r in records], references),
        }

    result = scored(metrics, "prediction")
    if "baseline" in metrics:
        result["baseline"] = scored(metrics["baseline"], "baseline_prediction")
    return result


def paired_difference(a: dict, b: dict, draws: int) -> tuple[float, float, float]:
    """WER of `a` minus WER of `b` on the same clips, with a bootstrap 95% interval over clips (every reference is a
    GRID sentence of six words, as the metric checks)."""
    if a["clips"] != b["clips"]:
        raise ValueError("the two readers were scored on different clips")
    return paired_interval(np.array(a["errors"], float), np.array(b["errors"], float), len(SLOT_NAMES), draws)


def plan(args: argparse.Namespace) -> tuple[list[str], str, int | None]:
    """The flags added to the YAML for training, the split read and how many of its clips."""
    overrides, split, max_clips, epochs = [], args.split, args.max_clips, args.epochs
    if args.memorise:
        overrides += ["--max_samples", str(args.memorise)]
        split, max_clips, epochs = "train", args.memorise, MEMORISE_EPOCHS if epochs is None else epochs
    if epochs is not None:
        overrides += ["--num_train_epochs", str(epochs)]
    if args.max_steps is not None:
        overrides += ["--max_steps", str(args.max_steps)]
    if args.batch_size is not None:
        overrides += ["--per_device_train_batch_size", str(args.batch_size)]
    return overrides, split, max_clips


def run(args: argparse.Namespace) -> dict:
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    logs = work / "logs"
    logs.mkdir(exist_ok=True)
    dataset = args.dataset.resolve() if args.dataset else work / "dataset"
    if args.dataset and not (dataset / "README.md").is_file():
        raise ValueError(f"--dataset {args.dataset}: no dataset card there; pass a `lipagent prepare` folder")
    if not args.dataset:
        command = lipagent("prepare", "--grid-dir", str(args.grid_dir), "--out", str(dataset))
        step("preparing the mosaics", command + ["--cache-dir", str(work / "cache")], logs / "prepare.log", dataset, "")
    data = fingerprint(dataset)
    model = work / "small-gemma3n"
    recipe = [args.seed, "llama.cpp shape", "zero-mean filters"]
    new_model = not (model / "config.json").is_file() or not recorded(logs / "model.json", recipe)
    if new_model:
        from lipagent.testing.tiny_gemma3n import save_tiny_model

        print("writing the small Gemma 3n (random weights) ...", flush=True)
        shutil.rmtree(model, ignore_errors=True)
        save_tiny_model(model, seed=args.seed, llama_cpp_shape=True, zero_mean=True)
        (logs / "model.json").write_text(json.dumps(recipe))
    shuffled = work / "dataset-shuffled"
    marker = logs / "shuffled.json"
    shuffle_images(dataset, shuffled, args.seed, force=not recorded(marker, [data, args.seed]))
    marker.write_text(json.dumps([data, args.seed]))

    overrides, split, max_clips = plan(args)
    config = args.config.read_text()
    adapters, trained = {}, {}
    for name, rows in (("gemma", dataset), ("shuffled", shuffled)):
        out = work / name
        adapters[name] = out / "final-adapter"
        command = [sys.executable, "train/sft.py", "--config", str(args.config)]
        command += ["--model_name_or_path", str(model), "--dataset_name", str(rows), "--output_dir", str(out)]
        trained[name] = step(
            f"training the {name} reader",
            command + overrides,
            logs / f"train-{name}.log",
            out,
            data + config,
            new_model,
        )
    baseline = work / "baseline"
    command = lipagent("baseline", "train", str(dataset), "--out", str(baseline), "--seed", str(args.seed))
    if args.baseline_epochs is not None:
        command += ["--epochs", str(args.baseline_epochs)]
    trained["baseline"] = step("training the baseline", command, logs / "train-baseline.log", baseline, data)
    gguf = work / "gguf"
    command = lipagent("export", str(adapters["gemma"]), "--gguf", str(gguf), "--quant", args.gguf_quant)
    exported = step("exporting the gemma reader to GGUF", command, logs / "export.log", gguf, "", trained["gemma"])

    limit = ["--max-samples", str(max_clips)] if max_clips else []
    common = ["--dataset", str(dataset), "--split", split, "--device", "cpu", *limit]
    evaluations = {
        "gemma": (
            ["--model", str(adapters["gemma"]), "--baseline", str(baseline)],
            trained["gemma"] or trained["baseline"],
        ),
        "shuffled": (["--model", str(adapters["shuffled"])], trained["shuffled"]),
        "gguf": (["--gguf", str(gguf)], exported),
    }
    results = {}
    for name, (model_args, redo) in evaluations.items():
        out = work / f"eval-{name}"
        command = [sys.executable, "eval/run_eval.py", *model_args, *common, "--out", str(out)]
        what = f"reading the {split} clips with the {name} reader"
        step(what, command, logs / f"eval-{name}.log", out, data, redo)
        results[name] = read_eval(out)
    results["baseline"] = results["gemma"].pop("baseline")

    shift = {name: first_token_shift(adapters[name], dataset, split, args.shift_clips) for name in adapters}
    round_trip = processor_round_trip(model, dataset, split, args.shift_clips)
    below_control = paired_difference(results["gemma"], results["shuffled"], args.bootstrap)
    from_baseline = paired_difference(results["gemma"], results["baseline"], args.bootstrap)
    gguf_gap = paired_difference(results["gguf"], results["gemma"], args.bootstrap)
    apart = results["gemma"]["wer_interval"][1] < results["shuffled"]["wer_interval"][0]
    return {
        "dataset": str(dataset),
        "split": split,
        "memorise": args.memorise,
        "clips": len(results["gemma"]["clips"]),
        "seed": args.seed,
        "config": str(args.config.relative_to(REPO) if args.config.is_relative_to(REPO) else args.config),
        "gguf_quant": args.gguf_quant,
        "readers": {
            name: {k: v for k, v in result.items() if k not in ("clips", "errors")} for name, result in results.items()
        },
        "first_token_shift": shift,
        "processor_round_trip": round_trip,
        "gemma_minus_shuffled": below_control,
        "gemma_minus_baseline": from_baseline,
        "gguf_minus_gemma": gguf_gap,
        "holds": bool(apart and -below_control[0] >= MARGIN),
        "gguf_within_tolerance": bool(abs(gguf_gap[0]) <= GGUF_TOLERANCE),
    }


READER_NAMES = {
    "gemma": "Gemma 3n (small, from scratch)",
    "shuffled": "shuffled control (same model, images shuffled in training)",
    "baseline": "baseline reader (CNN + GRU)",
    "gguf": "Gemma 3n through GGUF (llama.cpp)",
}


def markdown(table: dict) -> str:
    header = "| reader | WER | 95% interval | sentences | " + " | ".join(SLOT_NAMES) + " |"
    lines = [header, "| --- " + "| ---: " * (3 + len(SLOT_NAMES)) + "|"]
    for name in ("gemma", "shuffled", "baseline", "gguf"):
        reader = table["readers"][name]
        low, high = reader["wer_interval"]
        slots = " | ".join(f"{reader['slot_accuracy'][slot]:.0%}" for slot in SLOT_NAMES)
        lines.append(
            f"| {READER_NAMES[name]} | {reader['wer']:.3f} | {low:.3f} to {high:.3f} | "
            f"{reader['sentence_accuracy']:.0%} | {slots} |"
        )

    def difference(key: str) -> str:
        value, low, high = table[key]
        return f"{value * 100:+.1f} points ({low * 100:+.1f} to {high * 100:+.1f})"

    verdict = "holds" if table["holds"] else "does NOT hold"
    shift = table["first_token_shift"]
    lines += [
        "",
        f"{table['clips']} {table['split']} clips of {table['dataset']}"
        + (" (memorisation: the clips the readers trained on)" if table.get("memorise") else "")
        + "; slot columns: share of clips with that word right. Differences are paired over clips, bootstrap 95% "
        "intervals.",
        f"- Gemma minus shuffled control: {difference('gemma_minus_shuffled')}: the check {verdict} "
        f"(at least {MARGIN * 100:.0f} points below, intervals apart).",
        f"- Gemma minus baseline: {difference('gemma_minus_baseline')}.",
        f"- GGUF ({table['gguf_quant']}) minus PyTorch: {difference('gguf_minus_gemma')} "
        f"({'within' if table['gguf_within_tolerance'] else 'outside'} {GGUF_TOLERANCE * 100:.0f} points).",
        f"- First answer token, mean total-variation distance between clips' images: Gemma {shift['gemma']:.3f}, "
        f"shuffled control {shift['shuffled']:.3f} (0 = the image changes nothing).",
        f"- A mosaic through the processor's 768x768 resize and back differs from itself by "
        f"{table['processor_round_trip']:.1f} grey levels of 255 on average.",
    ]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--grid-dir", type=Path, default=REPO.parent / "shared" / "grid", help="GRID files to prepare")
    parser.add_argument("--dataset", type=Path, help="a `lipagent prepare` folder to use instead of preparing one")
    parser.add_argument("--config", type=Path, default=CONFIG, help="the training YAML (default: %(default)s)")
    parser.add_argument("--epochs", type=float, help="override the YAML's num_train_epochs")
    parser.add_argument("--max-steps", type=int, help="override the YAML's length in optimizer steps (smoke runs)")
    parser.add_argument("--batch-size", type=int, help="override the YAML's samples per step (smoke runs)")
    parser.add_argument("--baseline-epochs", type=int, help="the baseline's epochs (default: its own)")
    parser.add_argument("--split", default="test", help="the split read (default: test)")
    parser.add_argument(
        "--memorise",
        type=int,
        metavar="N",
        help="train on the first N train clips only (default 20 epochs) and read those same clips: a check, in "
        "minutes, that the image reaches the answer through every step (processor, tower, projector, loss mask, "
        "prompt, GGUF); the control trained on shuffled images cannot say which clip is which",
    )
    parser.add_argument("--max-clips", type=int, help="read only the first N clips of the split (smoke runs)")
    parser.add_argument("--gguf-quant", default="f16", help="GGUF text-model type (default: f16, for a fair gap)")
    parser.add_argument(
        "--shift-clips",
        type=int,
        default=8,
        help="clips for the first-token shift and the processor check (default: 8)",
    )
    parser.add_argument("--seed", type=int, default=0, help="the small model's weights, the shuffle, the baseline")
    parser.add_argument("--bootstrap", type=int, default=10_000, help="bootstrap draws (default: 10000)")
    parser.add_argument("--work", type=Path, default=Path("bench-learning"), help="working folder (reused by reruns)")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--markdown", type=Path)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    return report("bench_learning", run, markdown, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
