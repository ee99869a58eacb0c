"""The `lipagent` command: prepare, validate and preview GRID mosaic datasets, and a runnable demo."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from lipagent.arguments import positive_int
from lipagent.config import (
    CROP_SHAPES,
    DEFAULT_CONFIG,
    LANDMARK_MODES,
    RESAMPLINGS,
    SPEECH_ONSETS,
    SPEECH_SPANS,
    ZenodoRecord,
)
from lipagent.interrupt import (
    GIVE_UP_AFTER_S,
    interrupted,
    main_process_handles_ctrl_c,
    said_farewell,
    stop_pool_handlers,
)


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows a default only where there is one worth showing."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default is None or action.default is False or "default" in (action.help or ""):
            return action.help or ""
        return super()._get_help_string(action)


EPILOG = """examples:
  lipagent prepare --speakers s1 s2 s3 s4 s5 --out grid-mosaics      # from Zenodo
  lipagent prepare --grid-dir /data/grid --speakers s1 --out grid-mosaics --num-proc 8
  lipagent validate grid-mosaics
  lipagent preview grid-mosaics --out sheet.png
  lipagent baseline train grid-mosaics --out baseline                 # the yardstick, minutes on a CPU
  lipagent transcribe clip.mp4 --model baseline
  lipagent transcribe clip.mp4 --model team/gemma3n-lipreader-lora [--load_in_4bit]
  lipagent export --merge out/gemma3n-lipreader/final-adapter merged-model/
  lipagent demo                                                       # offline, no GPU
