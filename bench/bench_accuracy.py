"""Judge preprocessing by reading accuracy: build the dataset under each variant, train the baseline lip reader on
each with the same clips and seeds, and compare test WER, paired clip by clip.

    python bench/bench_accuracy.py default legacy,landmarker=face_mesh_tasks crop=cell_aspect resampling=area
    python bench/bench_accuracy.py default subpixel_crop=true --folds 1 --seeds 0 1 2 --json out.json

A VARIANT is comma-separated tokens: `default` (today's MosaicConfig) or `legacy` (how LipAgent 0.1 cut
mosaics; its landmarker, the legacy Face Mesh solution, no longer runs, so `legacy,landmarker=face_mesh_tasks` is
the rest of it on the same models) as the starting point, then `setting=value` overrides, e.g.
`legacy,resampling=linear`, and `processor`: the baseline reads each mosaic as Gemma 3n's processor hands it to the
vision tower (resized to 768x768 whatever the grid), scaled back to the mosaic's size. The first variant is the
reference every other one is compared with. Variants with the same settings share one dataset.

    python bench/bench_accuracy.py default rows=4,cols=4 rows=4,cols=4,processor rows=4,cols=6,processor

Clips: every aligned clip of --speakers in --grid-dir (the 450 real s1 clips of ../shared/grid by default). Every
trained model also reads the clips of --other-speakers (../shared/grid-s31's ten s31 clips by default): how a
setting carries to a face the reader never saw.
--folds 1 trains on the dataset's train split and tests on its test split (54 clips here); --folds K (default
3) splits all clips into K folds by a hash of the video id, trains K times and so tests every clip once on a
model that never saw it: eight times the test clips, for intervals narrow enough to see a 3-point change.
WER per variant and seed is the project's metric (lipagent.scoring.metrics, jiwer) over the clips every variant kept;
the difference from the reference is averaged over seeds per clip and given with a paired bootstrap 95%
interval over clips. A benchmark, not a test: it prints figures (and writes --json / --markdown).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from lipagent.config import DEFAULT_CONFIG, LEGACY_SETTINGS, MosaicConfig
from lipagent.data.splits import SPLITS
from lipagent.model.baseline import sentences_of
from lipagent.model.baseline_config import BaselineArch, BaselineTrainingArgs
from lipagent.model.baseline_training import CellSet, fit, load_dataset_cells, predict_logits
from lipagent.records import read_dataset_record
from lipagent.scoring.metrics import compute_grid_metrics

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Variant:
    name: str
    config: MosaicConfig
    processor: bool = False
    """Read through Gemma 3n's image resize (`through_processor`)."""


def parse_variant(text: str) -> Variant:
    """`default`, `legacy`, `processor` and `setting=value` tokens, comma-separated (see the module docstring)."""
    config, overrides, processor = DEFAULT_CONFIG, {}, False
    for token in filter(None, (t.strip() for t in text.split(","))):
        if token == "default":
            config = DEFAULT_CONFIG
        elif token == "legacy":
            config = MosaicConfig(**{**DEFAULT_CONFIG.to_dict(), **LEGACY_SETTINGS})
        elif token == "processor":
            processor = True
        elif "=" in token:
            key, value = token.split("=", 1)
            overrides[key.strip()] = value.strip()
        else:
            raise ValueError(f"variant {text!r}: {token!r} is neither default, legacy, processor nor setting=value")
    return Variant(text, config.with_overrides(overrides), processor)


def resized_and_back(image_processor, image: Image.Image) -> np.ndarray:
    """An RGB mosaic as a Gemma 3n image processor passes it to the vision tower (every grid resized to one square),
    scaled back to its own size with an averaging filter: float RGB in grey levels of 255."""
    pixels = image_processor(images=[image], return_tensors="np")["pixel_values"][0].transpose(1, 2, 0)
    return cv2.resize(pixels, image.size, interpolation=cv2.INTER_AREA) * 255


