"""Reading without alignments: how well the visual speech-span detector finds GRID's spoken part, and what it
costs in reading accuracy, on every real s1 clip of ../shared/grid.

    python bench/bench_speech.py                                  # the default detector
    python bench/bench_speech.py --detector stop_threshold=0.03 --detector hangover=8,motion_weight=0

For every clip: Face Mesh in tracking mode on every frame (timed), the detector's span against the `.align` span
(start and end errors in frames), and three mosaics of the same clip, sampled over the aligned span, the detected
span and the whole clip. The baseline lip reader is trained on aligned-span mosaics (what `lipagent prepare`
builds) with K-fold cross-fitting, so every clip is read by a model that never saw it, under each sampling; WER per
condition and seed, and each condition's paired difference from the aligned span with a bootstrap 95% interval
over clips. `--train-on-detected` adds, for each detector, a reader trained on its spans' mosaics reading its spans (the
question whether `prepare` should offer detected spans for training). The aligned clips of other speakers
(`--other-speakers`, by default the s31 clips of ../shared/grid-s31) get span errors of their own, one row per
speaker: too few to train a reader on, enough to see whether a rule tuned on s1 holds on another face. A benchmark:
it prints figures.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import zipfile
from dataclasses import fields, replace
from pathlib import Path

import numpy as np
from bench_accuracy import (
    Variant,
    add_other_speakers,
    all_cells,
    build,
    fold_of,
    merged,
    other_speakers,
    paired_interval,
    parse_variant,
    report,
    subset,
    word_errors,
)

from lipagent.config import DEFAULT_CONFIG, MosaicConfig
from lipagent.data.align import parse_alignment
from lipagent.model.baseline import mosaic_cells, sentences_of
from lipagent.model.baseline_config import BaselineArch, BaselineTrainingArgs
from lipagent.model.baseline_training import CellSet, fit, predict_logits
from lipagent.scoring.metrics import compute_grid_metrics
from lipagent.transform.mouth import process_landmarker
from lipagent.transform.pipeline import ClipRejected, clip_mosaic, decode_all
from lipagent.transform.speech import DEFAULT_SPEECH, NoSpeechFound, SpeechConfig, detect_span, mouth_opening

REPO = Path(__file__).resolve().parents[1]


def parse_detector(text: str, base: SpeechConfig = DEFAULT_SPEECH) -> SpeechConfig:
    """`name=value` overrides of `base` (the default SpeechConfig), comma-separated ('default' for none)."""
    kinds = {f.name: type(getattr(DEFAULT_SPEECH, f.name)) for f in fields(SpeechConfig)}
    values = {}
    for token in filter(None, (t.strip() for t in text.split(","))):
        if token == "default":
            continue
        name, _, value = token.partition("=")
        if name not in kinds:
            raise ValueError(f"unknown detector setting {name!r}; known: {', '.join(kinds)}")
        values[name] = kinds[name](value)
    return replace(base, **values)


def mosaic_variant(text: str) -> Variant:
    """--mosaic's value, a bad setting said by argparse in the setting's own words."""
    try:
        return parse_variant(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def unpack(grid_dir: Path, folder: Path, speaker: str) -> None:
    for name in (f"{speaker}.zip", "alignments.zip"):
        with zipfile.ZipFile(grid_dir / name) as archive:
            archive.extractall(folder)


def clip_conditions(
    config: MosaicConfig,
    path: Path,
    aligned: tuple[int, int],
    detectors: dict[str, SpeechConfig],
    cost: dict[str, list[float]],
    shifts: list[int],
) -> tuple[dict[str, bytes], dict[str, tuple[int, int] | None]]:
    """The clip's mosaics under every sampling (None where a detector found no speech) and the detected spans."""
    started = time.perf_counter()
    frames = decode_all(path)
    decoded = time.perf_counter()
    points = process_landmarker(config, mode="tracking").clip_points(frames)
    openings = [mouth_opening(p) for p in points]
    tracked = time.perf_counter()
    mosaics = {"aligned span": clip_mosaic(frames, aligned, config).jpeg}
    sampled = time.perf_counter()
    cost["decode every frame"].append(decoded - started)
    cost["landmarks (tracking) on every frame"].append(tracked - decoded)
    cost["12-frame mosaic (landmarks, crop, JPEG)"].append(sampled - tracked)
    spans: dict[str, tuple[int, int] | None] = {}
    for name, detector in detectors.items():
        try:
            spans[name] = detect_span(openings, detector)
            mosaics[name] = clip_mosaic(frames, spans[name], config).jpeg
        except (NoSpeechFound, ClipRejected):
            spans[name] = None
    last = len(frames) - 1
    start, end = aligned
    others = {"whole clip": (0, last)}
    for shift in shifts:
        others[f"aligned, start {shift:+d}"] = (min(max(start + shift, 0), end - 1), end)
        others[f"aligned, end {shift:+d}"] = (start, min(max(end + shift, start + 1), last))
    for name, span in others.items():
        try:  # a condition the pipeline rejects leaves the clip out of the comparison (all conditions or none)
            mosaics[name] = clip_mosaic(frames, span, config).jpeg
        except ClipRejected:
            pass
    return mosaics, spans


