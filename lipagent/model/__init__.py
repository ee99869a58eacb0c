"""Stage 3, the models: the prompt, loading base models (4-bit), LoRA training with TRL, grammar-constrained decoding,
the readers (Gemma 3n + adapter, the baseline lip reader) and live reading."""
