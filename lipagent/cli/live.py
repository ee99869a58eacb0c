"""`lipagent live`: read lips from a camera or a stream, one line per utterance (the app is lipagent/live.py)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from lipagent.cli.options import HelpFormatter
from lipagent.readers.factory import add_reader_arguments

INTERRUPTED = "stopped; what --save kept stays"


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "live",
        help="read lips from a camera or a stream, one line per utterance",
        formatter_class=HelpFormatter,
        description="Watch a camera (or a video file or stream URL), find each utterance from the "
        "mouth's movement, and print its time span and transcription as soon as it ends. The mosaic "
        "is built exactly as for training (the model's recorded settings); the model runs off the "
        "capture loop, so a slow model never holds up the camera.",
    )
    parser.add_argument("--camera", type=int, default=0, help="camera index")
    parser.add_argument("--source", help="a video file or stream URL instead of a camera")
    parser.add_argument(
        "--fast",
        action="store_true",
        help="with --source: read as fast as possible instead of at the video's own frame rate",
    )
    parser.add_argument(
        "--show",
        action="store_true",
        help="open a window with the image, the mouth box, the last mosaic and text (q or Esc quits)",
    )
    parser.add_argument("--save", type=Path, help="keep each utterance's frames, mosaic and text in this folder")
    add_reader_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from lipagent.live import LiveStats, open_source, run_live, source_name
    from lipagent.readers.factory import reader_from_args

    if args.source is not None and not ("://" in args.source or Path(args.source).is_file()):
        raise FileNotFoundError(f"{args.source}: no such file (give a video file, or a stream URL)")
    if args.save is not None:
        try:
            args.save.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ValueError(f"--save {args.save}: cannot be created ({error.strerror})") from None
        if not os.access(args.save, os.W_OK):
            raise ValueError(f"--save {args.save}: cannot be written to")
    opened = open_source(args.camera, args.source)  # a missing camera is reported before the model loads
    reader = reader_from_args(args)
    print(reader.description, file=sys.stderr)
    what = source_name(args.camera, args.source)
    print(f"reading lips from {what}; one line per utterance (Ctrl-C to stop)", file=sys.stderr)

    def emit(line: str) -> None:
        print(line, flush=True)

    stats = LiveStats()
    try:
        run_live(
            reader,
            camera=args.camera,
            source=args.source,
            pace=not args.fast,
            display=args.show,
            save=args.save,
            emit=emit,
            opened=opened,
            stats=stats,
        )
    finally:
        if stats.frames:
            print(stats.summary(), file=sys.stderr)
    return 0