def span_error_row(
    detector: str, settings: SpeechConfig, speaker: str, found: list[tuple[tuple[int, int] | None, tuple[int, int]]]
) -> dict:
    """Start and end errors (detected - aligned, frames) of one detector on one speaker's clips."""
    pairs = [(span, aligned) for span, aligned in found if span is not None]
    starts = np.array([s[0] - t[0] for s, t in pairs])
    ends = np.array([s[1] - t[1] for s, t in pairs])
    return {
        "detector": detector,
        "speaker": speaker,
        "settings": str(settings),
        "clips": len(found),
        "no_speech_found": len(found) - len(pairs),
        "start_median": float(np.median(starts)),
        "start_abs_p90": float(np.percentile(abs(starts), 90)),
        "start_abs_mean": float(np.mean(abs(starts))),
        "start_within_3": float(np.mean(abs(starts) <= 3)),
        "end_median": float(np.median(ends)),
        "end_abs_p90": float(np.percentile(abs(ends), 90)),
        "end_within_3": float(np.mean(abs(ends) <= 3)),
        "start_early_share": float(np.mean(starts < 0)),
    }


def other_speaker_errors(
    config: MosaicConfig, folder: Path, detectors: dict[str, SpeechConfig], work: Path
) -> list[dict]:
    """Span errors on every aligned clip of the speakers in a folder laid out like Zenodo's zips (too few clips to
    train a reader on: the question is only whether the detector finds their speech where the .align puts it)."""
    archives = sorted(folder.glob("s*.zip"))
    if not archives or not (folder / "alignments.zip").is_file():
        raise ValueError(f"{folder} holds no sN.zip with an alignments.zip beside it")
    with zipfile.ZipFile(folder / "alignments.zip") as archive:
        alignments = {Path(n).stem: n for n in archive.namelist() if n.endswith(".align")}
        archive.extractall(work)
    rows = []
    for zipped in archives:
        speaker = zipped.stem
        with zipfile.ZipFile(zipped) as archive:
            archive.extractall(work)
        found: dict[str, list] = {name: [] for name in detectors}
        for path in sorted((work / speaker).glob("*.mpg")):
            if path.stem not in alignments:  # paired by video id: the real archive misfiles some speakers' folders
                continue
            alignment = parse_alignment((work / alignments[path.stem]).read_text())
            truth = (alignment.speech_start_frame, alignment.speech_end_frame)
            points = process_landmarker(config, mode="tracking").clip_points(decode_all(path))
            openings = [mouth_opening(p) for p in points]
            for name, detector in detectors.items():
                try:
                    found[name].append((detect_span(openings, detector), truth))
                except NoSpeechFound:
                    found[name].append((None, truth))
        if any(found.values()):
            rows += [span_error_row(name, detectors[name], speaker, pairs) for name, pairs in found.items()]
    return rows


def cells_of(
    mosaics: dict[str, dict[str, bytes]], ids: list[str], condition: str, arch: BaselineArch, config: MosaicConfig
) -> np.ndarray:
    return np.stack([mosaic_cells(mosaics[v][condition], config, arch) for v in ids])


