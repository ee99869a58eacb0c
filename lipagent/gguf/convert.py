"""Run llama.cpp's own converter (convert_hf_to_gguf.py) with three mends for Gemma 3n: the vision projector leaves
out the audio tower and shapes the vision blocks' layer scales so they broadcast, and the text model gets the
shared-KV layers' key/value weights llama.cpp's loader expects.

    python -m lipagent.gguf.convert CONVERTER_DIR MODEL_DIR [convert_hf_to_gguf.py flags...]

A lip reader never hears: the audio tower is 0.68 B of E4B's parameters (1.4 GB of the mmproj in f16), and this
llama.cpp's converter cannot map Gemma 3n's audio subsampling norms (`subsample_conv_projection.conv_N.norm`) at
all, so it stops before writing any mmproj. Everything else is the converter's own code; it runs in a subprocess
because it reads sys.argv and configures logging globally.
"""

from __future__ import annotations

import sys
from pathlib import Path


def vision_only_projector(gemma, base) -> type:
    """Gemma 3n's projector class with the audio half turned off after its set-up (which needs both halves)."""

    class Gemma3nVisionProjector(gemma.Gemma3nVisionAudioModel):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.has_audio_encoder = False

        def set_gguf_parameters(self):
            base.MmprojModel.set_gguf_parameters(self)
            self.gguf_writer.add_clip_vision_projector_type(base.gguf.VisionProjectorType.GEMMA3NV)
            self.gguf_writer.add_vision_attention_layernorm_eps(self.hparams.get("layer_norm_eps", 1e-6))

        def modify_tensors(self, data_torch, name, bid):
            if gemma.ConformerAudioModel.is_audio_tensor(name):
                return
            for new_name, tensor in super().modify_tensors(data_torch, name, bid):
                # The blocks' layer scales must broadcast over [W, H, C] as [1, C, 1, 1], as the stem's bias is;
                # this converter reshapes them only outside the blocks, where there are none.
                if new_name.endswith("layer_scale.gamma") and tensor.dim() == 1:
                    tensor = tensor.reshape(1, -1, 1, 1)
                yield new_name, tensor

    return Gemma3nVisionProjector


def text_model_with_shared_kv_weights(gemma, torch) -> type:
    """Gemma 3n's text model class, adding the key/value weights transformers 5 no longer keeps for the layers that
    reuse an earlier layer's KV cache: llama.cpp's loader requires them although its graph never reads them, so
    zeros stand in."""

    class Gemma3nText(gemma.Gemma3NModel):
        model_arch = gemma.Gemma3NModel.model_arch

        def generate_extra_tensors(self):
            yield from super().generate_extra_tensors()
            hp = self.hparams
            layers, shared = hp["num_hidden_layers"], hp.get("num_kv_shared_layers", 0)
            head_dim, kv_heads, width = hp["head_dim"], hp["num_key_value_heads"], hp["hidden_size"]
            prefix = next(name.split("layers.")[0] for name in self.model_tensors if ".layers." in name)
            for layer in range(layers - shared, layers):
                attention = f"{prefix}layers.{layer}.self_attn."
                for name, shape in (
                    ("k_proj.weight", (kv_heads * head_dim, width)),
                    ("v_proj.weight", (kv_heads * head_dim, width)),
                    ("k_norm.weight", (head_dim,)),
                ):
                    if attention + name not in self.model_tensors:
                        yield attention + name, torch.zeros(shape)

    return Gemma3nText


def main(argv: list[str]) -> None:
    from lipagent.torch_compat import ensure_torchvision_importable

    ensure_torchvision_importable()  # the converter reads the model's config through transformers
    converter, rest = Path(argv[0]), argv[1:]
    sys.path[:0] = [str(converter), str(converter / "gguf-py")]
    import convert_hf_to_gguf
    import torch
    from conversion import base, gemma

    classes = base.ModelBase._model_classes
    classes[base.ModelType.MMPROJ]["Gemma3nForConditionalGeneration"] = vision_only_projector(gemma, base)
    text = text_model_with_shared_kv_weights(gemma, torch)
    for architecture in ("Gemma3nForConditionalGeneration", "Gemma3nForCausalLM"):
        classes[base.ModelType.TEXT][architecture] = text
    sys.argv = [str(converter / "convert_hf_to_gguf.py"), *rest]
    convert_hf_to_gguf.main()


if __name__ == "__main__":
    main(sys.argv[1:])
