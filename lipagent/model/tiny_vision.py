"""A tiny MobileNetV5 vision encoder, registered with timm on import: the vision tower of the tiny random Gemma 3n
that CPU smoke runs and tests train and read with (`lipagent.testing.tiny_gemma3n` builds the rest).

Gemma 3n builds its vision tower with `timm.create_model(vision_config.architecture)`; a small encoder cannot be
described by config values alone (decoded block arguments in `model_args` would put a `functools.partial` in the
config and break `save_pretrained`), so it is a named timm model, and `lipagent.model.loading.register_tiny_encoder`
imports this module before a model is built.
"""

from __future__ import annotations

from lipagent.torch_compat import ensure_torchvision_importable

ensure_torchvision_importable()

from timm.models import build_model_with_cfg, generate_default_cfgs, register_model  # noqa: E402
from timm.models._efficientnet_builder import decode_arch_def  # noqa: E402
from timm.models.mobilenetv5 import MobileNetV5Encoder  # noqa: E402

TIMM_ARCHITECTURE = "mobilenetv5_lipagent_tiny_enc"
"""The tiny checkpoint's `vision_config.architecture`."""
IMAGE_SIZE = 768
MSFA_OUTPUT_RESOLUTION = 16
"""16 x 16 = 256 soft tokens per image, as in the real model."""

# Same block kinds as mobilenetv5_300m_enc (edge residual, universal inverted residual, multi-query attention
# with strided keys/values), one or two of each, 8-16 channels. A stage may not end in an attention block.
_VISION_ARCH = [
    ["er_r1_k3_s2_e4_c8"],
    ["uir_r1_a3_k5_s2_e4_c16"],
    ["uir_r1_a5_k5_s2_e4_c16", "mqa_r1_k3_h2_v2_s1_d8_c16", "uir_r1_a0_k0_s1_e2_c16"],
    ["uir_r1_a5_k5_s2_e4_c16", "mqa_r1_k3_h2_s1_d8_c16", "uir_r1_a0_k0_s1_e2_c16"],
]

default_cfgs = generate_default_cfgs(
    {
        TIMM_ARCHITECTURE: {
            "num_classes": 0,
            "input_size": (3, IMAGE_SIZE, IMAGE_SIZE),
            "mean": (0.0, 0.0, 0.0),
            "std": (1.0, 1.0, 1.0),
            "first_conv": "conv_stem.conv",
        }
    }
)


@register_model
def mobilenetv5_lipagent_tiny_enc(pretrained: bool = False, **kwargs) -> MobileNetV5Encoder:
    """Tiny MobileNetV5 encoder for the tiny Gemma 3n; the name must equal `TIMM_ARCHITECTURE`."""
    model_kwargs = {
        "block_args": decode_arch_def(_VISION_ARCH),
        "stem_size": 8,
        "fix_stem": True,
        "pad_type": "same",
        "msfa_output_resolution": MSFA_OUTPUT_RESOLUTION,
        "layer_scale_init_value": 1e-5,
        **kwargs,
    }
    return build_model_with_cfg(
        MobileNetV5Encoder,
        TIMM_ARCHITECTURE,
        pretrained,
        feature_cfg={"out_indices": (0, 1, 2, 3, 4), "feature_cls": "getter"},
        kwargs_filter=("num_classes", "num_features", "head_conv", "head_bias", "head_norm", "global_pool"),
        **model_kwargs,
    )
