"""A tiny random Gemma 3n (model + processor) that loads offline, for tests and CPU smoke runs.

The real checkpoint is 7.8 B parameters and the Hub is unreachable here, so everything is built from a
config: the same three towers, token layout, image processor and chat template as `google/gemma-3n-E4B-it`,
only narrow (0.85 M parameters; forward+backward on one image ~0.3-0.4 s on CPU). What must stay as in the
real model:

- The vision tower's output width is 2048: timm's `MobileNetV5Encoder` hard-codes its fusion adapter's
  (MSFA) output channels, so `vision_config.hidden_size` stays 2048.
- 256 soft tokens per image: `msfa_output_resolution`**2 == `vision_soft_tokens_per_image` ==
  processor `image_seq_length` (16 x 16, as in the real model).
- The vocabulary layout: text tokens, then a 128-token vision block (`<end_of_image>`, `<image_soft_token>`
  first), then a 128-token audio block (`<end_of_audio>`, `<audio_soft_token>` first); the model routes ids by
  these offsets. `<start_of_image>`/`<start_of_audio>` end the text block, turn markers keep ids 105/106.

The vision encoder is `lipagent.model.tiny_vision`'s timm model, registered when either module is imported (the
library's loaders import it themselves before building a model).
"""

from __future__ import annotations

import itertools
import string
import struct
from pathlib import Path
from typing import Any

from lipagent.model.tiny_vision import IMAGE_SIZE, TIMM_ARCHITECTURE
from lipagent.torch_compat import ensure_torchvision_importable

ensure_torchvision_importable()

import torch  # noqa: E402
import transformers  # noqa: E402
from tokenizers import AddedToken  # noqa: E402

__all__ = [
    "TIMM_ARCHITECTURE",
    "build_config",
    "build_model",
    "build_processor",
    "build_tokenizer",
    "save_tiny_model",
    "zero_mean_filters",
]

IMAGE_SOFT_TOKENS = 256
AUDIO_SOFT_TOKENS = 188
VISION_HIDDEN_SIZE = 2048
TEXT_VOCAB_SIZE = 512
VISION_VOCAB_SIZE = 128
AUDIO_VOCAB_SIZE = 128

PAD_ID, EOS_ID, BOS_ID, UNK_ID, MASK_ID = range(5)
START_OF_TURN_ID, END_OF_TURN_ID = 105, 106
BOI_ID, BOA_ID = TEXT_VOCAB_SIZE - 2, TEXT_VOCAB_SIZE - 1
EOI_ID, IMAGE_TOKEN_ID = TEXT_VOCAB_SIZE, TEXT_VOCAB_SIZE + 1
EOA_ID, AUDIO_TOKEN_ID = TEXT_VOCAB_SIZE + VISION_VOCAB_SIZE, TEXT_VOCAB_SIZE + VISION_VOCAB_SIZE + 1
VOCAB_SIZE = TEXT_VOCAB_SIZE + VISION_VOCAB_SIZE + AUDIO_VOCAB_SIZE

LLAMA_CPP_SHAPE = {
    "hidden_size": 2048,
    "hidden_size_per_layer_input": 256,
    "laurel_rank": 64,
    "intermediate_size": 256,
    "num_kv_shared_layers": 0,
    "activation_sparsity_pattern": [0.95] * 4,
}
"""Text-model widths for `build_config(llama_cpp_shape=True)`, the tiny model a GGUF export is tested with.
llama.cpp's Gemma 3n graph hard-codes what E2B and E4B share: per-layer inputs of 256, LAUREL rank 64, activation
sparsity in the first 10 layers, a KV cache of their own in the first 20 (so 4 layers share none), and its mmproj
check takes the vision width (2048) for the text width. The MLP is 256 wide because llama.cpp's sparsity cut-off
uses the unbiased standard deviation (0.2% off at 256, 1.6% at 32). 47 M parameters instead of 0.85 M, so only the
GGUF tests pay for them."""

