"""LoRA fine-tuning of Gemma 3n on GRID mouth mosaics with TRL (in the style of TRL's examples/scripts/sft_vlm.py).

Every knob is a flag or a key of the --config YAML (flags win): this script's own arguments (--dataset_name,
--max_samples, ...), TRL's SFTConfig (trainer: epochs, batch size, learning rate, bf16, checkpoints, ...) and
TRL's ModelConfig (--model_name_or_path, LoRA r/alpha/dropout/targets, --load_in_4bit for QLoRA, ...).

The full recipe, one GPU or several (same command; the accelerate config picks DDP or FSDP):

  accelerate launch --config_file train/configs/accelerate/single_gpu.yaml train/sft.py \\
      --config train/configs/gemma3n-e4b-lora.yaml --dataset_name team/grid-mosaics --output_dir out/gemma3n-lipreader

QLoRA on a smaller GPU:  add --load_in_4bit true
Resume a killed run:     add --resume_from_checkpoint last   (or a checkpoint-N folder)
Smoke / overfit runs:    add --max_steps 20 --max_samples 16
CPU smoke run (seconds, no network), on a tiny random model written by train/tiny_model.py:

  python train/sft.py --config train/configs/tiny-cpu.yaml --model_name_or_path TINY_DIR \\
      --dataset_name PREPARED_DIR --output_dir OUT

--dataset_name is a folder written by `lipagent prepare` or a Hub dataset id. The loss covers the answer only
(the sentence and the end-of-turn that closes it), never the instruction, the 256 image tokens or padding.
Output: OUT/checkpoint-N/ while training, then OUT/trainer_state.json (loss history) and OUT/final-adapter/
(adapter_model.safetensors, adapter_config.json, processor files), the latter written only once complete.
"""

from __future__ import annotations

import sys

from lipagent.interrupt import run_program, say_when_interrupted


def main(argv: list[str] | None = None) -> int:
    """Training; this docstring is its `--help`."""
    from lipagent.model.training import main as train

    say_when_interrupted(
        "sft.py: interrupted; checkpoints saved so far are kept, and the same command with "
        "--resume_from_checkpoint last resumes"
    )
    return train(argv, description=__doc__)


if __name__ == "__main__":
    sys.exit(run_program("sft.py", main))
