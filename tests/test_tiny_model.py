"""The tiny random Gemma 3n behaves like the real one where training depends on it, and loads offline."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lipagent.torch_compat import ensure_torchvision_importable

ensure_torchvision_importable()  # before anything imports torchvision: peft, timm, transformers' Gemma 3n

import torch  # noqa: E402
import transformers  # noqa: E402
from peft import LoraConfig, get_peft_model  # noqa: E402
from peft.tuners.lora import LoraLayer  # noqa: E402
from PIL import Image  # noqa: E402

import lipagent.testing.tiny_gemma3n as tiny  # noqa: E402
from lipagent.model.training import LORA_TARGET_MODULES  # noqa: E402

REPO = Path(__file__).resolve().parents[1]

# peft 0.21 calls a transformers 5.24 method that is deprecated; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated:FutureWarning")


def load_model(tiny_dir: Path) -> transformers.PreTrainedModel:
    return transformers.AutoModelForImageTextToText.from_pretrained(tiny_dir, local_files_only=True)


@pytest.fixture(scope="module")
def inputs(processor: transformers.ProcessorMixin) -> transformers.BatchFeature:
    """One 400x240 mosaic-sized image and a short prompt, through the chat template as in training."""
    image = Image.new("RGB", (400, 240), (150, 60, 70))
    content = [{"type": "image", "image": image}, {"type": "text", "text": "what is said?"}]
    messages = [{"role": "user", "content": content}]
    return processor.apply_chat_template(
        messages, add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt"
    )


def lora_wrapped(model: transformers.PreTrainedModel, target_modules: str | list[str]) -> list[str]:
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=target_modules))
    return [name for name, module in peft_model.named_modules() if isinstance(module, LoraLayer)]


def test_torchvision_shim_is_idempotent():
    import torchvision

    ensure_torchvision_importable()
    ensure_torchvision_importable()
    assert torchvision.__version__ and hasattr(torch.ops.torchvision, "nms")


def test_cli_writes_the_same_files_offline(tiny_dir: Path, tmp_path: Path):
    out = tmp_path / "cli"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    subprocess.run([sys.executable, str(REPO / "train" / "tiny_model.py"), str(out)], check=True, env=env)
    written = sorted(path.name for path in out.iterdir())
    assert written == sorted(path.name for path in tiny_dir.iterdir())
    assert all((out / name).read_bytes() == (tiny_dir / name).read_bytes() for name in written)


def test_cli_writes_the_llama_cpp_shaped_model(tmp_path: Path):
    out = tmp_path / "llama-shaped"
    subprocess.run([sys.executable, str(REPO / "train" / "tiny_model.py"), str(out), "--llama-cpp-shape"], check=True)
    config = transformers.AutoConfig.from_pretrained(out)
    from lipagent.gguf.export import llama_cpp_shape_problem

    assert config.text_config.hidden_size == 2048 and llama_cpp_shape_problem(config.text_config.to_dict()) is None


def test_a_zero_mean_vision_tower_tells_mosaics_apart(processor, few_prepared: Path):
    """Filters that sum to zero (the learning check's model): on real mosaics, which share most of their picture, the
    part of the tower's output that differs between clips is most of it, where random filters leave a fraction of a
    percent (and a small Gemma trained on those reads no image: docs/results.md, the learning check)."""
    import datasets

    model = tiny.build_model(zero_mean=True)
    spatial = [
        m for m in model.model.vision_tower.modules() if isinstance(m, torch.nn.Conv2d) and m.weight[0].numel() > 1
    ]
    assert spatial and all(m.weight.sum(dim=(1, 2, 3)).abs().max() < 1e-5 for m in spatial)
    images = datasets.load_dataset(str(few_prepared), split="train")["image"][:4]
    pixels = processor.image_processor([image.convert("RGB") for image in images], return_tensors="pt")["pixel_values"]

    def image_specific_share(model: transformers.PreTrainedModel) -> float:
        with torch.no_grad():
            out = model.model.vision_tower(pixel_values=pixels, do_pooling=False, return_dict=True).last_hidden_state
        return ((out - out.mean(0, keepdim=True)).pow(2).mean() / out.pow(2).mean()).item()

    assert image_specific_share(model) > 0.2
    assert image_specific_share(tiny.build_model()) < 0.01


def test_reloads_offline_as_gemma3n(tiny_dir: Path, processor: transformers.ProcessorMixin):
    model = load_model(tiny_dir)
    assert isinstance(model, transformers.Gemma3nForConditionalGeneration)
    assert isinstance(processor, transformers.Gemma3nProcessor)
    assert model.config.vision_config.architecture == tiny.TIMM_ARCHITECTURE
    assert model.config.vision_soft_tokens_per_image == processor.image_seq_length == 256
    assert sum(p.numel() for p in model.parameters()) < 1_500_000


def test_special_tokens_sit_where_the_model_expects(processor: transformers.ProcessorMixin, tiny_dir: Path):
    config = load_model(tiny_dir).config
    tokenizer = processor.tokenizer
    ids = tokenizer.convert_tokens_to_ids
    assert ids("<start_of_image>") == config.boi_token_id
    assert ids("<end_of_image>") == config.eoi_token_id == config.vision_config.vocab_offset
    assert ids("<image_soft_token>") == config.image_token_id == processor.image_token_id
    assert ids("<start_of_audio>") == config.boa_token_id
    assert ids("<end_of_audio>") == config.eoa_token_id == config.audio_config.vocab_offset
    assert ids("<audio_soft_token>") == config.audio_token_id
    turn_and_control = ("<pad>", "<eos>", "<bos>", "<start_of_turn>", "<end_of_turn>")
    assert [ids(token) for token in turn_and_control] == [0, 1, 2, 105, 106]
    assert len(tokenizer) == config.text_config.vocab_size
    text = "bin blue at f two now"
    assert tokenizer.decode(tokenizer(text).input_ids, skip_special_tokens=True) == text
    assert tokenizer.unk_token_id not in tokenizer("Zoë, 42 ünïcode!").input_ids


def test_chat_with_image_has_256_soft_tokens(processor: transformers.ProcessorMixin, inputs: transformers.BatchFeature):
    ids = inputs["input_ids"][0].tolist()
    tokenizer = processor.tokenizer
    start, end = ids.index(tokenizer.boi_token_id), ids.index(tokenizer.eoi_token_id)
    assert ids[start + 1 : end] == [processor.image_token_id] * 256
    assert ids.count(processor.image_token_id) == 256
    assert inputs["token_type_ids"][0].sum().item() == 256
    assert tuple(inputs["pixel_values"].shape) == (1, 3, 768, 768)
    text = tokenizer.decode(ids)
    assert text.startswith("<bos><start_of_turn>user\n")
    assert text.endswith("what is said?<end_of_turn>\n<start_of_turn>model\n")


def test_forward_with_labels_and_backward(tiny_dir: Path, inputs: transformers.BatchFeature):
    model = load_model(tiny_dir).train()
    labels = inputs["input_ids"].masked_fill(inputs["token_type_ids"].bool(), -100)
    loss = model(**inputs, labels=labels).loss
    assert math.isfinite(loss.item())
    loss.backward()
    stem = model.model.vision_tower.timm_model.conv_stem.conv.weight
    assert stem.grad is not None and torch.isfinite(stem.grad).all()


def test_generate_returns_new_tokens(tiny_dir: Path, inputs: transformers.BatchFeature):
    model = load_model(tiny_dir)
    prompt_length = inputs["input_ids"].shape[1]
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=3, do_sample=False)
    assert 1 <= out.shape[1] - prompt_length <= 3


def test_lora_regex_adapts_only_the_language_model(tiny_dir: Path):
    wrapped = lora_wrapped(load_model(tiny_dir), LORA_TARGET_MODULES)
    assert wrapped and all(".language_model." in name for name in wrapped)
    assert not any("vision" in name or "audio" in name for name in wrapped)
    assert {name.rsplit(".", 1)[1] for name in wrapped} == {"q_proj", "k_proj", "v_proj", "o_proj"}


def test_lora_plain_names_would_also_hit_the_audio_tower(tiny_dir: Path):
    """Why the regex exists: the audio conformer has its own q/k/v_proj."""
    wrapped = lora_wrapped(load_model(tiny_dir), ["q_proj", "k_proj", "v_proj", "o_proj"])
    assert any(".audio_tower." in name for name in wrapped)


def test_the_sentencepiece_file_tokenizes_as_the_tokenizer_does():
    """tokenizer.model (what llama.cpp's converter reads) splits text exactly as the transformers tokenizer."""
    import sentencepiece

    processor = sentencepiece.SentencePieceProcessor()
    processor.LoadFromSerializedProto(tiny.build_sentencepiece_model())
    tokenizer = tiny.build_tokenizer()
    assert processor.vocab_size() == len(tokenizer)
    for text in ["bin blue at f two now", "Read their lips, 12 rows!\n\nok", "héllo wörld"]:
        assert processor.EncodeAsIds(text) == tokenizer(text, add_special_tokens=False)["input_ids"]
    assert processor.IsControl(tiny.END_OF_TURN_ID) and processor.IsByte(tokenizer.convert_tokens_to_ids("<0x41>"))
