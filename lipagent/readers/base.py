"""What every lip reader is: mosaics in, GRID sentences out; videos and camera frames become mosaics exactly as the
model's training data did, through the transform the dataset builder uses, with the settings the model recorded."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from lipagent.config import DEFAULT_CONFIG, MosaicConfig
from lipagent.records import RecordError
from lipagent.transform.speech import Speech


class ReaderError(RecordError):
    """A request this machine, model or input cannot serve, said in words a user can act on."""


def check_device(device: str) -> str:
    """A device asked for (--device): cuda, cuda:N, mps or cpu, and one this machine has."""
    import torch

    if device.split(":")[0] not in ("cuda", "mps", "cpu"):
        raise ReaderError(f"--device {device} is not one of cuda, cuda:N, mps or cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ReaderError(f"--device {device} was asked for but no CUDA GPU is visible")
    if device == "mps" and not torch.backends.mps.is_available():
        raise ReaderError("--device mps was asked for but Apple's Metal backend is not available")
    return device


class Reader(ABC):
    """Reads lips from mosaics; videos and frames become mosaics exactly as the model's training data did."""

    config: MosaicConfig = DEFAULT_CONFIG
    description: str = ""
    """One line on what runs where (printed on stderr by the commands)."""

    @abstractmethod
    def transcribe_mosaics(self, mosaics: Sequence[Image.Image | bytes]) -> list[str]:
        """Transcriptions of a batch of mosaics (images or their JPEG bytes)."""

    def mosaic_for_video(self, path: str | Path, speech: Speech | None = None) -> bytes:
        """The mosaic this model would have been trained on for the clip. `speech`: the spoken frames (start, end),
        or 'auto' (default: found from the mouth's movement) or 'whole'."""
        from lipagent.transform.pipeline import prepare_video

        return prepare_video(path, speech or "auto", self.config).mosaic.jpeg

    def mosaic_for_frames(self, frames: Sequence[np.ndarray], speech: Speech | None = None) -> bytes:
        """The mosaic of a clip given as BGR frames (a camera's), sampled like a file's. Raises
        `lipagent.transform.pipeline.ClipRejected` for frames that cannot make one (too few, no face)."""
        from lipagent.transform.pipeline import prepare_frames

        return prepare_frames(frames, speech or "auto", self.config).mosaic.jpeg

    def transcribe_mosaic(self, mosaic: Image.Image | bytes) -> str:
        return self.transcribe_mosaics([mosaic])[0]

    def transcribe_video(self, path: str | Path, speech: Speech | None = None) -> str:
        return self.transcribe_mosaic(self.mosaic_for_video(path, speech))

    def transcribe_frames(self, frames: Sequence[np.ndarray], speech: Speech | None = None) -> str:
        return self.transcribe_mosaic(self.mosaic_for_frames(frames, speech))
