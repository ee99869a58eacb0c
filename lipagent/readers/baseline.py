"""The baseline lip reader (lipagent.model.baseline) behind the common reader interface: the yardstick reads through
the same door as Gemma."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from lipagent.grammar import SLOTS
from lipagent.model.baseline import (
    CONFIG_FILE,
    WEIGHTS_FILE,
    BaselineRecord,
    SlotReader,
    mosaic_cells,
    normalise,
    sentences_of,
)
from lipagent.readers.base import Reader, ReaderError, check_device


def pick_device(device: str | None) -> str:
    """CUDA when there is one (or as asked); the network is small enough that a CPU reads in milliseconds."""
    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    return check_device(device)


class BaselineReader(Reader):
    """The baseline network behind the common reader interface."""

    def __init__(self, model: SlotReader, record: BaselineRecord, device: str = "cpu", name: str = "baseline") -> None:
        self.model, self.record, self.device = model.to(device).eval(), record, device
        self.config = record.mosaic
        params = sum(p.numel() for p in model.parameters())
        self.description = f"baseline lip reader {name} ({params / 1e6:.2f} M parameters) on {device}"

    @classmethod
    def from_pretrained(cls, folder: str | Path, device: str | None = None) -> BaselineReader:
        """Load a folder written by `lipagent baseline train` (a Hub id goes through `load_reader`)."""
        from safetensors.torch import load_file

        folder = Path(folder)
        if not (folder / WEIGHTS_FILE).is_file() or not (folder / CONFIG_FILE).is_file():
            raise ReaderError(
                f"{folder} lacks {WEIGHTS_FILE} or {CONFIG_FILE}; pass a folder `lipagent baseline train --out` wrote"
            )
        record = BaselineRecord.load(folder)
        model = SlotReader(record.arch, record.mosaic.num_frames, SLOTS)
        model.load_state_dict(load_file(folder / WEIGHTS_FILE))
        return cls(model, record, pick_device(device), name=folder.name)

    def cells(self, mosaics: Sequence[Image.Image | bytes]) -> torch.Tensor:
        return torch.from_numpy(np.stack([mosaic_cells(m, self.config, self.record.arch) for m in mosaics]))

    @torch.inference_mode()
    def transcribe_mosaics(self, mosaics: Sequence[Image.Image | bytes]) -> list[str]:
        if not mosaics:
            return []
        return sentences_of(self.model(normalise(self.cells(mosaics)).to(self.device)))
