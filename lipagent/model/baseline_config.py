"""The settings of the baseline lip reader: its network's shape and its training knobs.

Plain dataclasses with no torch import, so the command line can show defaults without loading a framework.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class BaselineArch:
    """The network's shape and the size its input cells are brought to."""

    cell_width: int = 50
    cell_height: int = 40
    """Cells are halved from the mosaic's 100x80: the lip box is ~60x25 px in a GRID frame, so halving loses
    little, and it makes training four times cheaper."""
    channels: tuple[int, ...] = (32, 64, 96)
    frame_features: int = 128
    temporal_hidden: int = 96
    dropout: float = 0.3

    def __post_init__(self) -> None:
        shrink = 2 ** len(self.channels)
        if self.cell_width < shrink or self.cell_height < shrink:
            raise ValueError(
                f"cells of {self.cell_width}x{self.cell_height} are too small for {len(self.channels)} pooling stages"
            )

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> BaselineArch:
        known = {f.name for f in fields(cls)}
        return cls(**{k: tuple(v) if k == "channels" else v for k, v in values.items() if k in known})


@dataclass(frozen=True)
class BaselineTrainingArgs:
    """Every knob of a baseline run (each is a `lipagent baseline train` flag)."""

    dataset: str
    out: Path
    epochs: int = 40
    batch_size: int = 16
    learning_rate: float = 1e-3
    weight_decay: float = 0.05
    label_smoothing: float = 0.1
    max_grad_norm: float = 1.0
    seed: int = 0
    train_split: str = "train"
    eval_split: str | None = "validation"
    max_samples: int | None = None
    shift: int = 3
    flip: bool = True
    gamma: float = 0.25
    overwrite: bool = False
    arch: BaselineArch = field(default_factory=BaselineArch)

    def check(self) -> None:
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if self.learning_rate <= 0:
            raise ValueError(f"--learning-rate must be positive, got {self.learning_rate}")
        if self.max_samples is not None and self.max_samples < 1:
            raise ValueError(f"--max-samples must be at least 1, got {self.max_samples}")
        if not 0 <= self.gamma < 1 or self.shift < 0:
            raise ValueError(f"augmentation out of range: --shift {self.shift} (>= 0), --gamma {self.gamma} (0 to <1)")
