"""`lipagent train`: LoRA fine-tuning of Gemma 3n, the same as `train/sft.py` (TRL's flags and --config YAML)."""

from __future__ import annotations

import argparse

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


def run(args: argparse.Namespace) -> int:
    from lipagent.model.training import TrainingSetupError, parse_args, train

    try:
        train(*parse_args(args.train_argv, description=DESCRIPTION, prog="lipagent train"))
    except TrainingSetupError as error:
        raise ValueError(str(error)) from None
    return 0