def through_processor() -> Callable[[Image.Image], Image.Image]:
    """What of a mosaic's cells survives Gemma 3n's image resize (`resized_and_back`), as an image again."""
    from lipagent.testing.tiny_gemma3n import build_processor

    resize = build_processor().image_processor

    def view(image: Image.Image) -> Image.Image:
        return Image.fromarray(np.clip(resized_and_back(resize, image) + 0.5, 0, 255).astype(np.uint8))

    return view


def processor_cells(config: MosaicConfig) -> dict[str, float]:
    """What the Gemma 3n vision tower has per frame of a mosaic: the cell's pixels after the processor's resize,
    and its share of the image's soft tokens."""
    from lipagent.model.tiny_vision import IMAGE_SIZE
    from lipagent.testing.tiny_gemma3n import IMAGE_SOFT_TOKENS

    return {
        "cell_width": IMAGE_SIZE / config.cols,
        "cell_height": IMAGE_SIZE / config.rows,
        "tokens": IMAGE_SOFT_TOKENS / config.num_frames,
    }


def fold_of(video_id: str, folds: int) -> int:
    """A clip's fold, from its id alone, so every variant and seed splits the clips the same way."""
    return int.from_bytes(hashlib.sha256(f"fold:{video_id}".encode()).digest()[:8], "big") % folds


def build(variant: Variant, args: argparse.Namespace, grid_dir: Path | None = None) -> Path:
    """The variant's dataset, reused when a folder built with exactly this config (and clip set) exists: the clips of
    --speakers in --grid-dir, or every speaker's in `grid_dir` (another speaker's folder)."""
    from lipagent.data.prepare import PrepareOptions, prepare

    speakers = args.speakers if grid_dir is None else sorted(p.stem for p in grid_dir.glob("s*.zip"))
    limit = args.limit if grid_dir is None else None
    grid_dir = grid_dir or args.grid_dir
    wanted = {
        "config": variant.config.to_dict(),
        "speakers": speakers,
        "limit": limit,
        "grid_dir": str(grid_dir.resolve()),
    }
    out = args.work / f"variant-{hashlib.sha256(json.dumps(wanted, sort_keys=True).encode()).hexdigest()[:12]}"
    marker = out / "bench-variant.json"
    if marker.is_file() and json.loads(marker.read_text()) == wanted:
        print(f"  reusing {out}", flush=True)
        return out
    summary = prepare(
        PrepareOptions(
            speakers=tuple(speakers),
            out=out,
            grid_dir=grid_dir,
            limit=limit,
            cache_dir=args.work / "cache",
            num_proc=args.num_proc,
            overwrite=True,
            config=variant.config,
        )
    )
    print("  " + summary.text().replace("\n", "\n  "), flush=True)
    assert read_dataset_record(out).mosaic == variant.config, "the dataset card must record the variant's settings"
    marker.write_text(json.dumps(wanted))
    return out


def merged(parts: Iterable[CellSet]) -> CellSet:
    """The sets as one; a clip in several keeps its id in each (so its copies share a cross-fitting fold)."""
    parts = list(parts)
    return CellSet(
        np.concatenate([p.cells for p in parts]),
        np.concatenate([p.labels for p in parts]),
        sum((p.video_ids for p in parts), []),
        sum((p.texts for p in parts), []),
        sum((p.speakers for p in parts), []),
    )


def subset(cells: CellSet, keep: np.ndarray) -> CellSet:
    pick = np.flatnonzero(keep)
    return CellSet(
        cells.cells[pick],
        cells.labels[pick],
        [cells.video_ids[i] for i in pick],
        [cells.texts[i] for i in pick],
        [cells.speakers[i] for i in pick],
    )


def all_cells(
    dataset: Path, arch: BaselineArch, view: Callable[[Image.Image], Image.Image] | None = None
) -> tuple[MosaicConfig, dict[str, CellSet]]:
    """The dataset's mosaic settings and the cells of every split it has."""
    present = [s for s in SPLITS if any((dataset / "data").glob(f"{s}-*.parquet"))]
    return load_dataset_cells(str(dataset), present, arch, view=view)


@dataclass
class Predictions:
    """One variant and seed: the sentence read for each clip by the model that never saw it, and for each other
    speaker's clip the sentence each fold's model read."""

    own: dict[str, str]
    others: dict[str, list[str]]
    references: dict[str, tuple[str, str]]


