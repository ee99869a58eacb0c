"""What an artifact recorded, read in one place: the mosaic settings and span recipe of a prepared dataset (its
card), a LoRA adapter (`lipagent.json`), a baseline (`config.json`) and a GGUF export (`lipagent.json`), and where a
folder-or-Hub-id lives on disk.

Every reader builds its mosaics from the settings its model recorded, and `eval` refuses a dataset built otherwise;
both ask here. A record written before a setting existed reads as the value it was made with (`LEGACY_SETTINGS`),
never as today's default.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lipagent.config import LEGACY_SETTINGS, MosaicConfig

logger = logging.getLogger(__name__)

READING_RECORD = "lipagent.json"
"""Written beside an adapter by training and into a GGUF export: the mosaic settings and prompt it reads with."""
BASELINE_MODEL_TYPE = "lipagent-slot-cnn"
"""`model_type` in a baseline folder's config.json."""
GGUF_FORMAT = "lipagent-gguf"
"""`format` in a GGUF export's lipagent.json: what tells it from an adapter's."""
DATASET_CARD = "README.md"
SPAN_KEY = "speech_span"
"""Which span a dataset's (or a model's training data's) frames were sampled over; recorded inside the mosaic
settings until it became a dataset option, so read from either place."""


class RecordError(ValueError):
    """A folder or name that is not what a command needs, said in words a user can act on."""


@dataclass(frozen=True)
class Record:
    """A LipAgent artifact's record: its kind, how its mosaics are made, which span its data sampled, and the rest
    of what it recorded (`values`: the prompt, the quantization, an export's files)."""

    kind: str
    mosaic: MosaicConfig
    speech_span: str = "aligned"
    values: dict[str, Any] = field(default_factory=dict)

    @property
    def prompt(self) -> str | None:
        return self.values.get("prompt")


def mosaic_and_span(values: dict[str, Any]) -> tuple[MosaicConfig, str]:
    """A recorded `mosaic` block as its MosaicConfig and the span recipe it may still carry."""
    values = dict(values)
    span = values.pop(SPAN_KEY, "aligned")  # every record from before spans were a choice sampled the .align span
    return MosaicConfig.from_dict(values), span


def hub_id_shaped(name: str | Path) -> bool:
    """Whether a name not found on disk can be an owner/name Hub id (not a path: one slash, no leading / . ~)."""
    return not str(name).startswith(("/", ".", "~")) and str(name).count("/") == 1


def resolve(name: str | Path, repo_type: str = "model") -> Path:
    """A local folder for a folder or Hub id: Hub repositories are fetched into (or, with HF_HUB_OFFLINE=1, found in)
    the Hub cache, and then read exactly like a local folder."""
    local = Path(name).expanduser()
    if local.is_dir():
        return local
    what = "dataset folder (write one with `lipagent prepare`)" if repo_type == "dataset" else "model folder"
    if local.exists():
        raise RecordError(f"{name} is a file; pass a {what}")
    if not hub_id_shaped(name):
        raise RecordError(f"{name}: no such {what}, and not an owner/name Hub id")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        return Path(snapshot_download(str(name), repo_type=repo_type))
    except (HfHubHTTPError, LocalEntryNotFoundError, OSError, ValueError) as error:
        raise RecordError(
            f"{name}: no such local folder, and the Hub did not give it ({error.__class__.__name__}: "
            f"{str(error).splitlines()[0]}); with HF_HUB_OFFLINE=1 it must already be in the cache"
        ) from None


def _json(path: Path) -> dict[str, Any] | None:
    try:
        values = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return values if isinstance(values, dict) else None


def _card(folder: Path) -> dict[str, Any] | None:
    """The `lipagent` block of a dataset card's metadata (None: no card, or not one LipAgent wrote)."""
    card = folder / DATASET_CARD
    if not card.is_file():
        return None
    from huggingface_hub import DatasetCard

    try:
        block = DatasetCard.load(card).data.to_dict().get("lipagent")
    except (ValueError, OSError):
        return None
    return block if isinstance(block, dict) and block else None


def record_kind(folder: str | Path) -> str | None:
    """'dataset', 'adapter', 'baseline' or 'gguf' for a folder LipAgent wrote; None for any other."""
    folder = Path(folder)
    reading = _json(folder / READING_RECORD)
    if reading is not None and reading.get("format") == GGUF_FORMAT:
        return "gguf"
    config = _json(folder / "config.json")
    if config is not None and config.get("model_type") == BASELINE_MODEL_TYPE:
        return "baseline"
    if (folder / "adapter_config.json").is_file():
        return "adapter"
    if _card(folder) is not None:
        return "dataset"
    return None


def is_kind(kind: str) -> Callable[[Path], bool]:
    """`is_ours` for lipagent.outputs: whether a folder holds a `kind` LipAgent wrote, the only kind of folder that
    `--overwrite` may replace."""
    return lambda folder: record_kind(folder) == kind


def read_record(folder: str | Path) -> Record:
    """The record of a folder LipAgent wrote (RecordError for any other)."""
    folder = Path(folder)
    kind = record_kind(folder)
    if kind is None:
        raise RecordError(
            f"{folder} is none of what LipAgent writes: a dataset (`lipagent prepare`), a baseline (`lipagent "
            "baseline train`), a LoRA adapter (train/sft.py) or a GGUF export (`lipagent export --gguf`)"
        )
    if kind == "dataset":
        values = _card(folder) or {}
        if "mosaic" not in values:
            raise RecordError(f"the dataset card in {folder} has no `lipagent.mosaic` settings")
    elif kind == "baseline":
        values = _json(folder / "config.json") or {}
    else:
        values = _json(folder / READING_RECORD)
        if values is None:  # an adapter trained before the record: LipAgent 0.1's mosaics, never today's defaults
            logger.warning(
                "%s has no %s: using the LipAgent 0.1 mosaic settings it must have been trained on (%s)",
                folder,
                READING_RECORD,
                ", ".join(f"{k}={v}" for k, v in LEGACY_SETTINGS.items()),
            )
            values = {}
    mosaic, span = mosaic_and_span(values.get("mosaic", {}))
    return Record(kind, mosaic, values.get(SPAN_KEY, span), values)


def read_dataset_record(folder: str | Path) -> Record:
    """The record of a prepared dataset folder; a folder `lipagent prepare` did not write is a RecordError saying so
    (its mosaic settings are unknown, so no model may learn from it or be scored on it)."""
    record = read_record(folder) if record_kind(folder) == "dataset" else None
    if record is None:
        raise RecordError(
            f"{folder} has no dataset card written by `lipagent prepare` (README.md with `lipagent` metadata), so "
            "its mosaic settings are unknown; use a dataset written by `lipagent prepare`"
        )
    return record
