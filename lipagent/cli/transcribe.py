"""`lipagent transcribe`: read the lips in a video file with a trained model."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lipagent.cli.options import HelpFormatter
from lipagent.readers.factory import add_reader_arguments


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "transcribe",
        help="read the lips in a video with a trained model",
        description="Transcribe a video with a baseline lip reader, Gemma 3n + a LoRA adapter or a GGUF export, "
        "through exactly the preprocessing the model was trained with (the mosaic settings it "
        "recorded: Face Mesh mouth crop, sampled frames, mosaic; for Gemma the same prompt). "
        "The transcription is the last line of standard output; a video of several utterances gets one line "
        "per utterance with its times, found and printed as `lipagent live` does.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("video", help="video file (any format OpenCV reads)")
    add_reader_arguments(parser)
    parser.add_argument(
        "--speech",
        choices=("auto", "whole"),
        default="auto",
        help="where the mosaic's frames are taken from: auto = the spoken part, found from the mouth's movement "
        "(as training took it from the alignments); whole = spread over the whole clip",
    )
    parser.add_argument("--start-frame", type=int, help="first frame of speech, when you know it (overrides --speech)")
    parser.add_argument("--end-frame", type=int, help="last frame of speech (with --start-frame)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from lipagent.live import utterance_line
    from lipagent.readers.factory import model_folder, reader_from_args
    from lipagent.records import read_record
    from lipagent.transform.pipeline import prepare_utterances, prepare_video

    if not Path(args.video).is_file():
        raise FileNotFoundError(f"{args.video}: no such file")
    if (args.start_frame is None) != (args.end_frame is None):
        raise ValueError("give both --start-frame and --end-frame, or neither")
    if args.start_frame is not None and not 0 <= args.start_frame <= args.end_frame:
        raise ValueError(
            f"--start-frame {args.start_frame} and --end-frame {args.end_frame}: frames count from 0, the first at "
            "most the last"
        )
    speech = (args.start_frame, args.end_frame) if args.start_frame is not None else args.speech
    # The mosaics first (with the model's recorded settings): a bad video fails in a second, not after a model load.
    folder, _ = model_folder(args.model)
    config = read_record(folder).mosaic
    clips = prepare_utterances(args.video, config) if speech == "auto" else [prepare_video(args.video, speech, config)]
    if len(clips) == 1:
        print(clips[0].describe(), file=sys.stderr)
    else:
        print(f"{len(clips)} utterances found, one line each", file=sys.stderr)
    reader = reader_from_args(args)
    print(reader.description, file=sys.stderr)
    for clip in clips:
        start, end = clip.span
        text = reader.transcribe_mosaic(clip.mosaic.jpeg)
        print(text if len(clips) == 1 else utterance_line(start, end, clip.fps, text))
    return 0
