"""`LipReader`: Gemma 3n plus a LoRA adapter, reading lips from a video, frames or a mosaic.

Every input goes through the code the dataset builder uses (sampling, mouth crop, mosaic, JPEG) with the
mosaic settings the adapter was trained on (its `lipagent.json`), and the prompt goes through the same TRL
chat-template and processor calls as TRL's training collator, so a clip is seen exactly as it would have
been in training.
"""

from __future__ import annotations

import logging
import platform
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from lipagent.config import DEFAULT_CONFIG, MosaicConfig
from lipagent.grammar import normalize
from lipagent.model.efficiency import drop_audio_tower
from lipagent.model.loading import base_model_of, load_processor, nf4_config, register_tiny_encoder
from lipagent.model.prompt import PROMPT, chat_prompt, recorded_prompt
from lipagent.quiet import quiet_known_library_warnings
from lipagent.readers.base import Reader, ReaderError, check_device
from lipagent.records import read_record, resolve
from lipagent.torch_compat import ensure_torchvision_importable
from lipagent.transform.mosaic import mosaic_image

quiet_known_library_warnings()
ensure_torchvision_importable()

import torch  # noqa: E402

logger = logging.getLogger(__name__)

DECODINGS = ("constrained", "free")
CACHES = ("dynamic", "static")
"""The KV cache `generate` keeps: dynamic grows a token at a time; static is allocated once at its full length,
and on a GPU transformers then compiles the decoding step (fewer launches per token). Both give the same tokens."""


@dataclass(frozen=True)
class DevicePlan:
    device: str
    dtype: torch.dtype
    load_in_4bit: bool
    reason: str


def plan_device(device: str | None = None, dtype: str | None = None, load_in_4bit: bool = False) -> DevicePlan:
    """Where and in which precision to run, with the reason (printed, so users know what they got).

    CUDA: bf16 where supported (fp16 overflows in Gemma 3n's vision encoder), else fp32. Apple MPS: bf16
    on macOS 14+, else fp32. CPU: fp32. 4-bit (bitsandbytes NF4) runs only on CUDA here.
    """
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    check_device(device)
    if load_in_4bit and not device.startswith("cuda"):
        raise ReaderError(
            f"4-bit loading (bitsandbytes NF4) needs a CUDA GPU and this run is on {device}; drop --load-in-4bit "
            "(on Apple silicon bf16 fits a 16 GB Mac), or use `lipagent export --gguf` for llama.cpp"
        )
    if dtype is not None:
        chosen, reason = getattr(torch, dtype), f"{dtype} as asked"
    elif device.startswith("cuda"):
        bf16 = torch.cuda.is_bf16_supported()
        chosen, reason = (
            (torch.bfloat16, "bf16 (GPU supports it)") if bf16 else (torch.float32, "fp32 (no bf16 on this GPU)")
        )
    elif device == "mps":
        new_enough = hasattr(torch.backends.mps, "is_macos_or_newer") and torch.backends.mps.is_macos_or_newer(14, 0)
        chosen, reason = (
            (torch.bfloat16, "bf16 (macOS 14+)") if new_enough else (torch.float32, "fp32 (bf16 needs macOS 14+)")
        )
    else:
        chosen, reason = torch.float32, "fp32 (CPU)"
    where = f"{device} ({platform.machine()})" if device == "cpu" else device
    return DevicePlan(
        device, chosen, load_in_4bit, f"running on {where} in {reason}{', 4-bit NF4' if load_in_4bit else ''}"
    )


class LipReader(Reader):
    """Transcribe lip movements with a Gemma 3n + LoRA adapter."""

    def __init__(
        self,
        model: Any,
        processor: Any,
        plan: DevicePlan,
        decoding: str = "constrained",
        config: MosaicConfig = DEFAULT_CONFIG,
        prompt: str = PROMPT,
        cache: str = "dynamic",
    ) -> None:
        if decoding not in DECODINGS:
            raise ReaderError(f"decoding must be one of {', '.join(DECODINGS)}, got {decoding!r}")
        if cache not in CACHES:
            raise ReaderError(f"cache must be one of {', '.join(CACHES)}, got {cache!r}")
        self.model, self.processor, self.plan, self.decoding, self.config = model, processor, plan, decoding, config
        self.prompt, self.cache = prompt, cache
        self.description = plan.reason

    @classmethod
    def from_pretrained(
        cls,
        adapter: str | Path,
        base_model: str | None = None,
        *,
        load_in_4bit: bool = False,
        device: str | None = None,
        dtype: str | None = None,
        decoding: str = "constrained",
        cache: str = "dynamic",
    ) -> LipReader:
        """Load the adapter (local folder or Hub id) onto its base model, on the best device here, without the audio
        tower a lip reader never runs (`lipagent.model.efficiency.drop_audio_tower`)."""
        from peft import PeftModel
        from transformers import AutoModelForImageTextToText

        plan = plan_device(device, dtype, load_in_4bit)
        folder = resolve(adapter)
        record = read_record(folder)
        adapter = str(folder)
        base = base_model or base_model_of(adapter)
        register_tiny_encoder()
        logger.info("base model %s, adapter %s; %s", base, adapter, plan.reason)
        recorded = record.values.get("quantization")
        quantization = nf4_config(plan.dtype, recorded) if load_in_4bit else None
        model = AutoModelForImageTextToText.from_pretrained(
            base,
            dtype=plan.dtype,
            quantization_config=quantization,
            device_map=plan.device if load_in_4bit else None,
        )
        drop_audio_tower(model)
        model = PeftModel.from_pretrained(model, adapter)
        if not load_in_4bit:
            model = model.to(plan.device)
        model.eval()
        processor = load_processor(adapter, base)
        return cls(model, processor, plan, decoding, record.mosaic, recorded_prompt(record), cache)

    def prompt_inputs(self, mosaics: Sequence[Image.Image | bytes]) -> dict[str, torch.Tensor]:
        """Model inputs for a batch of mosaics, built by the calls TRL's training collator makes."""
        images = [[mosaic_image(m)] for m in mosaics]
        prompts = [chat_prompt(self.processor, self.prompt)] * len(images)
        return self.processor(
            images=images,
            text=prompts,
            padding=True,
            padding_side="left",
            return_tensors="pt",
            add_special_tokens=False,
        )

    def generation_kwargs(self) -> dict[str, Any]:
        """Token budget and end tokens of a GRID answer, plus the grammar mask when constrained (a fresh
        logits processor per call: it holds the prompt length)."""
        from lipagent.model.constrained import grid_generation_kwargs

        kwargs = grid_generation_kwargs(self.processor.tokenizer, constrained=self.decoding == "constrained")
        if self.cache == "static":
            kwargs["cache_implementation"] = "static"
        return kwargs

    @torch.inference_mode()
    def transcribe_mosaics(self, mosaics: Sequence[Image.Image | bytes]) -> list[str]:
        """Transcriptions of a batch of mosaics (greedy, left-padded batch)."""
        inputs = self.prompt_inputs(mosaics).to(self.plan.device)
        if "pixel_values" in inputs:
            inputs["pixel_values"] = inputs["pixel_values"].to(self.plan.dtype)
        tokenizer = self.processor.tokenizer
        output = self.model.generate(
            **inputs, do_sample=False, pad_token_id=tokenizer.pad_token_id, **self.generation_kwargs()
        )
        answers = tokenizer.batch_decode(output[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
        return [normalize(a) for a in answers]
