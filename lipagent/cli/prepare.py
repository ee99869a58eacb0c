"""`lipagent prepare`: GRID videos and alignments -> a Hugging Face dataset of mouth mosaics."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lipagent.arguments import positive_int
from lipagent.cli.options import HelpFormatter, add_mosaic_arguments, mosaic_config
from lipagent.config import ZenodoRecord
from lipagent.data.recipe import DEFAULT_SPEECH_SPAN, SPEECH_SPANS

INTERRUPTED = (
    "--out was not touched; finished chunks of mosaics are kept in the cache, and the same command resumes from them"
)


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "prepare",
        help="build the mosaic dataset from GRID videos and alignments",
        description="Turn GRID videos + .align files into a Hugging Face dataset of mouth mosaics: "
        "a folder laid out like a Hub dataset repo (data/<split>-NNNNN-of-NNNNN.parquet + README.md card) "
        "that datasets.load_dataset(<out>) reads. Every stage is cached: rerun an interrupted build to resume.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--speakers", nargs="+", default=["s1"], help="GRID speakers to include (s1 ... s34, no s21)")
    parser.add_argument("--out", type=Path, required=True, help="output folder (Hub dataset layout)")
    parser.add_argument(
        "--grid-dir",
        type=Path,
        help="folder holding Zenodo's sN.zip and alignments.zip, or their unpacked sN/ and alignments/ trees; "
        "without it the files are downloaded from Zenodo record 3625687 (cached, md5-checked)",
    )
    parser.add_argument(
        "--limit", type=positive_int, help="use only the first N videos (by video id) of the chosen speakers"
    )
    parser.add_argument(
        "--split-scheme",
        choices=("overlapped", "unseen"),
        default="overlapped",
        help="overlapped: 80/10/10 of each speaker's videos; unseen: s1, s2, s20, s22 held out as test",
    )
    parser.add_argument(
        "--speech-span",
        choices=SPEECH_SPANS,
        default=DEFAULT_SPEECH_SPAN,
        help="spread the frames over the .align speech span, over the span the mouth shows (as inference "
        "without alignments finds it), or both: each training clip once per span, the evaluation splits over "
        "the detected span (what the recipe builds for a model that will read clips with no alignment)",
    )
    parser.add_argument(
        "--num-proc", type=positive_int, help="worker processes for the mosaic transform (default: cores, max 8)"
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        help="datasets cache for downloads and intermediate results (default: the Hugging Face datasets cache)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    parser.add_argument(
        "--dry-run", action="store_true", help="say what would be read or fetched, and how big, then stop"
    )
    parser.add_argument("--zenodo-url", default=ZenodoRecord.base_url, help="Zenodo server (for mirrors and tests)")
    add_mosaic_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from lipagent.data.grid_files import check_speakers

    speakers = check_speakers(args.speakers)
    config = mosaic_config(args)
    if args.dry_run:
        return dry_run(args, speakers)
    from lipagent.data.prepare import PrepareOptions, prepare

    options = PrepareOptions(
        config=config,
        speech_span=args.speech_span,
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


def dry_run(args: argparse.Namespace, speakers: list[str]) -> int:
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