NAMED_SPECIAL_TOKENS = {
    "image_token": "<image_soft_token>",
    "boi_token": "<start_of_image>",
    "eoi_token": "<end_of_image>",
    "audio_token": "<audio_soft_token>",
    "boa_token": "<start_of_audio>",
    "eoa_token": "<end_of_audio>",
}
SPECIAL_TOKEN_IDS = {
    "<pad>": PAD_ID,
    "<eos>": EOS_ID,
    "<bos>": BOS_ID,
    "<unk>": UNK_ID,
    "<mask>": MASK_ID,
    "<start_of_turn>": START_OF_TURN_ID,
    "<end_of_turn>": END_OF_TURN_ID,
    "<start_of_image>": BOI_ID,
    "<start_of_audio>": BOA_ID,
    "<end_of_image>": EOI_ID,
    "<image_soft_token>": IMAGE_TOKEN_ID,
    "<end_of_audio>": EOA_ID,
    "<audio_soft_token>": AUDIO_TOKEN_ID,
}

# The chat template shipped with google/gemma-3n-E4B-it (transformers' convert_gemma3n_weights.py).
CHAT_TEMPLATE = """{{ bos_token }}
{%- if messages[0]['role'] == 'system' -%}
    {%- if messages[0]['content'] is string -%}
        {%- set first_user_prefix = messages[0]['content'] + '\\n\\n' -%}
    {%- else -%}
        {%- set first_user_prefix = messages[0]['content'][0]['text'] + '\\n\\n' -%}
    {%- endif -%}
    {%- set loop_messages = messages[1:] -%}
{%- else -%}
    {%- set first_user_prefix = "" -%}
    {%- set loop_messages = messages -%}
{%- endif -%}
{%- for message in loop_messages -%}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}
        {{ raise_exception("Conversation roles must alternate user/assistant/user/assistant/...") }}
    {%- endif -%}
    {%- if (message['role'] == 'assistant') -%}
        {%- set role = "model" -%}
    {%- else -%}
        {%- set role = message['role'] -%}
    {%- endif -%}
    {{ '<start_of_turn>' + role + '\\n' + (first_user_prefix if loop.first else "") }}
    {%- if message['content'] is string -%}
        {{ message['content'] | trim }}
    {%- elif message['content'] is iterable -%}
        {%- for item in message['content'] -%}
            {%- if item['type'] == 'audio' -%}
                {{ '<audio_soft_token>' }}
            {%- elif item['type'] == 'image' -%}
                {{ '<image_soft_token>' }}
            {%- elif item['type'] == 'text' -%}
                {{ item['text'] | trim }}
            {%- endif -%}
        {%- endfor -%}
    {%- else -%}
        {{ raise_exception("Invalid content type") }}
    {%- endif -%}
    {{ '<end_of_turn>\\n' }}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{'<start_of_turn>model\\n'}}
{%- endif -%}
"""