def predictions_for(
    dataset: Path,
    args: argparse.Namespace,
    seed: int,
    view: Callable[[Image.Image], Image.Image] | None = None,
    others: tuple[Path, ...] = (),
) -> Predictions:
    """Train and read one variant with one seed; kept in the dataset's folder, so a rerun (or another table with
    the same variant) reads them back instead of training again."""
    key = json.dumps(
        {
            "folds": args.folds,
            "epochs": args.epochs,
            "seed": seed,
            "view": view is not None,
            "others": sorted(map(str, others)),
        },
        sort_keys=True,
    )
    kept = dataset / f"predictions-{hashlib.sha256(key.encode()).hexdigest()[:12]}.json"
    if kept.is_file():
        print(f"    seed {seed}: predictions of an earlier run ({kept.name})", flush=True)
        return Predictions(**json.loads(kept.read_text()))
    arch = BaselineArch()
    training = BaselineTrainingArgs(dataset=str(dataset), out=Path("unused"), epochs=args.epochs, seed=seed, arch=arch)
    mosaic, cells = all_cells(dataset, arch, view)
    other_cells = (
        merged(cs for folder in others for cs in all_cells(folder, arch, view)[1].values()) if others else None
    )
    runs: list[tuple[CellSet, CellSet]] = []
    if args.folds == 1:
        runs.append((cells["train"], cells["test"]))
    else:
        everything = merged(cells.values())
        folds = np.array([fold_of(v, args.folds) for v in everything.video_ids])
        runs += [(subset(everything, folds != k), subset(everything, folds == k)) for k in range(args.folds)]
    result = Predictions({}, {}, {})
    for k, (train, test) in enumerate(runs):
        started = time.perf_counter()
        model, _ = fit(train, replace(training, seed=seed * 1000 + k), mosaic, progress=args.progress)
        result.own.update(zip(test.video_ids, sentences_of(predict_logits(model, test.cells))))
        result.references.update(zip(test.video_ids, zip(test.texts, test.speakers)))
        if other_cells is not None:
            for video, sentence in zip(other_cells.video_ids, sentences_of(predict_logits(model, other_cells.cells))):
                result.others.setdefault(video, []).append(sentence)
            result.references.update(zip(other_cells.video_ids, zip(other_cells.texts, other_cells.speakers)))
        print(
            f"    seed {seed} fold {k + 1}/{len(runs)}: trained on {len(train)}, tested {len(test)} "
            f"({time.perf_counter() - started:.0f} s)",
            flush=True,
        )
    kept.write_text(json.dumps(asdict(result)))
    return result


def word_errors(prediction: str, reference: str) -> int:
    """Wrong words of a six-word prediction (all substitutions: the baseline always writes six words)."""
    return sum(p != r for p, r in zip(prediction.split(), reference.split(), strict=True))


def paired_interval(
    errors: np.ndarray, reference: np.ndarray, words: int, draws: int, seed: int = 0
) -> tuple[float, float, float]:
    """WER difference (per-clip errors averaged over seeds) and its bootstrap 95% interval over clips."""
    diff = errors - reference
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(diff), size=(draws, len(diff)))
    sampled = diff[picks].sum(axis=1) / (words * len(diff))
    low, high = np.percentile(sampled, [2.5, 97.5])
    return float(diff.sum() / (words * len(diff))), float(low), float(high)