def run(args: argparse.Namespace) -> dict:
    config = args.mosaic.config
    base = DEFAULT_SPEECH.following(config)
    detectors = {
        f"detected ({text})" if text != "default" else "detected span": parse_detector(text, base)
        for text in args.detector
    }
    args.work.mkdir(parents=True, exist_ok=True)
    print("[1/4] the aligned-span dataset (lipagent prepare)", flush=True)
    dataset = build(args.mosaic, args)
    arch = BaselineArch()
    mosaic, cells = all_cells(dataset, arch)
    aligned = merged(cells.values())
    clips = args.work / "clips"
    if not (clips / args.speakers[0]).is_dir():
        unpack(args.grid_dir, clips, args.speakers[0])
    print(f"[2/4] landmarks on every frame, spans and mosaics of {len(aligned)} clips", flush=True)
    mosaics: dict[str, dict[str, bytes]] = {}
    spans: dict[str, dict[str, tuple[int, int] | None]] = {}
    truth: dict[str, tuple[int, int]] = {}
    cost: dict[str, list[float]] = {
        "decode every frame": [],
        "landmarks (tracking) on every frame": [],
        "12-frame mosaic (landmarks, crop, JPEG)": [],
    }
    for n, video_id in enumerate(aligned.video_ids):
        speaker = aligned.speakers[n]
        alignment = parse_alignment((clips / "alignments" / speaker / f"{video_id}.align").read_text())
        truth[video_id] = (alignment.speech_start_frame, alignment.speech_end_frame)
        mosaics[video_id], spans[video_id] = clip_conditions(
            config, clips / speaker / f"{video_id}.mpg", truth[video_id], detectors, cost, args.shifts
        )
        if (n + 1) % 50 == 0:
            print(f"  {n + 1}/{len(aligned)}", flush=True)
    conditions = [
        "aligned span",
        *detectors,
        "whole clip",
        *(f"aligned, {side} {shift:+d}" for shift in args.shifts for side in ("start", "end")),
    ]
    usable = [v for v in aligned.video_ids if all(c in mosaics[v] for c in conditions)]
    print(f"[3/4] training the baseline on aligned spans, {args.folds}-fold x seeds {args.seeds}", flush=True)
    index = {v: i for i, v in enumerate(aligned.video_ids)}
    folds = {v: fold_of(v, args.folds) for v in aligned.video_ids}
    trained_on = {"aligned": aligned}

    def detector_set(detector: str) -> CellSet:
        """The aligned set's clips for which the detector found speech, with the detector's mosaics."""
        found = subset(aligned, np.array([detector in mosaics[v] for v in aligned.video_ids]))
        return replace(found, cells=cells_of(mosaics, found.video_ids, detector, arch, config))

    for detector in detectors if args.train_on_detected else []:
        trained_on[detector] = detector_set(detector)
    if args.train_on_mix:
        first = next(iter(detectors))
        trained_on[f"aligned + {first}"] = merged([aligned, detector_set(first)])
    predictions: dict[str, dict[int, dict[str, str]]] = {}
    for seed in args.seeds:
        for k in range(args.folds):
            test_ids = [v for v in usable if folds[v] == k]
            for source, train_set in trained_on.items():
                train = subset(train_set, np.array([folds[v] != k for v in train_set.video_ids]))
                started = time.perf_counter()
                mix = source.startswith("aligned + ")
                training = BaselineTrainingArgs(
                    dataset=str(dataset),
                    out=Path("unused"),
                    epochs=args.mix_epochs if mix else args.epochs,
                    seed=seed * 1000 + k,
                    arch=arch,
                )
                model, _ = fit(train, training, mosaic, progress=False)
                read = conditions if source == "aligned" else [source.removeprefix("aligned + ")]
                if mix:  # its own aligned-span reading too: what detected spans cost the same reader
                    read = ["aligned span", *read]
                for condition in read:
                    name = condition
                    if mix:
                        epochs = f"{args.mix_epochs} epoch{'s' * (args.mix_epochs != 1)}"
                        name += f", reader trained on aligned + detected spans ({epochs})"
                    elif source != "aligned":
                        name += ", reader trained on its spans"
                    cells = cells_of(mosaics, test_ids, condition, arch, config)
                    sentences = sentences_of(predict_logits(model, cells))
                    predictions.setdefault(name, {}).setdefault(seed, {}).update(zip(test_ids, sentences))
                print(
                    f"  seed {seed} fold {k + 1}/{args.folds} ({source}): trained on {len(train)}, "
                    f"read {len(test_ids)} clips ({time.perf_counter() - started:.0f} s)",
                    flush=True,
                )
    print("[4/4] scoring", flush=True)
    texts = {v: aligned.texts[index[v]] for v in usable}
    refs = [texts[v] for v in usable]
    per_clip = {
        name: np.mean([[word_errors(p[seed][v], texts[v]) for v in usable] for seed in p], axis=0)
        for name, p in predictions.items()
    }
    rows = []
    for name, by_seed in predictions.items():
        wers = {seed: compute_grid_metrics([by_seed[seed][v] for v in usable], refs)["wer"] for seed in by_seed}
        row = {"condition": name, "wer_by_seed": wers, "wer": float(np.mean(list(wers.values())))}
        if name != "aligned span":
            row["diff"], row["diff_low"], row["diff_high"] = paired_interval(
                per_clip[name], per_clip["aligned span"], 6, args.bootstrap
            )
        rows.append(row)
    speaker = args.speakers[0]
    errors = [
        span_error_row(name, detectors[name], speaker, [(spans[v].get(name), truth[v]) for v in aligned.video_ids])
        for name in detectors
    ]
    for folder in args.other_speakers:
        print(f"  span errors on {folder}", flush=True)
        errors += other_speaker_errors(config, folder, detectors, args.work / "other" / folder.name)
    costs = {name: statistics.median(values) * 1000 for name, values in cost.items()}
    return {
        "clips": len(usable),
        "folds": args.folds,
        "seeds": args.seeds,
        "epochs": args.epochs,
        "wer": rows,
        "span_errors": errors,
        "cost_ms_median": costs,
        "mosaic": config.describe(),
    }


