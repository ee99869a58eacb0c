"""The `lipagent` commands: one module each (`register` adds its parser, `run` does its work), and the one function
that parses a command line and runs it."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from types import ModuleType

from lipagent import interrupt
from lipagent.cli import baseline, eval, export, live, prepare, preview, push, train, transcribe, validate

COMMANDS: tuple[ModuleType, ...] = (prepare, validate, preview, baseline, train, eval, push, transcribe, live, export)

EPILOG = """examples:
  lipagent prepare --speakers s1 s2 s3 s4 s5 --out grid-mosaics      # from Zenodo
  lipagent prepare --grid-dir /data/grid --speakers s1 --out grid-mosaics --num-proc 8
  lipagent validate grid-mosaics
  lipagent preview grid-mosaics --out sheet.png
  lipagent baseline train grid-mosaics --out baseline                 # the yardstick, minutes on a CPU
  lipagent train --config train/configs/gemma3n-e4b-lora.yaml --dataset_name grid-mosaics --out run
  lipagent eval --model run/final-adapter --dataset grid-mosaics --baseline baseline --out eval
  lipagent transcribe clip.mp4 --model team/gemma3n-lipreader-lora [--load-in-4bit]
  lipagent live --model baseline                                      # the default camera
  lipagent export run/final-adapter --gguf lipreader-gguf             # llama.cpp, 4 bits
  lipagent push adapter run/final-adapter --repo team/gemma3n-lipreader-lora --eval eval/metrics.json
  lipagent demo                                                       # the whole loop, offline, no GPU
"""


def build_parser(commands: Sequence[ModuleType] = COMMANDS) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lipagent",
        description="LipAgent: teach a vision-language model to read lips, from GRID videos to a model on a laptop.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in commands:
        command.register(sub)
    return parser


def parse_command_line(argv: Sequence[str], commands: Sequence[ModuleType] = COMMANDS) -> argparse.Namespace:
    """The parsed command; `lipagent train ...` hands everything after `train` to the training parser (TRL's
    HfArgumentParser, with --config YAML), as `accelerate launch train/sft.py ...` does. Done before argparse: its
    REMAINDER refuses a remainder that starts with an option (`train --config ...`)."""
    argv = list(argv)
    position = next((i for i, arg in enumerate(argv) if not arg.startswith("-")), None)
    if position is not None and argv[position] == "train":
        verbose = "-v" in argv[:position] or "--verbose" in argv[:position]
        return argparse.Namespace(command="train", verbose=verbose, train_argv=argv[position + 1 :], run=train.run)
    return build_parser(commands).parse_args(argv)


def run_command(argv: Sequence[str] | None = None, commands: Sequence[ModuleType] = COMMANDS) -> int:
    """Parse and run one command; a user's mistake (a ValueError or an OS error) is one line and status 2."""
    args = parse_command_line(sys.argv[1:] if argv is None else argv, commands)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    kept = next((getattr(c, "INTERRUPTED", None) for c in commands if c.__name__.endswith(f".{args.command}")), None)
    interrupt.say_when_interrupted(f"lipagent {args.command}: interrupted; {kept or 'nothing was written'}")
    try:
        return args.run(args)
    except (ValueError, OSError, ConnectionError) as error:
        print(f"lipagent {args.command}: error: {error}", file=sys.stderr)
        return 2
