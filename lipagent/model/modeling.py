"""Loading the base model the same way everywhere: its quantization (one definition for training and reading)
and the vision encoder a stand-in checkpoint needs.

A QLoRA adapter learns corrections to the exact NF4 weights it was trained on; reading it on weights quantized
otherwise (double quantization on instead of off, another quant type) is a silent train/inference mismatch. So
training records the settings beside the adapter (`lipagent.json`, key `quantization`) and the reader rebuilds
the same config from that record.
"""

from __future__ import annotations

from typing import Any

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


def register_stand_in_models(model: str) -> None:
    """Make a checkpoint loadable whose vision tower is the tiny test encoder (`lipagent.testing`): timm must have
    it registered before transformers builds the model. Any other checkpoint (the real Gemma 3n) imports nothing
    from the test stand-ins. A config that cannot be read here is left for from_pretrained to report."""
    from transformers import PretrainedConfig

    from lipagent.testing import TINY_TIMM_ARCHITECTURE

    try:
        config, _ = PretrainedConfig.get_config_dict(str(model))
    except (OSError, ValueError):
        return
    if (config.get("vision_config") or {}).get("architecture") == TINY_TIMM_ARCHITECTURE:
        import lipagent.testing.tiny_gemma3n  # noqa: F401  (registers the encoder with timm)