def build_config(llama_cpp_shape: bool = False) -> transformers.Gemma3nConfig:
    """Gemma 3n config with real-model token layout and soft-token counts, but ~1 M parameters (or, with
    `llama_cpp_shape`, the text widths llama.cpp can run: LLAMA_CPP_SHAPE)."""
    text_settings = {
        "vocab_size": VOCAB_SIZE,
        "vocab_size_per_layer_input": TEXT_VOCAB_SIZE,
        "hidden_size": 64,
        "hidden_size_per_layer_input": 16,
        "intermediate_size": 128,
        "num_hidden_layers": 4,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "head_dim": 32,
        "layer_types": ["sliding_attention", "full_attention", "sliding_attention", "full_attention"],
        "num_kv_shared_layers": 2,
        "activation_sparsity_pattern": [0.95, 0.0, 0.0, 0.0],
        "laurel_rank": 8,
        "max_position_embeddings": 2048,
        "pad_token_id": PAD_ID,
        "eos_token_id": EOS_ID,
        "bos_token_id": BOS_ID,
    }
    if llama_cpp_shape:
        text_settings.update(LLAMA_CPP_SHAPE)
    text = transformers.Gemma3nTextConfig(**text_settings)
    vision = transformers.Gemma3nVisionConfig(
        architecture=TIMM_ARCHITECTURE,
        hidden_size=VISION_HIDDEN_SIZE,
        vocab_size=VISION_VOCAB_SIZE,
        vocab_offset=TEXT_VOCAB_SIZE,
    )
    audio = transformers.Gemma3nAudioConfig(
        vocab_size=AUDIO_VOCAB_SIZE,
        vocab_offset=TEXT_VOCAB_SIZE + VISION_VOCAB_SIZE,
        hidden_size=32,
        conf_num_attention_heads=2,
        conf_num_hidden_layers=1,
        sscp_conv_channel_size=[8, 4],
    )
    return transformers.Gemma3nConfig(
        text_config=text,
        vision_config=vision,
        audio_config=audio,
        vision_soft_tokens_per_image=IMAGE_SOFT_TOKENS,
        audio_soft_tokens_per_image=AUDIO_SOFT_TOKENS,
        boi_token_id=BOI_ID,
        eoi_token_id=EOI_ID,
        image_token_id=IMAGE_TOKEN_ID,
        boa_token_id=BOA_ID,
        eoa_token_id=EOA_ID,
        audio_token_id=AUDIO_TOKEN_ID,
        eos_token_id=[EOS_ID, END_OF_TURN_ID],
    )


def build_model(
    seed: int = 0, llama_cpp_shape: bool = False, zero_mean: bool = False
) -> transformers.Gemma3nForConditionalGeneration:
    """Random-weight tiny model; the seed fixes every weight. `zero_mean`: a vision tower that tells mosaics apart
    (`zero_mean_filters`), for a model meant to learn from them."""
    torch.manual_seed(seed)
    model = transformers.Gemma3nForConditionalGeneration(build_config(llama_cpp_shape))
    if zero_mean:
        zero_mean_filters(model.model.vision_tower)
    model.generation_config = build_generation_config()
    return model.eval()


def zero_mean_filters(tower: torch.nn.Module) -> None:
    """Make every spatial convolution of a random vision tower respond to change, not brightness.

    Mosaics of one corpus share most of their picture: the image-specific part of their pixels' mean square is 0.75%
    on s1. Random filters pass that common picture on and the clips' differences drown in it (0.17% of the tower's
    output, so a small Gemma 3n trained on it stays image-blind); filters that sum to zero, as trained edge
    detectors do, keep the differences (75% of the output). The price is a tower that amplifies small differences:
    flat regions leave activations near zero, which its norms scale up, so llama.cpp's f16 tower reads such a model
    less exactly (first logits 14% apart instead of under 1%) and a flat picture gives it NaN.
    """
    with torch.no_grad():
        for module in tower.modules():
            if isinstance(module, torch.nn.Conv2d) and module.weight[0].numel() > 1:
                module.weight.sub_(module.weight.mean(dim=(1, 2, 3), keepdim=True))


def build_generation_config() -> transformers.GenerationConfig:
    """Generation defaults of the real -it checkpoint: stop on `<eos>` or `<end_of_turn>`."""
    return transformers.GenerationConfig(
        bos_token_id=BOS_ID,
        eos_token_id=[EOS_ID, END_OF_TURN_ID],
        pad_token_id=PAD_ID,
        do_sample=True,
        top_k=64,
        top_p=0.95,
    )