def markdown(table: dict) -> str:
    seeds = table["seeds"]
    lines = [
        "| detector | speaker | start error, median (frames) | start abs, mean | start abs, 90th pct | "
        "start within 3 | end error, median | end abs, 90th pct | end within 3 | no speech found |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for e in table["span_errors"]:
        lines.append(
            f"| {e['detector']} | {e['speaker']} | {e['start_median']:+.0f} | {e['start_abs_mean']:.1f} | "
            f"{e['start_abs_p90']:.0f} | {e['start_within_3']:.0%} | {e['end_median']:+.0f} | "
            f"{e['end_abs_p90']:.0f} | {e['end_within_3']:.0%} | {e['no_speech_found']} of {e['clips']} |"
        )
    lines += [
        "",
        "| frames sampled over | "
        + " | ".join(f"WER seed {s}" for s in seeds)
        + " | mean WER | vs aligned span (95% CI) |",
        "|---|" + "---|" * (len(seeds) + 2),
    ]
    for row in table["wer"]:
        diff = (
            f"{row['diff'] * 100:+.1f} pts ({row['diff_low'] * 100:+.1f} to {row['diff_high'] * 100:+.1f})"
            if "diff" in row
            else "reference"
        )
        wers = " | ".join(f"{row['wer_by_seed'][s]:.3f}" for s in seeds)
        lines.append(f"| {row['condition']} | {wers} | {row['wer']:.3f} | {diff} |")
    lines += ["", "| per clip, one core (median) | ms |", "|---|---|"]
    lines += [f"| {name} | {ms:.0f} |" for name, ms in table["cost_ms_median"].items()]
    lines += [
        "",
        f"{table['clips']} real s1 clips, {table['folds']}-fold cross-fitting, {len(seeds)} seed(s), "
        f"{table['epochs']} epochs; readers trained on aligned-span mosaics unless said otherwise; {table['mosaic']}",
    ]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--detector",
        action="append",
        help="detector settings to try, `name=value,...` overrides "
        "of lipagent.transform.speech.SpeechConfig (repeatable; default: the defaults)",
    )
    parser.add_argument(
        "--mosaic",
        type=mosaic_variant,
        default=Variant("default", DEFAULT_CONFIG),
        help="mosaic settings for everything the bench makes (the landmarks the detector reads included), as "
        "bench_accuracy.py's variants: `default`, or `setting=value` tokens, e.g. `landmarker=face_landmarker`",
    )
    parser.add_argument("--grid-dir", type=Path, default=REPO.parent / "shared" / "grid")
    parser.add_argument("--speakers", nargs=1, default=["s1"], help="one speaker whose clips are used (default: s1)")
    add_other_speakers(
        parser, "whose aligned clips get span errors of their own, one row per speaker", "span errors on"
    )
    parser.add_argument("--limit", type=int, help="only the first N videos by id (smoke runs)")
    parser.add_argument("--folds", type=int, default=3, help="cross-fitting folds (default: 3)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="training seeds (default: 0 1)")
    parser.add_argument("--epochs", type=int, default=BaselineTrainingArgs.epochs)
    parser.add_argument("--bootstrap", type=int, default=10_000)
    parser.add_argument(
        "--shifts",
        type=int,
        nargs="*",
        default=[],
        help="also read aligned spans with the start or the end moved by these many frames (how "
        "sensitive the reader is to where the span lies)",
    )
    parser.add_argument(
        "--train-on-detected",
        action="store_true",
        help="also train a reader on each detector's spans and read its spans",
    )
    parser.add_argument(
        "--train-on-mix",
        action="store_true",
        help="also train a reader on aligned and first-detector spans together (each clip twice, as `prepare "
        "--speech-span both` builds its train split) and read both kinds of span: span variety as augmentation",
    )
    parser.add_argument(
        "--mix-epochs",
        type=int,
        help="epochs of the --train-on-mix reader (default: half of --epochs, so it takes as many optimizer steps "
        "as the other readers on its twice-as-long training set)",
    )
    parser.add_argument("--num-proc", type=int, help="workers for building the dataset")
    parser.add_argument("--work", type=Path, default=Path("bench-speech"), help="working folder (reused by reruns)")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args(argv)
    args.detector = args.detector or ["default"]
    other_speakers(parser, args)
    args.mix_epochs = args.mix_epochs or max(1, args.epochs // 2)
    if args.folds < 2:
        parser.error("--folds must be at least 2 (every clip is read by a model that never saw it)")
    return args


def main(argv: list[str] | None = None) -> int:
    return report("bench_speech", run, markdown, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