def run(args: argparse.Namespace) -> dict:
    variants = [parse_variant(v) for v in args.variants]
    args.work.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict[int, Predictions]] = {}
    references: dict[str, tuple[str, str]] = {}
    for i, variant in enumerate(variants):
        print(f"[{i + 1}/{len(variants)}] {variant.name}: {variant.config.describe()}", flush=True)
        dataset = build(variant, args)
        others = tuple(build(variant, args, folder) for folder in args.other_speakers)
        if args.build_only:
            continue
        view = through_processor() if variant.processor else None
        results[variant.name] = {seed: predictions_for(dataset, args, seed, view, others) for seed in args.seeds}
        for found in results[variant.name].values():
            references.update(found.references)
    if args.build_only:
        return {"built": [v.name for v in variants]}
    common = sorted(set.intersection(*(set(p.own) for runs in results.values() for p in runs.values())))
    texts = [references[v][0] for v in common]
    speakers = [references[v][1] for v in common]
    table = {"clips": len(common), "folds": args.folds, "seeds": args.seeds, "epochs": args.epochs, "variants": []}
    per_clip = {}
    for variant in variants:
        runs = results[variant.name]
        wers = {
            seed: compute_grid_metrics([runs[seed].own[v] for v in common], texts, speakers)["wer"] for seed in runs
        }
        per_clip[variant.name] = np.mean(
            [[word_errors(runs[seed].own[v], t) for v, t in zip(common, texts)] for seed in runs], axis=0
        )
        entry = {
            "variant": variant.name,
            "settings": variant.config.describe() + (", read through Gemma 3n's resize" if variant.processor else ""),
            "config": variant.config.to_dict(),
            "processor": variant.processor,
            "processor_cells": processor_cells(variant.config),
            "wer_by_seed": wers,
            "wer": float(np.mean(list(wers.values()))),
        }
        if variant is not variants[0]:
            diff, low, high = paired_interval(per_clip[variant.name], per_clip[variants[0].name], 6, args.bootstrap)
            entry.update(diff=diff, diff_low=low, diff_high=high)
        entry["others"] = other_speakers_wer(runs, references)
        table["variants"].append(entry)
    return table


def other_speakers_wer(runs: dict[int, Predictions], references: dict[str, tuple[str, str]]) -> dict[str, dict]:
    """Each other speaker's WER, over every seed's every fold model (all trained without that speaker)."""
    rows: dict[str, dict] = {}
    clips = sorted({v for found in runs.values() for v in found.others})
    for speaker in sorted({references[v][1] for v in clips}):
        mine = [v for v in clips if references[v][1] == speaker]
        reads = [(sentence, references[v][0]) for found in runs.values() for v in mine for sentence in found.others[v]]
        errors = sum(word_errors(said, truth) for said, truth in reads)
        rows[speaker] = {
            "clips": len(mine),
            "models": len(reads) // max(len(mine), 1),
            "wer": errors / (6 * len(reads)),
        }
    return rows