def _text_vocab() -> dict[str, int]:
    """Ids 0-106 as in Gemma, then byte fallback, SentencePiece-style characters and word-start pieces."""
    unused = (f"<unused{i}>" for i in itertools.count())
    tokens = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>", "[multimodal]"]
    tokens += [next(unused) for _ in range(START_OF_TURN_ID - len(tokens))]
    tokens += ["<start_of_turn>", "<end_of_turn>", "\n", "\n\n"]
    tokens += [f"<0x{b:02X}>" for b in range(256)]
    tokens += ["▁", *string.ascii_lowercase, *string.ascii_uppercase, *string.digits, *string.punctuation]
    tokens += [f"▁{c}" for c in string.ascii_lowercase]
    tokens += [next(unused) for _ in range(BOI_ID - len(tokens))]
    tokens += ["<start_of_image>", "<start_of_audio>"]
    return {token: i for i, token in enumerate(tokens)}


def _vocab() -> dict[str, int]:
    """Full vocabulary: text block, then the vision and audio blocks the model embeds separately."""
    vocab = _text_vocab()
    vision = ["<end_of_image>", "<image_soft_token>"]
    vision += [f"<image_extra{i}>" for i in range(VISION_VOCAB_SIZE - len(vision))]
    audio = ["<end_of_audio>", "<audio_soft_token>"]
    audio += [f"<audio_extra{i}>" for i in range(AUDIO_VOCAB_SIZE - len(audio))]
    for token in vision + audio:
        vocab[token] = len(vocab)
    return vocab


def _merges() -> list[tuple[str, str]]:
    return [("\n", "\n")] + [("▁", c) for c in string.ascii_lowercase]


def build_tokenizer() -> transformers.GemmaTokenizer:
    """Gemma-style BPE (byte fallback, "▁" for spaces) whose special tokens sit where the model expects."""
    vocab = _vocab()
    if any(vocab[token] != i for token, i in SPECIAL_TOKEN_IDS.items()):
        raise RuntimeError("the vocabulary no longer puts the special tokens at SPECIAL_TOKEN_IDS")
    added = {i: AddedToken(token, special=True, normalized=False) for token, i in SPECIAL_TOKEN_IDS.items()}
    return transformers.GemmaTokenizer(
        vocab=vocab,
        merges=_merges(),
        added_tokens_decoder=added,
        extra_special_tokens=NAMED_SPECIAL_TOKENS,
        add_bos_token=True,
        chat_template=CHAT_TEMPLATE,
    )


def _protobuf_field(number: int, value: bytes | str | int | float) -> bytes:
    """One protobuf field: length-delimited for bytes/str, varint for int and bool, 32-bit for float."""

    def varint(n: int) -> bytes:
        out = bytearray()
        while True:
            out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
            n >>= 7
            if not n:
                return bytes(out)

    if isinstance(value, str):
        value = value.encode("utf-8")
    if isinstance(value, bytes):
        return varint(number << 3 | 2) + varint(len(value)) + value
    if isinstance(value, float):
        return varint(number << 3 | 5) + struct.pack("<f", value)
    return varint(number << 3) + varint(int(value))


def sentencepiece_model(vocab: dict[str, int], special: set[str], ids: dict[str, int]) -> bytes:
    """A vocabulary as a SentencePiece BPE model (`tokenizer.model`), the file the real checkpoint ships and
    llama.cpp's converter reads. `special` tokens become control pieces, `<0x..>` byte pieces, other `<...>`
    unused ones; `ids` gives unk/bos/eos/pad. Written as protobuf by hand: sentencepiece's generated module needs a
    newer protobuf than MediaPipe's pin allows. Merged pieces score above single characters, so SentencePiece's
    highest-score merging splits text as BPE merges of those pieces do."""
    normal, unknown, control, unused, byte = 1, 2, 3, 5, 6
    pieces = b""
    for token, i in sorted(vocab.items(), key=lambda item: item[1]):
        kind = (
            unknown
            if i == ids["unk"]
            else control
            if token in special
            else byte
            if token.startswith("<0x")
            else unused
            if token.startswith("<")
            else normal
        )
        score = 0.0 if len(token) > 1 and kind == normal else -1.0 - i
        pieces += _protobuf_field(1, _protobuf_field(1, token) + _protobuf_field(2, score) + _protobuf_field(3, kind))
    trainer = b"".join(
        _protobuf_field(number, value)
        for number, value in [
            (3, 2),
            (4, len(vocab)),
            (35, True),
            (40, ids["unk"]),
            (41, ids["bos"]),
            (42, ids["eos"]),
            (43, ids["pad"]),
        ]
    )
    normalizer = b"".join(
        _protobuf_field(number, value) for number, value in [(1, "identity"), (3, False), (4, False), (5, True)]
    )
    return pieces + _protobuf_field(2, trainer) + _protobuf_field(3, normalizer)


