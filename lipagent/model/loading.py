"""Loading the base model the same way everywhere: its quantization (one definition for training and reading), the
processor an adapter was trained with, the vision encoder a tiny checkpoint needs, and merging an adapter in.

A QLoRA adapter learns corrections to the exact NF4 weights it was trained on; reading it on weights quantized
otherwise (double quantization on instead of off, another quant type) is a silent train/inference mismatch. So
training records the settings beside the adapter (`lipagent.json`, key `quantization`) and the reader rebuilds
the same config from that record.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from lipagent.outputs import check_output, move_into_place, never, output_lock, staging_for
from lipagent.records import READING_RECORD, resolve

QUANTIZATION_SKIP_MODULES = ["lm_head", "correction_coefs", "prediction_coefs"]
"""Linear layers kept out of 4/8-bit. In training mode Gemma 3n's AltUp clamps and multiplies the raw weights of
`prediction_coefs`/`correction_coefs` (tiny 4x4 and 4x16 matrices), which fails on packed 4-bit weights; TRL's fused
LM head reads `lm_head.weight` directly. Setting any skip list replaces transformers' default one (lm_head), so
lm_head is listed again."""

DEFAULT_NF4 = {"bnb_4bit_quant_type": "nf4", "bnb_4bit_use_double_quant": False}
"""TRL's defaults (`--bnb_4bit_quant_type nf4`, `--use_bnb_nested_quant false`): what an adapter trained without a
record of its quantization was trained on, when it was trained in 4 bits."""


def quantization_record(config: Any | None) -> dict[str, Any] | None:
    """The parts of a 4-bit BitsAndBytesConfig that the weights depend on, for lipagent.json (None: not 4-bit)."""
    if config is None or not getattr(config, "load_in_4bit", False):
        return None
    return {
        "bnb_4bit_quant_type": config.bnb_4bit_quant_type,
        "bnb_4bit_use_double_quant": bool(config.bnb_4bit_use_double_quant),
    }


def nf4_config(compute_dtype: Any, record: dict[str, Any] | None = None) -> Any:
    """The 4-bit config to read an adapter with: its recorded quantization (else TRL's defaults), computing in
    `compute_dtype`, with the same skip list as training."""
    from transformers import BitsAndBytesConfig

    settings = {**DEFAULT_NF4, **(record or {})}
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_compute_dtype=compute_dtype,
        llm_int8_skip_modules=list(QUANTIZATION_SKIP_MODULES),
        **settings,
    )


def register_tiny_encoder() -> None:
    """Make the tiny CPU vision encoder (`lipagent.model.tiny_vision`) known to timm before transformers builds a
    model: the tiny Gemma 3n of CPU smoke runs names it. Harmless for any other checkpoint."""
    import lipagent.model.tiny_vision  # noqa: F401  (registers the encoder with timm)


def base_model_of(adapter: str | Path) -> str:
    """The base model an adapter names in its adapter_config.json (folder or Hub id, cache honoured)."""
    from lipagent.torch_compat import ensure_torchvision_importable

    ensure_torchvision_importable()  # peft imports transformers' models, and they torchvision
    from peft import PeftConfig

    return PeftConfig.from_pretrained(str(adapter)).base_model_name_or_path


def load_processor(adapter: str | Path, base: str) -> Any:
    """The processor saved with the adapter (as training writes it), else the base model's."""
    from lipagent.torch_compat import ensure_torchvision_importable

    ensure_torchvision_importable()
    from transformers import AutoProcessor

    try:
        return AutoProcessor.from_pretrained(str(adapter))
    except (OSError, ValueError):
        return AutoProcessor.from_pretrained(base)


def export_merged(adapter: str | Path, out: str | Path, base_model: str | None = None, dtype: str = "bfloat16") -> Path:
    """Write the base model with the adapter merged in (plus the processor and the adapter's reading record) for
    runtimes without PEFT."""
    from lipagent.torch_compat import ensure_torchvision_importable

    ensure_torchvision_importable()
    import torch
    from peft import PeftModel
    from transformers import AutoModelForImageTextToText

    out = Path(out)
    check_output(out, False, never, "merged model")
    folder = resolve(adapter)
    base = base_model or base_model_of(folder)
    register_tiny_encoder()
    with output_lock(out), staging_for(out) as staging:
        model = AutoModelForImageTextToText.from_pretrained(base, dtype=getattr(torch, dtype))
        PeftModel.from_pretrained(model, str(folder)).merge_and_unload().save_pretrained(staging)
        load_processor(folder, base).save_pretrained(staging)
        if (folder / READING_RECORD).is_file():
            shutil.copy2(folder / READING_RECORD, staging / READING_RECORD)
        return move_into_place(staging, out, False, never, "merged model")
