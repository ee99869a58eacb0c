"""`LipReader`: the base model plus a LoRA adapter, reading lips from a video, frames or a mosaic.

Every input goes through the code the dataset builder uses (sampling, mouth crop, mosaic, JPEG) with the
mosaic settings the adapter was trained on (its `lipagent.json`), and the prompt goes through the same TRL
chat-template and processor calls as TRL's training collator, so a clip is seen exactly as it would have
been in training.
"""

from __future__ import annotations

import logging
import platform
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from lipagent.config import DEFAULT_CONFIG, MosaicConfig
from lipagent.grammar import normalize
from lipagent.model.modeling import nf4_config, register_stand_in_models
from lipagent.model.prompt import inference_messages
from lipagent.model.reading import (
    READING_RECORD,
    Reader,
    ReaderError,
    adapter_mosaic_config,
    adapter_record,
    mosaic_image,
    resolve_model,
)
from lipagent.outputs import check_output, move_into_place, never, output_lock, staging_for
from lipagent.quiet import quiet_known_library_warnings
from lipagent.torch_compat import ensure_torchvision_importable

quiet_known_library_warnings()
ensure_torchvision_importable()

import torch  # noqa: E402

logger = logging.getLogger(__name__)

DECODINGS = ("constrained", "free")


LipReaderError = ReaderError
"""The name this error had before the baseline reader shared it."""


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
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise LipReaderError("--device cuda was asked for but no CUDA GPU is visible")
    if device == "mps" and not torch.backends.mps.is_available():
        raise LipReaderError("--device mps was asked for but Apple's Metal backend is not available")
    if load_in_4bit and not device.startswith("cuda"):
        raise LipReaderError(
            f"4-bit loading (bitsandbytes NF4) needs a CUDA GPU and this run is on {device}; drop --load_in_4bit "
            "(on Apple silicon bf16 fits a 16 GB Mac), or use `lipagent export --merge` for another runtime"
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


def base_model_of(adapter: str) -> str:
    """The base model an adapter names in its adapter_config.json (folder or Hub id, cache honoured)."""
    from peft import PeftConfig

    return PeftConfig.from_pretrained(adapter).base_model_name_or_path


def load_processor(adapter: str, base: str) -> Any:
    """The processor saved with the adapter (as training writes it), else the base model's."""
    from transformers import AutoProcessor

    try:
        return AutoProcessor.from_pretrained(adapter)
    except (OSError, ValueError):
        return AutoProcessor.from_pretrained(base)


def chat_prompt(processor: Any) -> str:
    """The inference chat as text, rendered by the call TRL's training collator makes (one image placeholder,
    before the processor expands it); the GGUF export stores it so llama.cpp reads the same prompt."""
    from trl.data_utils import apply_chat_template, prepare_multimodal_messages

    blank = Image.new("RGB", (DEFAULT_CONFIG.width, DEFAULT_CONFIG.height))
    messages = prepare_multimodal_messages(inference_messages(), images=[blank])
    return apply_chat_template({"prompt": messages}, processor)["prompt"]


class LipReader(Reader):
    """Transcribe lip movements with a Gemma 3n + LoRA adapter."""

    def __init__(
        self,
        model: Any,
        processor: Any,
        plan: DevicePlan,
        decoding: str = "constrained",
        config: MosaicConfig = DEFAULT_CONFIG,
    ) -> None:
        if decoding not in DECODINGS:
            raise LipReaderError(f"decoding must be one of {', '.join(DECODINGS)}, got {decoding!r}")
        self.model, self.processor, self.plan, self.decoding, self.config = model, processor, plan, decoding, config
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
    ) -> LipReader:
        """Load the adapter (local folder or Hub id) onto its base model, on the best device here."""
        from peft import PeftModel
        from transformers import AutoModelForImageTextToText

        plan = plan_device(device, dtype, load_in_4bit)
        folder = resolve_model(adapter)
        config = adapter_mosaic_config(folder)
        adapter = str(folder)
        base = base_model or base_model_of(adapter)
        register_stand_in_models(base)
        logger.info("base model %s, adapter %s; %s", base, adapter, plan.reason)
        recorded = (adapter_record(folder) or {}).get("quantization")
        quantization = nf4_config(plan.dtype, recorded) if load_in_4bit else None
        model = AutoModelForImageTextToText.from_pretrained(
            base,
            dtype=plan.dtype,
            quantization_config=quantization,
            device_map=plan.device if load_in_4bit else None,
        )
        model = PeftModel.from_pretrained(model, adapter)
        if not load_in_4bit:
            model = model.to(plan.device)
        model.eval()
        return cls(model, load_processor(adapter, base), plan, decoding, config)

    def prompt_inputs(self, mosaics: Sequence[Image.Image | bytes]) -> dict[str, torch.Tensor]:
        """Model inputs for a batch of mosaics, built by the calls TRL's training collator makes."""
        images = [[mosaic_image(m)] for m in mosaics]
        prompts = [chat_prompt(self.processor)] * len(images)
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

        return grid_generation_kwargs(self.processor.tokenizer, constrained=self.decoding == "constrained")

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


def export_merged(adapter: str | Path, out: str | Path, base_model: str | None = None, dtype: str = "bfloat16") -> Path:
    """Write the base model with the adapter merged in (plus the processor) for runtimes without PEFT."""
    from peft import PeftModel
    from transformers import AutoModelForImageTextToText

    out = Path(out)
    check_output(out, False, never, "merged model")
    folder = resolve_model(adapter)
    adapter = str(folder)
    base = base_model or base_model_of(adapter)
    register_stand_in_models(base)
    with output_lock(out), staging_for(out) as staging:
        model = AutoModelForImageTextToText.from_pretrained(base, dtype=getattr(torch, dtype))
        PeftModel.from_pretrained(model, adapter).merge_and_unload().save_pretrained(staging)
        load_processor(adapter, base).save_pretrained(staging)
        if (folder / READING_RECORD).is_file():
            shutil.copy2(folder / READING_RECORD, staging / READING_RECORD)
        return move_into_place(staging, out, False, never, "merged model")
