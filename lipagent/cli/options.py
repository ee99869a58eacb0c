"""What several `lipagent` commands share: the help layout and the mosaic flags, generated from `MosaicConfig`'s
fields so a new setting is a flag without a line here."""

from __future__ import annotations

import argparse
from dataclasses import fields

from lipagent.config import DEFAULT_CONFIG, MosaicConfig
from lipagent.transform.speech import DEFAULT_SPEECH


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows a default only where there is one worth showing."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default is None or action.default is False or "default" in (action.help or ""):
            return action.help or ""
        return super()._get_help_string(action)


def add_mosaic_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per MosaicConfig field (`--lip-padding`, `--landmarks`, ...), with its type, choices and words."""
    group = parser.add_argument_group(
        "mosaic settings",
        "how mouths are found, cut and tiled (the defaults read best in bench/bench_accuracy.py; the dataset card "
        "records what was used, and models trained on it read with the same)",
    )
    for setting in fields(MosaicConfig):
        default = getattr(DEFAULT_CONFIG, setting.name)
        flag = "--" + setting.name.replace("_", "-")
        words, choices = setting.metadata["help"], setting.metadata["choices"]
        if isinstance(default, bool):
            group.add_argument(flag, action=argparse.BooleanOptionalAction, default=default, help=words)
        else:
            group.add_argument(flag, type=type(default), choices=choices, default=default, help=words)


def mosaic_config(args: argparse.Namespace) -> MosaicConfig:
    """The MosaicConfig the mosaic flags describe (a bad combination is a one-line ValueError, found here rather than
    in the first worker that looks for speech)."""
    config = MosaicConfig(**{setting.name: getattr(args, setting.name) for setting in fields(MosaicConfig)})
    DEFAULT_SPEECH.following(config)
    return config