"""


def _prepare_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "prepare",
        help="build the mosaic dataset from GRID videos and alignments",
        description="Turn GRID videos + .align files into a Hugging Face dataset of mouth mosaics: "
        "a folder laid out like a Hub dataset repo (data/<split>-NNNNN-of-NNNNN.parquet + README.md card) "
        "that datasets.load_dataset(<out>) reads. Every stage is cached: rerun an interrupted build to resume.",
        formatter_class=HelpFormatter,
    )
    p.add_argument("--speakers", nargs="+", default=["s1"], help="GRID speakers to include (s1 ... s34, no s21)")
    p.add_argument("--out", type=Path, required=True, help="output folder (Hub dataset layout)")
    p.add_argument(
        "--grid-dir",
        type=Path,
        help="folder holding Zenodo's sN.zip and alignments.zip, or their unpacked sN/ and alignments/ trees; "
        "without it the files are downloaded from Zenodo record 3625687 (cached, md5-checked)",
    )
    p.add_argument(
        "--limit", type=positive_int, help="use only the first N videos (by video id) of the chosen speakers"
    )
    p.add_argument(
        "--split-scheme",
        choices=("overlapped", "unseen"),
        default="overlapped",
        help="overlapped: 80/10/10 of each speaker's videos; unseen: s1, s2, s20, s22 held out as test",
    )
    p.add_argument(
        "--num-proc", type=positive_int, help="worker processes for the mosaic transform (default: cores, max 8)"
    )
    p.add_argument(
        "--cache-dir",
        type=Path,
        help="datasets cache for downloads and intermediate results (default: the Hugging Face datasets cache)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.add_argument("--dry-run", action="store_true", help="say what would be read or fetched, and how big, then stop")
    p.add_argument("--zenodo-url", default=ZenodoRecord.base_url, help="Zenodo server (for mirrors and tests)")
    mosaic = p.add_argument_group(
        "mosaic settings",
        "how mouths are found, cut and resized (the defaults read best "
        "in bench/bench_accuracy.py; the dataset card records what was used)",
    )
    mosaic.add_argument(
        "--landmarks",
        choices=LANDMARK_MODES,
        default=DEFAULT_CONFIG.landmarks,
        help="Face Mesh on each sampled frame afresh (static) or tracked from frame to frame",
    )
    mosaic.add_argument(
        "--crop",
        choices=CROP_SHAPES,
        default=DEFAULT_CONFIG.crop,
        help="padded lip box stretched to the cell, or grown to the cell's aspect ratio first",
    )
    mosaic.add_argument(
        "--resampling",
        choices=RESAMPLINGS,
        default=DEFAULT_CONFIG.resampling,
        help="interpolation from the crop to the cell",
    )
    mosaic.add_argument(
        "--speech-span",
        choices=SPEECH_SPANS,
        default=DEFAULT_CONFIG.speech_span,
        help="spread the 12 frames over the .align speech span, over the span the mouth shows (as inference "
        "without alignments finds it), or both: each training clip once per span, the evaluation splits over "
        "the detected span (what the recipe builds for a model that will read clips with no alignment)",
    )
    mosaic.add_argument(
        "--speech-onset",
        choices=SPEECH_ONSETS,
        default=DEFAULT_CONFIG.speech_onset,
        help="where a detected span starts: where the mouth's activity crosses the threshold, or at the first "
        "sharp opening after it (recorded, so readers of this data find spans the same way)",
    )
    mosaic.add_argument(
        "--subpixel-crop",
        action=argparse.BooleanOptionalAction,
        default=DEFAULT_CONFIG.subpixel_crop,
        help="cut the exact (fractional) lip box instead of rounding it to whole pixels",
    )


def _run_prepare(args: argparse.Namespace) -> int:
    from lipagent.data.grid_files import check_speakers

    speakers = check_speakers(args.speakers)
    if args.dry_run:
        return _dry_run(args, speakers)
    from lipagent.data.prepare import PrepareOptions, prepare

    config = DEFAULT_CONFIG.with_overrides(
        {
            "landmarks": args.landmarks,
            "crop": args.crop,
            "resampling": args.resampling,
            "subpixel_crop": str(args.subpixel_crop),
            "speech_span": args.speech_span,
            "speech_onset": args.speech_onset,
        }
    )
    options = PrepareOptions(
        config=config,
        speakers=tuple(speakers),
        out=args.out,
        grid_dir=args.grid_dir,
        limit=args.limit,
        split_scheme=args.split_scheme,
        num_proc=args.num_proc,
        cache_dir=args.cache_dir,
        zenodo_url=args.zenodo_url,
        overwrite=args.overwrite,
    )
    summary = prepare(options)
    print(summary.text())
    print(f"wrote {args.out}/ (load it with datasets.load_dataset({str(args.out)!r}))")
    return 0


def _dry_run(args: argparse.Namespace, speakers: list[str]) -> int:
    from lipagent.data.dry_run import downloads_dir, local_plan, zenodo_plan
    from lipagent.data.zenodo import human_size

    if args.grid_dir:
        plan = local_plan(args.grid_dir, speakers)
        print(f"would read from {args.grid_dir}:")
    else:
        plan = zenodo_plan(downloads_dir(args.cache_dir), speakers, args.zenodo_url)
        print(
            f"would fetch from Zenodo record {ZenodoRecord.record_id} "
            "(files already in the cache are not fetched again):"
        )
    width = max(len(f.name) for f in plan)
    for f in plan:
        print(f"  {f.name:<{width}}  {human_size(f.size):>9}  {f.where}")
    print(f"  {'total':<{width}}  {human_size(sum(f.size for f in plan)):>9}")
    missing = [f.name for f in plan if f.where == "MISSING"]
    if missing:
        print(f"missing: {', '.join(missing)}", file=sys.stderr)
        return 1
    return 0


def _run_validate(args: argparse.Namespace) -> int:
    from lipagent.data.validate import validate_folder

    report = validate_folder(args.folder)
    print(report.text())
    return 0 if report.ok else 1


def _run_preview(args: argparse.Namespace) -> int:
    from lipagent.data.preview import preview
    from lipagent.hub import resolve_dataset

    print(f"wrote {preview(resolve_dataset(args.folder), args.out, per_split=args.per_split)}")
    return 0


def _run_demo(args: argparse.Namespace) -> int:
    from lipagent.demo import run_demo

    run_demo(args.out, num_proc=args.num_proc)
    return 0


def _run_transcribe(args: argparse.Namespace) -> int:
    from lipagent.model.reading import reader_from_args, recorded_config
    from lipagent.transform.pipeline import prepare_video

    if not Path(args.video).is_file():
        raise FileNotFoundError(f"{args.video}: no such file")
    if (args.start_frame is None) != (args.end_frame is None):
        raise ValueError("give both --start-frame and --end-frame, or neither")
    speech = (args.start_frame, args.end_frame) if args.start_frame is not None else args.speech
    # The mosaic first (with the model's recorded settings): a bad video fails in a second, not after a model load.
    clip = prepare_video(args.video, speech, recorded_config(args.model))
    print(clip.describe(), file=sys.stderr)
    reader = reader_from_args(args)
    print(reader.description, file=sys.stderr)
    print(reader.transcribe_mosaic(clip.mosaic.jpeg))
    return 0


def _run_live(args: argparse.Namespace) -> int:
    from lipagent.model.live import run_live
    from lipagent.model.reading import reader_from_args

    if args.source is not None and not ("://" in args.source or Path(args.source).is_file()):
        raise FileNotFoundError(f"{args.source}: no such file (give a video file, or a stream URL)")
    reader = reader_from_args(args)
    print(reader.description, file=sys.stderr)
    what = f"camera {args.camera}" if args.source is None else args.source
    print(f"reading lips from {what}; one line per utterance (Ctrl-C to stop)", file=sys.stderr)

    def emit(line: str) -> None:
        print(line, flush=True)

    try:
        stats = run_live(
            reader,
            camera=args.camera,
            source=args.source,
            pace=not args.fast,
            display=args.show,
            save=args.save,
            emit=emit,
        )
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
        return 130
    print(stats.summary(), file=sys.stderr)
    return 0


def _run_baseline(args: argparse.Namespace) -> int:
    from lipagent.model.baseline_config import BaselineTrainingArgs
    from lipagent.model.baseline_training import train_baseline

    out, history = train_baseline(
        BaselineTrainingArgs(
            dataset=args.dataset,
            out=args.out,
            epochs=args.epochs,
            batch_size=args.batch_size,
            learning_rate=args.learning_rate,
            weight_decay=args.weight_decay,
            label_smoothing=args.label_smoothing,
            max_grad_norm=args.max_grad_norm,
            shift=args.shift,
            flip=args.flip,
            gamma=args.gamma,
            seed=args.seed,
            train_split=args.train_split,
            eval_split=None if args.eval_split == "none" else args.eval_split,
            max_samples=args.max_samples,
            overwrite=args.overwrite,
        )
    )
    last = history[-1]
    score = f", {args.eval_split} WER {last['eval_wer']:.3f}" if "eval_wer" in last else ""
    print(
        f"trained {last['epoch']} epochs: loss {last['loss']:.3f}, training slot accuracy "
        f"{last['train_slot_accuracy']:.3f}{score}"
    )
    print(f"wrote {out}/ (evaluate it with: python eval/run_eval.py --model {out} --dataset {args.dataset})")
    return 0


def _run_export(args: argparse.Namespace) -> int:
    if (args.out is None) == (args.gguf is None):
        raise ValueError("give either OUT (a merged model) or --gguf OUT (llama.cpp files), not both or neither")
    if args.gguf is not None:
        from lipagent.gguf.gguf_export import export_gguf

        print(f"wrote {export_gguf(args.adapter, args.gguf, args.quant, args.base_model, args.overwrite)}")
        return 0
    from lipagent.model.reader import export_merged

    print(f"wrote {export_merged(args.adapter, args.out, args.base_model, args.dtype)}")
    return 0


def _transcribe_parser(sub: argparse._SubParsersAction) -> None:
    from lipagent.model.reading import add_reader_arguments

    p = sub.add_parser(
        "transcribe",
        help="read the lips in a video with a trained model",
        description="Transcribe a video with a baseline lip reader or Gemma 3n + a LoRA adapter, "
        "through exactly the preprocessing the model was trained with (the mosaic settings it "
        "recorded: Face Mesh mouth crop, 12 sampled frames, mosaic; for Gemma the same prompt). "
        "The transcription is the last line of standard output.",
        formatter_class=HelpFormatter,
    )
    p.add_argument("video", help="video file (any format OpenCV reads)")
    add_reader_arguments(p)
    p.add_argument(
        "--speech",
        choices=("auto", "whole"),
        default="auto",
        help="where the 12 frames are taken from: auto = the spoken part, found from the mouth's movement "
        "(as training took it from the alignments); whole = spread over the whole clip",
    )
    p.add_argument("--start-frame", type=int, help="first frame of speech, when you know it (overrides --speech)")
    p.add_argument("--end-frame", type=int, help="last frame of speech (with --start-frame)")
    from lipagent.gguf.llama_cpp_tools import QUANT_CHOICES

    p = sub.add_parser(
        "export",
        help="merge an adapter into its base model, or write it as llama.cpp GGUF files",
        description="Merge a LoRA adapter into its base model and save model and processor (for "
        "runtimes that cannot load PEFT adapters): `lipagent export --merge ADAPTER OUT`. Or write "
        "it for llama.cpp, to read lips on a laptop in 4 bits: `lipagent export --gguf OUT --adapter "
        "ADAPTER`: the text model (quantized, --quant), the vision projector (mmproj, f16), the GRID "
        "grammar (GBNF) and the mosaic settings and prompt the adapter was trained with; "
        "`lipagent transcribe --gguf OUT` reads it. GGUF needs the gguf extra (pip install -e "
        '".[gguf]") and fetches llama.cpp\'s converter of the installed version once.',
        formatter_class=HelpFormatter,
    )
    p.add_argument("--merge", "--adapter", dest="adapter", required=True, help="adapter folder or Hub id")
    p.add_argument("out", type=Path, nargs="?", help="folder for the merged model")
    p.add_argument("--gguf", type=Path, help="folder for the GGUF files (instead of OUT)")
    p.add_argument(
        "--quant",
        choices=QUANT_CHOICES,
        default="Q4_K_M",
        help="GGUF text-model type: Q4_K_M (laptop default), other llama.cpp quantizations, or f16/f32 "
        "(unquantized, for exact comparisons)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an earlier GGUF export in --gguf")
    p.add_argument("--base_model", "--base-model", dest="base_model", help="default: from adapter_config.json")
    p.add_argument(
        "--dtype",
        choices=("float32", "bfloat16", "float16"),
        default="bfloat16",
        help="merged model only (GGUF merges in bfloat16, float32 for --quant f32)",
    )


def _live_parser(sub: argparse._SubParsersAction) -> None:
    from lipagent.model.reading import add_reader_arguments

    p = sub.add_parser(
        "live",
        help="read lips from a camera or a stream, one line per utterance",
        formatter_class=HelpFormatter,
        description="Watch a camera (or a video file or stream URL), find each utterance from the "
        "mouth's movement, and print its time span and transcription as soon as it ends. The mosaic "
        "is built exactly as for training (the model's recorded settings); the model runs off the "
        "capture loop, so a slow model never holds up the camera.",
    )
    p.add_argument("--camera", type=int, default=0, help="camera index")
    p.add_argument("--source", help="a video file or stream URL instead of a camera")
    p.add_argument(
        "--fast",
        action="store_true",
        help="with --source: read as fast as possible instead of at the video's own frame rate",
    )
    p.add_argument(
        "--show",
        action="store_true",
        help="open a window with the image, the mouth box, the last mosaic and text (q or Esc quits)",
    )
    p.add_argument("--save", type=Path, help="keep each utterance's frames, mosaic and text in this folder")
    add_reader_arguments(p)


def _baseline_parser(sub: argparse._SubParsersAction) -> None:
    from lipagent.model.baseline_config import BaselineTrainingArgs as Defaults

    p = sub.add_parser(
        "baseline",
        help="train the baseline lip reader (the accuracy yardstick)",
        description="The baseline lip reader: a small CNN + GRU trained from scratch on the mosaics, "
        "predicting the six GRID slots. It is how LipAgent measures whether its mosaics can be read.",
    )
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    t = actions.add_parser(
        "train",
        help="train it on a prepared dataset",
        formatter_class=HelpFormatter,
        description="Train the baseline on the `image` column of a `lipagent prepare` dataset (a "
        "folder or a Hub id). Writes model.safetensors, config.json (architecture and the "
        "dataset's mosaic settings) and history.json to --out. Deterministic for a --seed on "
        "one machine; the 344 training clips of the 450 real s1 clips train in about 2 minutes "
        "on 2 cores.",
    )
    t.add_argument("dataset", help="dataset folder written by `lipagent prepare`, or a Hub dataset id")
    t.add_argument("--out", type=Path, required=True, help="folder to write the model to")
    t.add_argument("--epochs", type=positive_int, default=Defaults.epochs, help="passes over the training split")
    t.add_argument("--batch-size", type=positive_int, default=Defaults.batch_size, help="clips per step")
    t.add_argument("--learning-rate", type=float, default=Defaults.learning_rate, help="AdamW peak learning rate")
    t.add_argument("--weight-decay", type=float, default=Defaults.weight_decay, help="AdamW weight decay")
    t.add_argument("--label-smoothing", type=float, default=Defaults.label_smoothing, help="cross-entropy smoothing")
    t.add_argument("--max-grad-norm", type=float, default=Defaults.max_grad_norm, help="gradient clipping (0: off)")
    t.add_argument(
        "--shift",
        type=int,
        default=Defaults.shift,
        help="augmentation: random shift in pixels of the halved cells, the same for a clip's 12 cells",
    )
    t.add_argument(
        "--flip",
        action=argparse.BooleanOptionalAction,
        default=Defaults.flip,
        help="augmentation: mirror half the clips",
    )
    t.add_argument(
        "--gamma",
        type=float,
        default=Defaults.gamma,
        help="augmentation: random gamma in [1-g, 1+g] per clip (lighting)",
    )
    t.add_argument("--seed", type=int, default=Defaults.seed, help="seed of every random choice")
    t.add_argument("--train-split", default=Defaults.train_split, help="split to learn from")
    t.add_argument(
        "--eval-split", default=Defaults.eval_split, help="split scored after every epoch (history.json), or 'none'"
    )
    t.add_argument("--max-samples", type=positive_int, help="learn from the first N clips only (smoke runs)")
    t.add_argument("--overwrite", action="store_true", help="replace --out if it holds an earlier baseline")


def _train_eval_push_parsers(sub: argparse._SubParsersAction) -> None:
    """The doors to train/sft.py, eval/run_eval.py and push_to_hub.py: the same functions under one command."""
    from lipagent.hub import add_push_arguments
    from lipagent.scoring.evaluation import add_eval_arguments

    sub.add_parser(
        "train", help="LoRA fine-tuning with TRL (train/sft.py's flags; `lipagent train -h` lists them)", add_help=False
    )
    p = sub.add_parser(
        "eval",
        help="score a lip reader on a dataset split (eval/run_eval.py)",
        description="Score a LoRA adapter, a baseline or a GGUF export on a mosaic dataset split: "
        "metrics.json, predictions.jsonl, report.png in --out.",
        formatter_class=HelpFormatter,
    )
    add_eval_arguments(p)
    p = sub.add_parser(
        "push",
        help="publish a dataset or an adapter to the Hub (push_to_hub.py)",
        description="Publish a prepared dataset or a trained adapter, with its card, to a private "
        "Hub repository (--public to open it; --dry-run --stage-dir DIR to look first).",
        formatter_class=HelpFormatter,
    )
    add_push_arguments(p)


TRAIN_DESCRIPTION = (
    "lipagent train: LoRA fine-tuning of Gemma 3n on GRID mosaics with TRL's SFTTrainer, the same as "
    "train/sft.py (use `accelerate launch train/sft.py` for several GPUs). Every flag below is also a "
    "key of the --config YAML; train/configs/gemma3n-e4b-lora.yaml is the recipe."
)


def _run_train(args: argparse.Namespace) -> int:
    from lipagent.model.training import TrainingSetupError, parse_args, train

    try:
        train(*parse_args(args.train_argv, description=TRAIN_DESCRIPTION, prog="lipagent train"))
    except TrainingSetupError as error:
        raise ValueError(str(error)) from None
    return 0


def _run_eval(args: argparse.Namespace) -> int:
    from lipagent.scoring.evaluation import run_and_report

    return run_and_report(args)


def _run_push(args: argparse.Namespace) -> int:
    from lipagent.hub import run_push

    run_push(args)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lipagent",
        description="LipAgent: GRID lip-reading data for vision-language models.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _prepare_parser(sub)
    p = sub.add_parser(
        "validate",
        help="check a prepared dataset folder",
        description="Check a folder written by "
        "`lipagent prepare`: shards, splits, columns, image size, GRID texts, no id in two splits.",
    )
    p.add_argument("folder", type=Path)
    p = sub.add_parser(
        "preview",
        help="write a contact sheet of mosaics",
        description="Write a PNG contact sheet of the first mosaics of every split with their transcriptions.",
        formatter_class=HelpFormatter,
    )
    p.add_argument("folder", help="a dataset folder written by `lipagent prepare`, or a Hub dataset id")
    p.add_argument("--out", type=Path, default=Path("sheet.png"), help="PNG to write")
    p.add_argument("--per-split", type=positive_int, default=4, help="mosaics shown from each split")
    p = sub.add_parser(
        "demo",
        help="run the pipeline offline on clips it renders itself",
        description="Render a small GRID-like corpus from a public-domain face photo, prepare it, "
        "validate it and preview it: the whole data pipeline with no network and no GPU.",
    )
    p.add_argument("--out", type=Path, default=Path("demo-out"), help="folder for everything the demo writes")
    p.add_argument("--num-proc", type=positive_int, help="worker processes (default: cores, max 8)")
    _baseline_parser(sub)
    _train_eval_push_parsers(sub)
    _transcribe_parser(sub)
    _live_parser(sub)
    return parser


COMMANDS = {
    "prepare": _run_prepare,
    "validate": _run_validate,
    "preview": _run_preview,
    "demo": _run_demo,
    "baseline": _run_baseline,
    "train": _run_train,
    "eval": _run_eval,
    "push": _run_push,
    "transcribe": _run_transcribe,
    "live": _run_live,
    "export": _run_export,
}


INTERRUPTED = {
    "prepare": "--out was not touched; finished chunks of mosaics are kept in the cache, and the same command "
    "resumes from them",
    "baseline": "--out was not touched; training starts over when run again",
    "export": "--out was not touched",
}
"""What an interrupted command leaves, said in its one line."""


def parse_command_line(argv: list[str] | None) -> argparse.Namespace:
    """The parsed command; `lipagent train ...` hands everything after `train` to the training parser (TRL's
    HfArgumentParser, with --config YAML), as `accelerate launch train/sft.py ...` does. Done before argparse: its
    REMAINDER refuses a remainder that starts with an option (`train --config ...`)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    position = next((i for i, arg in enumerate(argv) if not arg.startswith("-")), None)
    if position is not None and argv[position] == "train":
        return argparse.Namespace(
            command="train",
            verbose="-v" in argv[:position] or "--verbose" in argv[:position],
            train_argv=argv[position + 1 :],
        )
    return build_parser().parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_command_line(argv)  # a Ctrl-C here is Python's KeyboardInterrupt: lipagent/__main__.py's to handle
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    farewell = f"lipagent {args.command}: interrupted; {INTERRUPTED.get(args.command, 'nothing was written')}"
    try:
        with main_process_handles_ctrl_c(farewell, GIVE_UP_AFTER_S if args.command == "prepare" else None):
            return COMMANDS[args.command](args)
    except BaseException as error:
        if interrupted():  # whatever surfaced while the interrupted work was torn down
            stop_pool_handlers()
            print(farewell, file=sys.stderr)
            said_farewell()
            return 130
        if isinstance(error, (ValueError, OSError, ConnectionError)):
            print(f"lipagent {args.command}: error: {error}", file=sys.stderr)
            return 2
        raise
