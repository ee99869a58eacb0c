"""The `lipagent` command: prepare, validate and preview GRID mosaic datasets, and a runnable demo."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from lipagent.config import ZenodoRecord

class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows a default only where there is one worth showing."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default in (None, False) or "default" in (action.help or ""):
            return action.help or ""
        return super()._get_help_string(action)


EPILOG = """examples:
  lipagent prepare --speakers s1 s2 s3 s4 s5 --out grid-mosaics      # from Zenodo
  lipagent prepare --grid-dir /data/grid --speakers s1 --out grid-mosaics --num-proc 8
  lipagent validate grid-mosaics
  lipagent preview grid-mosaics --out sheet.png
  lipagent transcribe clip.mp4 --adapter team/gemma3n-lipreader-lora [--load_in_4bit]
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
    p.add_argument("--limit", type=int, help="use only the first N videos (by video id) of the chosen speakers")
    p.add_argument("--split-scheme", choices=("overlapped", "unseen"), default="overlapped",
                   help="overlapped: 80/10/10 of each speaker's videos; unseen: s1, s2, s20, s22 held out as test")
    p.add_argument("--num-proc", type=int, help="worker processes for the mosaic transform (default: cores, max 8)")
    p.add_argument("--cache-dir", type=Path, help="datasets cache for downloads and intermediate results "
                   "(default: the Hugging Face datasets cache)")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.add_argument("--dry-run", action="store_true", help="say what would be read or fetched, and how big, then stop")
    p.add_argument("--zenodo-url", default=ZenodoRecord.base_url, help="Zenodo server (for mirrors and tests)")


def _run_prepare(args: argparse.Namespace) -> int:
    from lipagent.grid_files import check_speakers

    speakers = check_speakers(args.speakers)
    if args.dry_run:
        return _dry_run(args, speakers)
    from lipagent.prepare import PrepareOptions, prepare

    options = PrepareOptions(
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
    from lipagent.dry_run import local_plan, zenodo_plan
    from lipagent.prepare import make_builder, PrepareOptions
    from lipagent.zenodo import human_size

    if args.grid_dir:
        plan = local_plan(args.grid_dir, speakers)
        print(f"would read from {args.grid_dir}:")
    else:
        builder = make_builder(PrepareOptions(speakers=tuple(speakers), out=args.out, cache_dir=args.cache_dir,
                                              zenodo_url=args.zenodo_url))
        plan = zenodo_plan(builder._cache_downloaded_dir, speakers, args.zenodo_url)
        print(f"would fetch from Zenodo record {ZenodoRecord.record_id} (files already in the cache are not fetched again):")
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
    from lipagent.validate import validate_folder

    report = validate_folder(args.folder)
    print(report.text())
    return 0 if report.ok else 1


def _run_preview(args: argparse.Namespace) -> int:
    from lipagent.preview import preview

    print(f"wrote {preview(args.folder, args.out, per_split=args.per_split)}")
    return 0


def _run_demo(args: argparse.Namespace) -> int:
    from lipagent.demo import run_demo

    run_demo(args.out, num_proc=args.num_proc)
    return 0


def _run_transcribe(args: argparse.Namespace) -> int:
    from lipagent.reader import LipReader

    if not Path(args.video).is_file():
        raise FileNotFoundError(f"{args.video}: no such file")
    speech = (args.start_frame, args.end_frame) if args.start_frame is not None else None
    reader = LipReader.from_pretrained(args.adapter, args.base_model, load_in_4bit=args.load_in_4bit,
                                       device=args.device, dtype=args.dtype, decoding=args.decoding)
    print(reader.plan.reason, file=sys.stderr)
    print(reader.transcribe_video(args.video, speech))
    return 0


def _run_export(args: argparse.Namespace) -> int:
    from lipagent.reader import export_merged

    print(f"wrote {export_merged(args.adapter, args.out, args.base_model, args.dtype)}")
    return 0


def _transcribe_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("transcribe", help="read the lips in a video with a trained adapter",
                       description="Transcribe a video with Gemma 3n + a LoRA adapter, through exactly the "
                       "training preprocessing (Face Mesh mouth crop, 12 sampled frames, mosaic, prompt). "
                       "The transcription is the last line of standard output.",
                       formatter_class=HelpFormatter)
    p.add_argument("video", help="video file (any format OpenCV reads)")
    p.add_argument("--adapter", required=True, help="adapter folder or Hub id")
    p.add_argument("--base_model", "--base-model", dest="base_model",
                   help="base model (default: the one named in the adapter's adapter_config.json)")
    p.add_argument("--load_in_4bit", "--load-in-4bit", dest="load_in_4bit", action="store_true",
                   help="load the base model in 4-bit NF4 (CUDA only)")
    p.add_argument("--decoding", choices=("constrained", "free"), default="constrained",
                   help="constrained: only valid GRID sentences; free: plain greedy decoding")
    p.add_argument("--device", help="cuda, mps or cpu (default: the best available)")
    p.add_argument("--dtype", choices=("float32", "bfloat16", "float16"), help="default: chosen for the device")
    p.add_argument("--start-frame", type=int, help="first frame of speech (default: the whole clip)")
    p.add_argument("--end-frame", type=int, help="last frame of speech (with --start-frame)")
    p = sub.add_parser("export", help="write the base model with the adapter merged in",
                       description="Merge a LoRA adapter into its base model and save both model and processor, "
                       "for runtimes that cannot load PEFT adapters.")
    p.add_argument("--merge", dest="adapter", required=True, help="adapter folder or Hub id to merge")
    p.add_argument("out", type=Path, help="folder to write")
    p.add_argument("--base_model", "--base-model", dest="base_model", help="default: from adapter_config.json")
    p.add_argument("--dtype", choices=("float32", "bfloat16", "float16"), default="bfloat16")


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
    p = sub.add_parser("validate", help="check a prepared dataset folder", description="Check a folder written by "
                       "`lipagent prepare`: shards, splits, columns, image size, GRID texts, no id in two splits.")
    p.add_argument("folder", type=Path)
    p = sub.add_parser("preview", help="write a contact sheet of mosaics", description="Write a PNG contact sheet "
                       "of the first mosaics of every split with their transcriptions.")
    p.add_argument("folder", type=Path)
    p.add_argument("--out", type=Path, default=Path("sheet.png"), help="PNG to write")
    p.add_argument("--per-split", type=int, default=4, help="mosaics shown from each split")
    p = sub.add_parser("demo", help="run the pipeline offline on clips it renders itself",
                       description="Render a small GRID-like corpus from a public-domain face photo, prepare it, "
                       "validate it and preview it: the whole data pipeline with no network and no GPU.")
    p.add_argument("--out", type=Path, default=Path("demo-out"), help="folder for everything the demo writes")
    p.add_argument("--num-proc", type=int, help="worker processes (default: cores, max 8)")
    _transcribe_parser(sub)
    return parser


COMMANDS = {
    "prepare": _run_prepare,
    "validate": _run_validate,
    "preview": _run_preview,
    "demo": _run_demo,
    "transcribe": _run_transcribe,
    "export": _run_export,
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    try:
        return COMMANDS[args.command](args)
    except (ValueError, OSError, ConnectionError) as error:
        print(f"lipagent {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
