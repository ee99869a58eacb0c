"""Stand-ins for what this machine cannot have: a tiny random Gemma 3n and a synthetic GRID-like corpus.

Imported by the tests, the demo and the benchmarks. Library code imports nothing from here, except
`lipagent.model.modeling.register_stand_in_models`, which loads the tiny model's vision encoder only when a checkpoint
names it."""

TINY_TIMM_ARCHITECTURE = "mobilenetv5_lipagent_tiny_enc"
"""The timm name of the tiny model's vision encoder (`tiny_gemma3n` registers it): a checkpoint whose
`vision_config.architecture` says this needs that module imported before it loads."""
