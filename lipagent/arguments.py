"""Argument types shared by the lipagent commands and the scripts that are their twins (eval/run_eval.py)."""

from __future__ import annotations

import argparse


def positive_int(text: str) -> int:
    """An argparse type for counts (workers, clips, epochs): `--num-proc -3` is a usage error, not a silent default."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value