def build_sentencepiece_model() -> bytes:
    """The tiny vocabulary as `tokenizer.model`."""
    return sentencepiece_model(
        _vocab(),
        set(SPECIAL_TOKEN_IDS) | {"[multimodal]"},
        {"unk": UNK_ID, "bos": BOS_ID, "eos": EOS_ID, "pad": PAD_ID},
    )


def build_processor() -> transformers.Gemma3nProcessor:
    """Processor with the real model's image/audio preprocessing and chat template."""
    image_processor = transformers.SiglipImageProcessor(
        size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
        resample=transformers.image_utils.PILImageResampling.BILINEAR,
        image_mean=(0.5, 0.5, 0.5),
        image_std=(0.5, 0.5, 0.5),
        do_normalize=False,
    )
    return transformers.Gemma3nProcessor(
        feature_extractor=transformers.Gemma3nAudioFeatureExtractor(),
        image_processor=image_processor,
        tokenizer=build_tokenizer(),
        chat_template=CHAT_TEMPLATE,
        image_seq_length=IMAGE_SOFT_TOKENS,
        audio_seq_length=AUDIO_SOFT_TOKENS,
    )


def save_tiny_model(
    directory: str | Path, seed: int = 0, llama_cpp_shape: bool = False, zero_mean: bool = False
) -> Path:
    """Write the tiny model and its processor to `directory`; same seed, same files."""
    directory = Path(directory)
    build_model(seed, llama_cpp_shape, zero_mean).save_pretrained(directory)
    build_processor().save_pretrained(directory)
    (directory / "tokenizer.model").write_bytes(build_sentencepiece_model())
    return directory


def save_random_adapter(
    base: str | Path, directory: str | Path, lora: Any = None, std: float = 0.5, dtype: torch.dtype | None = None
) -> Path:
    """A LoRA adapter on a saved model (the tiny one, or the random E4B of the benchmarks), as training leaves one:
    lora_B weights drawn from N(0, std), not zero, so merging and exporting matter; the base's processor; the
    reading record (default mosaic settings, the prompt). `lora`: a peft LoraConfig (default: rank 4 on the
    recipe's targets)."""
    import json

    from peft import LoraConfig, get_peft_model

    from lipagent.config import DEFAULT_CONFIG
    from lipagent.model.prompt import PROMPT
    from lipagent.model.training import LORA_TARGET_MODULES
    from lipagent.records import READING_RECORD

    directory = Path(directory)
    model = transformers.AutoModelForImageTextToText.from_pretrained(base, dtype=dtype)
    lora = lora or LoraConfig(r=4, lora_alpha=8, target_modules=LORA_TARGET_MODULES)
    peft_model = get_peft_model(model, lora)
    torch.manual_seed(0)
    for name, parameter in peft_model.named_parameters():
        if "lora_B" in name:
            parameter.data.normal_(0, std)
    peft_model.save_pretrained(directory)
    transformers.AutoProcessor.from_pretrained(base).save_pretrained(directory)
    (directory / READING_RECORD).write_text(json.dumps({"mosaic": DEFAULT_CONFIG.to_dict(), "prompt": PROMPT}))
    return directory
