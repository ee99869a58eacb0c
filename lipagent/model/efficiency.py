"""Settings that make Gemma 3n train and read faster or in less memory without changing what it computes on mosaics.

Each is proven equal on the tiny model (tests/test_efficiency.py) and measured on a GPU by `bench/gpu/run.sh`:
- the audio tower left out: 0.68 B of E4B's parameters that a lip reader never runs (a mosaic has no audio
  features; the audio soft-token embedder, which every forward uses, stays);
- the per-layer embedding table (2.35 B parameters in E4B, which bitsandbytes does not quantize) kept in the host's
  memory: each step looks up a few hundred of its 262,144 rows, so only those rows travel to the GPU;
- regional compilation: `torch.compile` of each decoder layer of the language model rather than the whole model,
  so one compiled layer serves all of them (minutes less to compile) and the step runs fewer, fused kernels;
  with every batch padded to one length (`--pad_to_length`) the shapes stay static, which CUDA graphs need.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

AUDIO_TOWER = "audio_tower"
PER_LAYER_TABLE = "embed_tokens_per_layer"
DECODER_LAYER_SUFFIX = "DecoderLayer"
PAD_VALUES = {"attention_mask": 0, "labels": -100, "token_type_ids": 0, "mm_token_type_ids": 0, "completion_mask": 0}
"""What each per-token column of a training batch is padded with (`input_ids` take the tokenizer's pad id)."""


def drop_audio_tower(model: torch.nn.Module) -> int:
    """Remove Gemma 3n's audio encoder from `model` (a bare or PEFT-wrapped model); returns the parameters freed.

    Reading audio with the model afterwards fails; images and text compute exactly as before."""
    freed = 0
    for module in list(model.modules()):
        tower = getattr(module, AUDIO_TOWER, None)
        if isinstance(tower, torch.nn.Module):
            freed += sum(p.numel() for p in tower.parameters())
            setattr(module, AUDIO_TOWER, None)
    if freed and torch.cuda.is_available():
        torch.cuda.empty_cache()
    return freed


class HostEmbedding(torch.nn.Module):
    """An embedding table held in the host's memory behind a module that lives on the GPU with the rest: token ids
    go to the table's device, their rows come back. The table is not a registered submodule, so moving the model
    (`Trainer` does) leaves it where it is; it is frozen, as LoRA leaves every embedding."""

    def __init__(self, table: torch.nn.Module) -> None:
        super().__init__()
        table.requires_grad_(False)
        self.__dict__["table"] = table.to("cpu")

    @property
    def weight(self) -> torch.Tensor:
        return self.table.weight

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.table(input_ids.to(self.table.weight.device)).to(input_ids.device)


def keep_per_layer_embeddings_on_host(model: torch.nn.Module) -> int:
    """Move Gemma 3n's per-layer embedding table to the host's memory behind a `HostEmbedding`; returns its size in
    parameters (0: the model has none, or it is there already)."""
    moved = 0
    for module in list(model.modules()):
        table = getattr(module, PER_LAYER_TABLE, None)
        if isinstance(table, torch.nn.Module) and not isinstance(table, HostEmbedding):
            moved += table.weight.numel()
            setattr(module, PER_LAYER_TABLE, HostEmbedding(table))
    if moved and torch.cuda.is_available():
        torch.cuda.empty_cache()
    return moved


def decoder_layers(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The language model's decoder layers (Gemma 3n's vision and audio towers have none by that name)."""
    return [
        module
        for name, module in model.named_modules()
        if type(module).__name__.endswith(DECODER_LAYER_SUFFIX) and "language_model" in name
    ]


def compile_decoder_layers(model: torch.nn.Module, backend: str = "inductor", mode: str | None = None) -> int:
    """`torch.compile` each decoder layer of the language model in place; returns how many were compiled."""
    layers = decoder_layers(model)
    if not layers:
        raise ValueError(f"no language-model decoder layers in {type(model).__name__} to compile")
    options: dict[str, Any] = {"backend": backend, "dynamic": False}
    if mode is not None:
        options["mode"] = mode
    for layer in layers:
        layer.compile(**options)
    return len(layers)


def pad_batch(batch: dict[str, Any], length: int, pad_token_id: int) -> dict[str, Any]:
    """`batch`'s per-token columns padded on the right to `length` tokens: masked out of attention and loss, so the
    loss is unchanged; a batch longer than `length` is an error (cutting it would cut answers)."""
    tokens = batch["input_ids"].shape[1]
    if tokens > length:
        raise ValueError(f"a batch holds {tokens} tokens, more than --pad_to_length {length}: raise it")
    padded = dict(batch)
    for key, value in batch.items():
        if not (isinstance(value, torch.Tensor) and value.dim() == 2 and value.shape[1] == tokens):
            continue
        if key != "input_ids" and key not in PAD_VALUES:
            raise ValueError(f"the batch column {key!r} is per token and has no padding value")
        fill = pad_token_id if key == "input_ids" else PAD_VALUES[key]
        padded[key] = torch.nn.functional.pad(value, (0, length - tokens), value=fill)
    return padded


@dataclass
class FixedLengthCollator:
    """A collator whose batches all come out `length` tokens long (for static shapes under compilation)."""

    collator: Callable[[list[Any]], dict[str, Any]]
    length: int
    pad_token_id: int

    def __call__(self, examples: list[Any]) -> dict[str, Any]:
        return pad_batch(self.collator(examples), self.length, self.pad_token_id)
