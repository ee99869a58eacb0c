"""The one instruction the model sees with every mosaic, in training and at inference.

The dataset stays model-agnostic (image + text); these helpers turn a row into the chat that
training uses and the chat that inference sends, so the two can never drift apart.
"""

from __future__ import annotations

from typing import Any

from lipagent.config import DEFAULT_CONFIG

PROMPT = (
    f"The image shows {DEFAULT_CONFIG.num_frames} frames of a person's mouth while they speak, in time order "
    f"from left to right and top to bottom ({DEFAULT_CONFIG.rows} rows of {DEFAULT_CONFIG.cols}). "
    "Read their lips and write the sentence they say, in lowercase words only."
)


def user_turn(prompt: str = PROMPT) -> dict[str, Any]:
    """The user message: the mosaic first, then the instruction."""
    return {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}


def assistant_turn(text: str) -> dict[str, Any]:
    return {"role": "assistant", "content": [{"type": "text", "text": text}]}


def training_example(image: Any, text: str) -> dict[str, Any]:
    """A prompt/completion row as TRL's SFTTrainer reads it, so only the answer is learned."""
    return {"prompt": [user_turn()], "completion": [assistant_turn(text)], "images": [image]}


def inference_messages() -> list[dict[str, Any]]:
    """The chat inference sends with a mosaic (the processor adds the generation prompt)."""
    return [user_turn()]


def chat_prompt(processor: Any) -> str:
    """The inference chat as text, rendered by the call TRL's training collator makes (one image placeholder, before
    the processor expands it); the Gemma reader sends it, and a GGUF export stores it so llama.cpp reads the same."""
    from PIL import Image
    from trl.data_utils import apply_chat_template, prepare_multimodal_messages

    blank = Image.new("RGB", (DEFAULT_CONFIG.width, DEFAULT_CONFIG.height))
    messages = prepare_multimodal_messages(inference_messages(), images=[blank])
    return apply_chat_template({"prompt": messages}, processor)["prompt"]
