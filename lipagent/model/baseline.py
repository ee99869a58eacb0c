"""The baseline lip reader: a small network trained from scratch on the mosaics, the project's yardstick.

It reads the very mosaic the Gemma reader gets, cut back into its rows x cols cells in time order: a 2D CNN
encodes each cell, a bidirectional GRU reads the 12 encodings as a sequence, and one classifier head per
GRID slot reads the whole sequence, so every prediction is a valid sentence by construction. About 1 MB of
weights; `lipagent baseline train` fits it on a laptop CPU in minutes. A folder holds `model.safetensors`,
`config.json` (architecture, vocabulary and the mosaic settings of the data it learned from) and
`history.json`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from PIL import Image
from torch import nn

from lipagent.config import MosaicConfig
from lipagent.grammar import SLOT_NAMES, SLOTS
from lipagent.model.baseline_config import BaselineArch
from lipagent.records import BASELINE_MODEL_TYPE, RecordError, mosaic_and_span
from lipagent.transform.mosaic import mosaic_image, untile

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
HISTORY_FILE = "history.json"


def mosaic_cells(mosaic: Image.Image | bytes, config: MosaicConfig, arch: BaselineArch) -> np.ndarray:
    """(frames, height, width) uint8 grey cells of one mosaic, in time order (row-major, as `tile` lays them).

    Grey, because the mouth's shape is what carries the words and colour triples the first layer's cost."""
    image = np.asarray(mosaic_image(mosaic))
    if image.shape[:2] != (config.height, config.width):
        raise ValueError(
            f"a mosaic of {image.shape[1]}x{image.shape[0]} was given; this reader was trained on "
            f"{config.width}x{config.height} ({config.rows}x{config.cols} cells)"
        )
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    cells = untile(grey, config.rows, config.cols)
    # INTER_AREA is the right filter for shrinking (it averages); the mosaic pipeline enlarges, which is not this.
    return np.stack([cv2.resize(c, (arch.cell_width, arch.cell_height), interpolation=cv2.INTER_AREA) for c in cells])


def normalise(cells: torch.Tensor) -> torch.Tensor:
    """uint8 cells (..., frames, H, W) -> float, each clip to zero mean and unit variance, so lighting and
    skin tone (which say nothing of the words) do not have to be learned away from 300 clips."""
    x = cells.float()
    dims = tuple(range(x.dim() - 3, x.dim()))
    mean, std = x.mean(dim=dims, keepdim=True), x.std(dim=dims, keepdim=True)
    return (x - mean) / (std + 1.0)


class SlotReader(nn.Module):
    """Per-cell CNN -> bidirectional GRU over the frames -> one linear head per GRID slot."""

    def __init__(self, arch: BaselineArch, num_frames: int, vocabulary: dict[str, Sequence[str]]) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 1
        for out in arch.channels:
            layers += [
                nn.Conv2d(channels, out, 3, padding=1, bias=False),
                nn.BatchNorm2d(out),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
            channels = out
        self.cnn = nn.Sequential(*layers)
        shrink = 2 ** len(arch.channels)
        flat = channels * (arch.cell_height // shrink) * (arch.cell_width // shrink)
        self.frame = nn.Sequential(
            nn.Flatten(), nn.Dropout(arch.dropout), nn.Linear(flat, arch.frame_features), nn.ReLU(inplace=True)
        )
        self.gru = nn.GRU(arch.frame_features, arch.temporal_hidden, batch_first=True, bidirectional=True)
        self.dropout = nn.Dropout(arch.dropout)
        # Each head sees every time step in place (flattened, not pooled): which frames show a slot's word is
        # fairly fixed in GRID's fixed word order, and a head can learn where to look.
        self.heads = nn.ModuleDict(
            {slot: nn.Linear(num_frames * 2 * arch.temporal_hidden, len(vocabulary[slot])) for slot in SLOT_NAMES}
        )
        # oneDNN's convolutions, pooling and batch norm run about twice as fast on a CPU in channels-last layout.
        self.to(memory_format=torch.channels_last)

    def forward(self, cells: torch.Tensor) -> dict[str, torch.Tensor]:
        """Logits per slot for normalised cells of shape (batch, frames, H, W)."""
        batch, frames = cells.shape[:2]
        encoded = self.frame(self.cnn(cells.flatten(0, 1).unsqueeze(1))).view(batch, frames, -1)
        sequence, _ = self.gru(encoded)
        flat = self.dropout(sequence.flatten(1))
        return {slot: head(flat) for slot, head in self.heads.items()}


def labels_of(texts: Sequence[str]) -> np.ndarray:
    """(N, 6) indices of each slot's word in the grammar's vocabulary."""
    index = {slot: {w: i for i, w in enumerate(SLOTS[slot])} for slot in SLOT_NAMES}
    return np.array(
        [[index[slot][word] for slot, word in zip(SLOT_NAMES, text.split(), strict=True)] for text in texts],
        dtype=np.int64,
    )


def sentences_of(logits: dict[str, torch.Tensor]) -> list[str]:
    """The most likely word of each slot, joined: always a valid GRID sentence."""
    picks = [logits[slot].argmax(dim=-1).tolist() for slot in SLOT_NAMES]
    return [" ".join(SLOTS[slot][p[n]] for slot, p in zip(SLOT_NAMES, picks)) for n in range(len(picks[0]))]


@dataclass
class BaselineRecord:
    """config.json of a baseline folder: enough to rebuild the network and its inputs exactly."""

    arch: BaselineArch
    mosaic: MosaicConfig
    training: dict[str, Any]
    speech_span: str = "aligned"
    """The span recipe of the dataset it learned from (lipagent.data.recipe)."""

    def to_json(self) -> str:
        return json.dumps(
            {
                "model_type": BASELINE_MODEL_TYPE,
                "arch": asdict(self.arch),
                "vocabulary": SLOTS,
                "mosaic": self.mosaic.to_dict(),
                "speech_span": self.speech_span,
                "training": self.training,
            },
            indent=2,
        )

    @classmethod
    def load(cls, folder: Path) -> BaselineRecord:
        values = json.loads((folder / CONFIG_FILE).read_text())
        if values.get("model_type") != BASELINE_MODEL_TYPE:
            raise RecordError(f"{folder / CONFIG_FILE} is not a baseline lip reader's config")
        if {k: tuple(v) for k, v in values.get("vocabulary", {}).items()} != SLOTS:
            raise RecordError(f"{folder} was trained on another GRID vocabulary than this LipAgent's grammar")
        mosaic, span = mosaic_and_span(values["mosaic"])
        arch, training = BaselineArch.from_dict(values["arch"]), values.get("training", {})
        return cls(arch, mosaic, training, values.get("speech_span", span))
