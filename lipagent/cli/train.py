"""`lipagent train`: LoRA fine-tuning of Gemma 3n, the same as `train/sft.py` (TRL's flags and --config YAML)."""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import importlib.util
import shutil
from pathlib import Path

INTERRUPTED = "checkpoints saved so far are kept; the same command with --resume_from_checkpoint last resumes"
DESCRIPTION = (
    "lipagent train: LoRA fine-tuning of Gemma 3n on GRID mosaics with TRL's SFTTrainer, the same as "
    "train/sft.py (use `accelerate launch train/sft.py` for several GPUs). Every flag below is also a "
    "key of the --config YAML; train/configs/gemma3n-e4b-lora.yaml is the recipe."
)


def register(commands: argparse._SubParsersAction) -> None:
    """Only the name: everything after `train` goes to TRL's parser (see `lipagent.cli.parse_command_line`)."""
    commands.add_parser(
        "train", help="LoRA fine-tuning with TRL (train/sft.py's flags; `lipagent train -h` lists them)", add_help=False
    )


HELP_PACKAGES = ("lipagent", "trl", "transformers", "peft", "torch")
"""The packages whose versions decide what `lipagent train --help` says."""
HELP_SOURCES = ("lipagent.model.training",)
"""The modules that define LipAgent's own training flags: in a checkout (an editable install) they change while the
version stays."""


def training_help() -> str:
    """The training parser's help, cached per installed versions, source of the flags and terminal width: building
    it imports torch, PEFT and TRL, which takes seconds, to print text that changes only when they do."""
    versions = []
    for package in HELP_PACKAGES:
        try:
            versions.append(f"{package}={importlib.metadata.version(package)}")
        except importlib.metadata.PackageNotFoundError:
            versions.append(f"{package}=none")
    for module in HELP_SOURCES:
        source = Path(importlib.util.find_spec(module).origin).read_bytes()
        versions.append(f"{module}={hashlib.sha256(source).hexdigest()}")
    versions.append(f"description={DESCRIPTION}")
    versions.append(f"columns={shutil.get_terminal_size().columns}")
    from lipagent.config import cache_root
    from lipagent.outputs import write_file

    cached = cache_root() / f"train-help-{hashlib.sha256(' '.join(versions).encode()).hexdigest()[:16]}.txt"
    if cached.is_file():
        return cached.read_text(encoding="utf-8")
    from lipagent.model.training import make_parser

    text = make_parser(DESCRIPTION, "lipagent train").format_help()
    try:
        write_file(cached, text.encode())
    except OSError:
        pass  # an unwritable cache only costs the next --help its seconds
    return text


def run(args: argparse.Namespace) -> int:
    if any(arg in ("-h", "--help") for arg in args.train_argv):
        print(training_help(), end="")
        return 0
    from lipagent.model.training import TrainingSetupError, parse_args, train

    try:
        train(*parse_args(args.train_argv, description=DESCRIPTION, prog="lipagent train"))
    except TrainingSetupError as error:
        raise ValueError(str(error)) from None
    return 0
