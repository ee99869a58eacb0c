"""The one instruction the model sees with every mosaic, in training and at inference.

The dataset stays model-agnostic (image + text); these helpers turn a row into the chat that
training uses and the chat that inference sends, so the two can never drift apart.
"""

from __future__ import annotations

from typing import Any

from lipagent.config import DEFAULT_CONFIG, MosaicConfig
from lipagent.records import Record


def prompt_for(config: MosaicConfig) -> str:
    """The instruction for mosaics made with `config`: it says how many frames they hold and in what grid."""
    return (
        f"The image shows {config.num_frames} frames of a person's mouth while they speak, in time order "
        f"from left to right and top to bottom ({config.rows} rows of {config.cols}). "
        "Read their lips and write the sentence they say, in lowercase words only."
    )


PROMPT = prompt_for(DEFAULT_CONFIG)
"""The instruction for mosaics made with today's default settings."""


def recorded_prompt(record: Record) -> str:
    """The instruction a model was trained with: the one it recorded, else (a record without one) the one its mosaic
    settings give. A model never reads with today's default prompt unless it learned with it."""
    return record.prompt or prompt_for(record.mosaic)


def user_turn(prompt: str = PROMPT) -> dict[str, Any]:
    """The user message: the mosaic first, then the instruction."""
    return {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}


def assistant_turn(text: str) -> dict[str, Any]:
    return {"role": "assistant", "content": [{"type": "text", "text": text}]}


def training_example(image: Any, text: str, prompt: str = PROMPT) -> dict[str, Any]:
    """A prompt/completion row as TRL's SFTTrainer reads it, so only the answer is learned."""
    return {"prompt": [user_turn(prompt)], "completion": [assistant_turn(text)], "images": [image]}


def inference_messages(prompt: str = PROMPT) -> list[dict[str, Any]]:
    """The chat inference sends with a mosaic (the processor adds the generation prompt)."""
    return [user_turn(prompt)]


def chat_prompt(processor: Any, prompt: str = PROMPT) -> str:
    """The inference chat as text, rendered by the call TRL's training collator makes (one image placeholder, before
    the processor expands it); the Gemma reader sends it, and a GGUF export stores it so llama.cpp reads the same."""
    from PIL import Image
    from trl.data_utils import apply_chat_template, prepare_multimodal_messages

    blank = Image.new("RGB", (DEFAULT_CONFIG.width, DEFAULT_CONFIG.height))
    messages = prepare_multimodal_messages(inference_messages(prompt), images=[blank])
    return apply_chat_template({"prompt": messages}, processor)["prompt"]
