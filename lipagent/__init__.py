"""LipAgent: teach a vision-language model to read lips.

import lipagent

reader = lipagent.load_reader("team/gemma3n-lipreader-lora")   # or a baseline folder, or a GGUF export
print(reader.transcribe_video("clip.mp4"))

clip = lipagent.prepare_video("clip.mp4")                      # the mosaic a model would read
config = lipagent.MosaicConfig(landmarks="static")             # how mosaics are made
"""

from __future__ import annotations

from typing import Any

__all__ = ["MosaicConfig", "load_reader", "prepare_video"]


def __getattr__(name: str) -> Any:
    # The front door imports its names on first use (PEP 562): `import lipagent.cli` must not load MediaPipe and
    # OpenCV, or every command's --help would wait for them.
    if name == "MosaicConfig":
        from lipagent.config import MosaicConfig

        return MosaicConfig
    if name == "load_reader":
        from lipagent.readers.factory import load_reader

        return load_reader
    if name == "prepare_video":
        from lipagent.transform.pipeline import prepare_video

        return prepare_video
    raise AttributeError(f"module 'lipagent' has no attribute {name!r}")
