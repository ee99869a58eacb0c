"""The model stage: the prompt, loading base models (4-bit, the tiny CPU encoder, merging an adapter), LoRA training
with TRL, grammar-constrained decoding, the baseline network and its training, and the model card."""