def markdown(table: dict) -> str:
    seeds = table["seeds"]
    others = sorted({speaker for entry in table["variants"] for speaker in entry["others"]})
    head = (
        "| variant | settings | "
        + " | ".join(f"WER seed {s}" for s in seeds)
        + " | mean WER | vs first (95% CI) | a frame in Gemma 3n's 768x768 |"
        + "".join(f" {speaker} WER |" for speaker in others)
        + "\n|---|---|"
        + "---|" * (len(seeds) + 3 + len(others))
    )
    rows = []
    for entry in table["variants"]:
        diff = (
            f"{entry['diff'] * 100:+.1f} pts ({entry['diff_low'] * 100:+.1f} to {entry['diff_high'] * 100:+.1f})"
            if "diff" in entry
            else "reference"
        )
        wers = " | ".join(f"{entry['wer_by_seed'][s]:.3f}" for s in seeds)
        cell = entry["processor_cells"]
        seen = f"{cell['cell_width']:.0f}x{cell['cell_height']:.0f} px, {cell['tokens']:.1f} tokens"
        other = "".join(f" {entry['others'][s]['wer']:.3f} |" if s in entry["others"] else " |" for s in others)
        rows.append(
            f"| `{entry['variant']}` | {entry['settings']} | {wers} | {entry['wer']:.3f} | {diff} | {seen} |{other}"
        )
    how = (
        f"{table['clips']} test clips, "
        + (
            "the dataset's test split"
            if table["folds"] == 1
            else f"{table['folds']}-fold cross-fitting (each clip tested once)"
        )
        + f", {len(seeds)} seed(s), {table['epochs']} epochs"
    )
    for speaker in others:
        counts = next(entry["others"][speaker] for entry in table["variants"] if speaker in entry["others"])
        how += (
            f"; {speaker}: {counts['clips']} clips never trained on, each read by all {counts['models']} models "
            "(a sanity figure, not a benchmark)"
        )
    return "\n".join([head, *rows, "", how])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("variants", nargs="+", help="preprocessing variants (first = reference), see above")
    parser.add_argument(
        "--grid-dir",
        type=Path,
        default=REPO.parent / "shared" / "grid",
        help="GRID zips or unpacked trees (default: ../shared/grid)",
    )
    parser.add_argument("--speakers", nargs="+", default=["s1"], help="speakers whose clips are used (default: s1)")
    parser.add_argument("--limit", type=int, help="only the first N videos by id (smoke runs)")
    add_other_speakers(parser, "whose clips every trained model also reads: WER on faces it never saw", "read")
    parser.add_argument(
        "--folds",
        type=int,
        default=3,
        help="1: the dataset's train/test split; K: K-fold cross-fitting over every clip (default: 3)",
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="training seeds (default: 0 1)")
    parser.add_argument(
        "--epochs",
        type=int,
        default=BaselineTrainingArgs.epochs,
        help=f"baseline epochs (default: {BaselineTrainingArgs.epochs}, as `lipagent baseline train`)",
    )
    parser.add_argument("--bootstrap", type=int, default=10_000, help="bootstrap draws (default: 10000)")
    parser.add_argument("--num-proc", type=int, help="workers for building the datasets (default: cores, max 8)")
    parser.add_argument(
        "--work",
        type=Path,
        default=Path("bench-accuracy"),
        help="folder for the variants' datasets and cache (reused by a rerun; default: ./bench-accuracy)",
    )
    parser.add_argument(
        "--build-only",
        action="store_true",
        help="build the variants' datasets and stop: seeds can then train in parallel processes (one --seeds each, "
        "one thread each), and a last run with every seed reads their predictions back into one table",
    )
    parser.add_argument("--json", type=Path, help="also write the table as JSON here")
    parser.add_argument("--markdown", type=Path, help="also write the table as Markdown here")
    parser.add_argument("--progress", action="store_true", help="show a progress bar for every training run")
    args = parser.parse_args(argv)
    if args.folds < 1:
        parser.error("--folds must be at least 1")
    other_speakers(parser, args)
    return args


def add_other_speakers(parser: argparse.ArgumentParser, what: str, verb: str) -> None:
    """--other-speakers and --no-other-speakers, which `other_speakers` resolves."""
    parser.add_argument(
        "--other-speakers",
        type=Path,
        action="append",
        help=f"a folder laid out like Zenodo's zips (sN.zip beside alignments.zip) {what} (repeatable; default: "
        "../shared/grid-s31 where it exists)",
    )
    parser.add_argument("--no-other-speakers", action="store_true", help=f"{verb} --speakers' clips only")


def other_speakers(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """args.other_speakers: the folders given, ../shared/grid-s31 where none were and it exists, or none."""
    default_others = [p for p in [REPO.parent / "shared" / "grid-s31"] if p.is_dir()]
    args.other_speakers = [] if args.no_other_speakers else args.other_speakers or default_others
    for folder in args.other_speakers:
        if not folder.is_dir():
            parser.error(f"--other-speakers: no folder at {folder}")


def report(
    name: str, run: Callable[[argparse.Namespace], dict], markdown: Callable[[dict], str], args: argparse.Namespace
) -> int:
    """Run a benchmark, print its Markdown table and write --json / --markdown; a user mistake is one line."""
    try:
        table = run(args)
    except (ValueError, OSError) as error:
        print(f"{name}: error: {error}", file=sys.stderr)
        return 2
    text = markdown(table)
    print("\n" + text)
    if args.json:
        args.json.write_text(json.dumps(table, indent=2, default=str))
    if args.markdown:
        args.markdown.write_text(text + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.build_only:
        return report("bench_accuracy", run, lambda table: f"built the datasets of {', '.join(table['built'])}", args)
    return report("bench_accuracy", run, markdown, args)


if __name__ == "__main__":
    sys.exit(main())
