"""LoRA fine-tuning of Gemma 3n on the mosaic dataset with TRL's SFTTrainer: the pieces behind train/sft.py.

`train/sft.py` is only the command line; everything a test, a benchmark or another script needs to reproduce a
training run lives here: the argument dataclasses and parser, loading the dataset from a folder written by
`lipagent prepare` or from the Hub, turning rows into TRL prompt/completion samples with the one prompt of
`lipagent.model.prompt`, the LoRA and 4-bit configs, building the trainer, resuming, and writing the final adapter
atomically.

Why the dataset is transformed lazily (`Dataset.with_transform`) instead of with `Dataset.map`: `map` would
re-encode every decoded JPEG mosaic (datasets saves a PIL image in its own format at default quality), so the
model would train on slightly different pixels than inference sees, and a copy of the whole dataset would be
written to the cache first. The transform needs the raw `image` and `text` columns, which the Trainer would drop
as "unused", so `remove_unused_columns` is forced off.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from lipagent.quiet import quiet_known_library_warnings
from lipagent.torch_compat import ensure_torchvision_importable

quiet_known_library_warnings()
ensure_torchvision_importable()  # before peft/trl/timm import torchvision on a CPU-only box

import datasets  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from accelerate import PartialState  # noqa: E402
from accelerate.utils import DistributedType  # noqa: E402
from peft import LoraConfig  # noqa: E402
from PIL import Image  # noqa: E402
from transformers.trainer_utils import get_last_checkpoint  # noqa: E402
from trl import (  # noqa: E402
    ModelConfig,
    ScriptArguments,
    SFTConfig,
    SFTTrainer,
    TrlParser,
    get_peft_config,
    get_quantization_config,
)

from lipagent.config import DEFAULT_CONFIG, MosaicConfig  # noqa: E402
from lipagent.model.efficiency import (  # noqa: E402
    FixedLengthCollator,
    compile_decoder_layers,
    drop_audio_tower,
    keep_per_layer_embeddings_on_host,
)
from lipagent.model.loading import (  # noqa: E402
    QUANTIZATION_SKIP_MODULES,
    quantization_record,
    register_tiny_encoder,
)
from lipagent.model.prompt import PROMPT, prompt_for, training_example  # noqa: E402
from lipagent.records import READING_RECORD, RecordError, read_dataset_record, resolve  # noqa: E402
from lipagent.transform.augment import Augmentation, augment_mosaic  # noqa: E402
from lipagent.transform.mosaic import mosaic_image  # noqa: E402

__all__ = [
    "FINAL_ADAPTER",
    "LORA_TARGET_MODULES",
    "LipSFTConfig",
    "LipSFTTrainer",
    "LipScriptArguments",
    "MosaicAugmenter",
    "TrainingSetupError",
    "build_trainer",
    "load_mosaic_dataset",
    "lora_config",
    "make_parser",
    "parse_args",
    "quantization_config",
    "reading_record",
    "resolve_checkpoint",
    "save_final_adapter",
    "to_training_rows",
    "train",
    "training_augmenter",
    "training_split",
]

logger = logging.getLogger(__name__)

LORA_TARGET_MODULES = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj)"
"""LoRA on the language model's attention projections only. Plain names (`q_proj`, ...) also match the audio
tower's conformer attention, which never sees an input here; PEFT full-matches this string as a regex."""

FINAL_ADAPTER = "final-adapter"
"""Folder under --output_dir holding the finished adapter and processor (what eval, Hub push and inference load)."""

REQUIRED_COLUMNS = ("image", "text")
RESUME_LATEST = ("last", "latest", "true")


class TrainingSetupError(RuntimeError):
    """A run cannot start as configured; the message says what to change."""


@dataclass
class LipScriptArguments(ScriptArguments):
    """TRL's script arguments plus the subset knob for smoke and overfit runs."""

    dataset_name: str | None = field(
        default=None,
        metadata={"help": "A folder written by `lipagent prepare`, or a Hub dataset id with the same columns."},
    )
    dataset_test_split: str = field(
        default="validation",
        metadata={"help": "Split evaluated during training when --eval_strategy is not 'no'."},
    )
    max_samples: int | None = field(
        default=None,
        metadata={"help": "Train on the first N samples of the train split only (smoke runs, overfitting checks)."},
    )
    augment_shift: int = field(
        default=0,
        metadata={"help": "Move every cell of a training mosaic by up to N pixels, one draw per clip (0: off)."},
    )
    augment_flip: bool = field(
        default=False, metadata={"help": "Mirror every cell of half the training mosaics (time order kept)."}
    )
    augment_gamma: float = field(
        default=0.0,
        metadata={"help": "Bend a training mosaic's brightness by an exponent within 1 +/- G, per clip (0: off)."},
    )


@dataclass
class LipSFTConfig(SFTConfig):
    """TRL's SFTConfig with `--out` accepted for --output_dir, the output flag every other lipagent command uses."""

    output_dir: str | None = field(
        default=None,
        metadata={"help": "Folder for checkpoints, trainer_state.json and final-adapter/.", "aliases": ["--out"]},
    )
    projector_learning_rate: float | None = field(
        default=None,
        metadata={
            "help": "Learning rate of the vision projector (embed_vision) where it is trained whole "
            "(--lora_modules_to_save embed_vision); default: --learning_rate."
        },
    )
    drop_audio_tower: bool = field(
        default=True,
        metadata={
            "help": "Leave Gemma 3n's audio tower (0.68 B parameters in E4B, never run on a mosaic) out of the "
            "trained model, freeing its memory (false: keep it)."
        },
    )
    per_layer_embeddings_on_host: bool = field(
        default=False,
        metadata={
            "help": "Keep Gemma 3n's per-layer embedding table (2.35 B parameters in E4B, 4.7 GB in bf16, which "
            "4-bit loading leaves unquantized) in the host's memory; only the rows a batch uses reach the GPU."
        },
    )
    pad_to_length: int | None = field(
        default=None,
        metadata={
            "help": "Pad every batch on the right to this many tokens (a GRID sample has about 330 with E4B's "
            "processor), so compiled layers see one shape; the loss is unchanged."
        },
    )
    compile_layers: str | None = field(
        default=None,
        metadata={
            "help": "torch.compile each decoder layer of the language model with this backend (inductor on a GPU): "
            "regional compilation, fewer and fused kernels; pair with --pad_to_length so batches keep one shape."
        },
    )
    compile_layers_mode: str | None = field(
        default=None,
        metadata={"help": "torch.compile mode for --compile_layers (reduce-overhead: CUDA graphs; default: none)."},
    )


PROJECTOR = "embed_vision"
"""Gemma 3n's projector from the vision tower's features into the language model's embedding space."""


class LipSFTTrainer(SFTTrainer):
    """TRL's SFTTrainer, with the projector in a parameter group of its own learning rate when one is asked for
    (transformers builds one learning rate for every trained weight; the groups are split after it has built them,
    before any step, so its weight-decay split and the scheduler's per-group rates still apply), and the model
    made leaner after TRL has loaded and wrapped it (`lipagent.model.efficiency`).

    TRL's SFTTrainer already computes the LM head only where the loss is: its fused head projects just the
    positions with a label on a GPU with Triton (every position, in tiles, elsewhere), so a sample's ~330 tokens
    cost the 262,144-word head at their few answer tokens only."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        settings = self.args
        length = getattr(settings, "pad_to_length", None)
        if length is not None:
            pad_id = self.processing_class.tokenizer.pad_token_id
            self.data_collator = FixedLengthCollator(self.data_collator, length, pad_id)
        if getattr(settings, "drop_audio_tower", False):
            freed = drop_audio_tower(self.model)
            logger.info("audio tower left out: %.2f B parameters freed", freed / 1e9)
        if getattr(settings, "per_layer_embeddings_on_host", False):
            moved = keep_per_layer_embeddings_on_host(self.model)
            logger.info("per-layer embeddings kept in host memory: %.2f B parameters", moved / 1e9)
        backend = getattr(settings, "compile_layers", None)
        if backend:
            count = compile_decoder_layers(self.model, backend, getattr(settings, "compile_layers_mode", None))
            logger.info("%d decoder layers compiled with %s", count, backend)

    def create_optimizer(self, model: Any = None) -> torch.optim.Optimizer:
        optimizer = super().create_optimizer(model)
        rate = getattr(self.args, "projector_learning_rate", None)
        if rate is None:
            return optimizer
        projector = {id(p) for name, p in self.model.named_parameters() if PROJECTOR in name and p.requires_grad}
        if not projector:
            raise TrainingSetupError(
                f"--projector_learning_rate is set but no {PROJECTOR} weight is trained; add "
                f"--lora_modules_to_save {PROJECTOR}"
            )
        groups = []
        for group in optimizer.param_groups:
            for mine in (False, True):
                params = [p for p in group["params"] if (id(p) in projector) == mine]
                if params:
                    groups.append({**group, "params": params, **({"lr": rate} if mine else {})})
        optimizer.param_groups.clear()
        for group in groups:
            optimizer.add_param_group(group)
        return optimizer


def make_parser(description: str | None = None, prog: str | None = None) -> TrlParser:
    """Every knob is a flag or a YAML key (--config): script, SFTConfig (trainer) and ModelConfig (model, LoRA,
    4-bit) arguments, as in TRL's own scripts."""
    return TrlParser(
        (LipScriptArguments, LipSFTConfig, ModelConfig),
        description=description,
        prog=prog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


NO_DATASET = (
    "--dataset_name is required: a folder written by `lipagent prepare` or a Hub dataset id "
    "(or `dataset_name:` in the --config YAML)"
)


def parse_args(
    argv: list[str] | None = None, description: str | None = None, prog: str | None = None
) -> tuple[LipScriptArguments, SFTConfig, ModelConfig]:
    """Parse flags and --config YAML; a bf16 recipe on a machine without a GPU gets a hint instead of a trace."""
    argv = sys.argv[1:] if argv is None else argv
    try:
        script_args, training_args, model_args = make_parser(description, prog).parse_args_and_config(argv)
    except ValueError as error:
        if "bf16" in str(error):
            if not _gives("dataset_name", argv):
                raise TrainingSetupError(NO_DATASET) from None
            raise TrainingSetupError(
                f"{error}\nThis config trains in bf16, which needs a GPU. On a CPU use "
                "--config train/configs/tiny-cpu.yaml (or pass --bf16 false --dtype float32)."
            ) from error
        raise
    return script_args, training_args, model_args


def _gives(key: str, argv: list[str]) -> bool:
    """Whether `--key` is among the flags or a key of the --config YAML (checked before TRL's slower parse)."""
    if any(arg == f"--{key}" or arg.startswith(f"--{key}=") for arg in argv):
        return True
    for i, arg in enumerate(argv):
        if arg == "--config" and i + 1 < len(argv):
            config = Path(argv[i + 1])
        elif arg.startswith("--config="):
            config = Path(arg.split("=", 1)[1])
        else:
            continue
        if not config.is_file():
            return True  # TRL's parser names the missing file
        import yaml

        return key in (yaml.safe_load(config.read_text()) or {})
    return False


def load_mosaic_dataset(name: str, config: str | None = None) -> datasets.DatasetDict:
    """A folder written by `lipagent prepare`, or a Hub dataset id (fetched into, or found in, the Hub cache)."""
    try:
        folder = resolve(name, "dataset")
    except RecordError as error:
        raise TrainingSetupError(f"--dataset_name {error}") from None
    return datasets.load_dataset(str(folder), name=config)


@dataclass
class MosaicAugmenter:
    """Training mosaics changed as the baseline's clips are (`lipagent.transform.augment`), a fresh draw each time a
    row is read, so every epoch sees other changes; seeded, so a run repeats."""

    config: MosaicConfig
    augmentation: Augmentation
    seed: int = 0

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)

    def __call__(self, image: Any) -> Image.Image:
        mosaic = np.asarray(mosaic_image(image))
        return Image.fromarray(augment_mosaic(mosaic, self.config, self.rng, self.augmentation))


def to_training_rows(
    batch: dict[str, list[Any]], prompt: str = PROMPT, augment: MosaicAugmenter | None = None
) -> dict[str, list[Any]]:
    """Dataset rows (image, text, ...) -> TRL prompt/completion samples, each with `prompt` (the one for the
    dataset's mosaics: `lipagent.model.prompt.prompt_for`), the image changed by `augment` when given."""
    images = [augment(image) for image in batch["image"]] if augment else batch["image"]
    rows = [training_example(image, text, prompt) for image, text in zip(images, batch["text"], strict=True)]
    return {key: [row[key] for row in rows] for key in ("prompt", "completion", "images")}


def training_split(
    dataset: datasets.DatasetDict,
    split: str,
    max_samples: int | None = None,
    prompt: str = PROMPT,
    augment: MosaicAugmenter | None = None,
) -> datasets.Dataset:
    """One split, optionally its first `max_samples` rows, presented to TRL as prompt/completion samples."""
    if split not in dataset:
        raise TrainingSetupError(
            f"the dataset has no {split!r} split (it has {', '.join(dataset)}); pick one with "
            "--dataset_train_split/--dataset_test_split"
        )
    rows = dataset[split]
    missing = [column for column in REQUIRED_COLUMNS if column not in rows.column_names]
    if missing:
        raise TrainingSetupError(
            f"split {split!r} lacks column(s) {', '.join(missing)} (it has {', '.join(rows.column_names)}); "
            "train on a dataset written by `lipagent prepare`, whose rows hold a mosaic `image` and its `text`"
        )
    if max_samples is not None:
        if max_samples < 1:
            raise TrainingSetupError(f"--max_samples must be at least 1, got {max_samples}")
        rows = rows.select(range(min(max_samples, len(rows))))
    return rows.select_columns(list(REQUIRED_COLUMNS)).with_transform(
        partial(to_training_rows, prompt=prompt, augment=augment)
    )


def lora_config(model_args: ModelConfig) -> LoraConfig:
    """TRL's LoRA config from the model arguments, restricted to the language model unless targets are given."""
    if not model_args.use_peft:
        raise TrainingSetupError(
            "this script trains a LoRA adapter: pass --use_peft (the recipes in train/configs/ set use_peft: true)"
        )
    if model_args.lora_target_modules is None:
        model_args.lora_target_modules = LORA_TARGET_MODULES
    return get_peft_config(model_args)


def quantization_config(model_args: ModelConfig) -> transformers.BitsAndBytesConfig | None:
    """TRL's bitsandbytes config (NF4 for --load_in_4bit) minus the modules Gemma 3n cannot train quantized.

    No CUDA check: bitsandbytes 0.50 runs NF4 on CPU too (slowly), which the CPU tests use."""
    config = get_quantization_config(model_args)
    if config is None:
        return None
    try:
        import bitsandbytes  # noqa: F401
    except ImportError as error:
        raise TrainingSetupError("--load_in_4bit/--load_in_8bit need bitsandbytes: pip install bitsandbytes") from error
    if model_args.dtype not in ("bfloat16", "float16", "float32"):
        raise TrainingSetupError(
            f"4-bit computes in --dtype, which must be bfloat16, float16 or float32 here (got {model_args.dtype!r}); "
            "use --dtype bfloat16 on a GPU"
        )
    if not torch.cuda.is_available():
        logger.warning("bitsandbytes 4/8-bit on CPU works but is slow; use it for smoke tests only")
    config.llm_int8_skip_modules = list(QUANTIZATION_SKIP_MODULES)
    return config


def _device_map(training_args: SFTConfig, quantized: bool) -> dict[str, int] | None:
    """Where from_pretrained puts the weights: this process's GPU, or nowhere yet (CPU, FSDP, DeepSpeed).

    TRL's default ("auto" on a GPU) would spread the model over every visible GPU in each process of a FSDP run.
    """
    distributed = training_args.distributed_state.distributed_type
    if not torch.cuda.is_available() or distributed in (DistributedType.FSDP, DistributedType.DEEPSPEED):
        if quantized and distributed == DistributedType.FSDP:
            raise TrainingSetupError(
                "4-bit training is not supported with FSDP here: use "
                "train/configs/accelerate/multi_gpu_ddp.yaml (each GPU holds the 4-bit model)"
            )
        return None
    return {"": PartialState().local_process_index}


def model_init_kwargs(
    training_args: SFTConfig, model_args: ModelConfig, quantization: transformers.BitsAndBytesConfig | None
) -> dict[str, Any]:
    """from_pretrained keyword arguments, as TRL's sft.py builds them, plus the device map and quantization."""
    kwargs: dict[str, Any] = dict(
        revision=model_args.model_revision,
        trust_remote_code=training_args.trust_remote_code,
        attn_implementation=model_args.attn_implementation,
        dtype=model_args.dtype,
        device_map=_device_map(training_args, quantization is not None),
    )
    if quantization is not None:
        kwargs["quantization_config"] = quantization
    kwargs.update(training_args.model_init_kwargs or {})
    return kwargs


def load_processor(training_args: SFTConfig, model_args: ModelConfig) -> transformers.ProcessorMixin:
    """The model's processor; saved with the adapter so inference preprocesses exactly as training did."""
    return transformers.AutoProcessor.from_pretrained(
        model_args.model_name_or_path,
        revision=model_args.model_revision,
        trust_remote_code=training_args.trust_remote_code,
    )


def _prepare_training_args(training_args: SFTConfig) -> None:
    """Settings the lazy prompt/completion transform relies on."""
    if training_args.remove_unused_columns:
        logger.info("remove_unused_columns forced off: the sample transform needs the raw image/text columns")
    training_args.remove_unused_columns = False
    if training_args.completion_only_loss is False:
        logger.warning("completion_only_loss is off: the loss will also cover the prompt and the 256 image tokens")
    length = getattr(training_args, "pad_to_length", None)
    if getattr(training_args, "compile_layers", None):
        if training_args.torch_compile:
            raise TrainingSetupError(
                "--compile_layers compiles the decoder layers and --torch_compile the whole model: pick one"
            )
        if length is None:
            logger.warning("--compile_layers without --pad_to_length: each new batch length compiles the layers again")
    if length is not None and length < 1:
        raise TrainingSetupError(f"--pad_to_length must be a positive number of tokens, got {length}")


def build_trainer(
    script_args: LipScriptArguments,
    training_args: SFTConfig,
    model_args: ModelConfig,
    *,
    dataset: datasets.DatasetDict | None = None,
    model: transformers.PreTrainedModel | None = None,
    processor: transformers.ProcessorMixin | None = None,
    callbacks: list[transformers.TrainerCallback] | None = None,
    record: dict[str, Any] | None = None,
) -> SFTTrainer:
    """An SFTTrainer for LoRA on the mosaics; `dataset`, `model` and `processor` default to loading them from
    --dataset_name and --model_name_or_path (benchmarks pass a prebuilt random model instead), `record` (its prompt
    and mosaic settings) to the named dataset's `reading_record` (today's defaults for a dataset passed in)."""
    if model is None and not model_args.model_name_or_path:
        raise TrainingSetupError("no model: pass --model_name_or_path (a Hub id or a local folder)")
    if script_args.dataset_streaming:
        raise TrainingSetupError("--dataset_streaming is not supported: the mosaics (~20 kB each) fit on disk")
    prompt, mosaic = PROMPT, DEFAULT_CONFIG
    if dataset is None:
        if not script_args.dataset_name:
            raise TrainingSetupError("no dataset: pass --dataset_name (a `lipagent prepare` folder or a Hub id)")
        dataset = load_mosaic_dataset(script_args.dataset_name, script_args.dataset_config)
        record = record or reading_record(script_args.dataset_name)
    if record is not None:
        prompt, mosaic = record["prompt"], MosaicConfig.from_dict(record["mosaic"])
    augment = training_augmenter(script_args, mosaic, training_args.seed)
    _prepare_training_args(training_args)
    peft_config = lora_config(model_args)
    quantization = quantization_config(model_args) if model is None else None
    if model is None:
        register_tiny_encoder()
        training_args.model_init_kwargs = model_init_kwargs(training_args, model_args, quantization)
    evaluating = training_args.eval_strategy != "no"
    return LipSFTTrainer(
        model=model if model is not None else model_args.model_name_or_path,
        args=training_args,
        train_dataset=training_split(
            dataset, script_args.dataset_train_split, script_args.max_samples, prompt, augment
        ),
        eval_dataset=training_split(dataset, script_args.dataset_test_split, prompt=prompt) if evaluating else None,
        processing_class=processor if processor is not None else load_processor(training_args, model_args),
        peft_config=peft_config,
        callbacks=callbacks,
    )


def resolve_checkpoint(value: str | None, output_dir: str | Path) -> str | None:
    """--resume_from_checkpoint: a checkpoint folder, or 'last' for the newest checkpoint-N under --output_dir."""
    if value is None:
        return None
    if value.lower() in RESUME_LATEST:
        latest = get_last_checkpoint(str(output_dir)) if Path(output_dir).is_dir() else None
        if latest is None:
            raise TrainingSetupError(
                f"--resume_from_checkpoint {value}: no checkpoint-N folder in {output_dir} yet; start without the flag"
            )
        return latest
    if not Path(value).is_dir():
        raise TrainingSetupError(
            f"--resume_from_checkpoint {value}: no such folder; pass a checkpoint-N folder "
            f"written by an earlier run, or 'last'"
        )
    return value


def training_augmenter(script_args: LipScriptArguments, mosaic: MosaicConfig, seed: int) -> MosaicAugmenter | None:
    """The --augment_* flags as the train split's augmenter (None when all are off)."""
    try:
        augmentation = Augmentation(script_args.augment_shift, script_args.augment_flip, script_args.augment_gamma)
    except ValueError as error:
        raise TrainingSetupError(f"--augment_*: {error}") from None
    return MosaicAugmenter(mosaic, augmentation, seed) if augmentation.active else None


def reading_record(dataset_name: str) -> dict[str, Any]:
    """What inference must reproduce, saved beside the adapter as lipagent.json: the mosaic settings of the
    dataset trained on (from its card) and the prompt for them. Read before training starts, so a dataset whose settings
    are unknown stops the run at once rather than after hours."""
    try:
        dataset = read_dataset_record(resolve(dataset_name, "dataset"))
    except RecordError as error:
        raise TrainingSetupError(
            f"{error}; an adapter must record the mosaic settings it learned from, so that "
            "inference can build the same mosaics"
        ) from None
    return {
        "mosaic": dataset.mosaic.to_dict(),
        "speech_span": dataset.speech_span,
        "prompt": prompt_for(dataset.mosaic),
        "dataset": dataset_name,
    }


def save_final_adapter(trainer: SFTTrainer, output_dir: str | Path, record: dict[str, Any] | None = None) -> Path:
    """Write adapter + processor (+ the reading `record` as lipagent.json) to <output_dir>/final-adapter via a
    temp folder beside it and a rename, so that final-adapter/ is either absent, the previous complete adapter,
    or the new complete one."""
    output_dir = Path(output_dir)
    final = output_dir / FINAL_ADAPTER
    partial = output_dir / f"{FINAL_ADAPTER}.partial"
    state = trainer.accelerator
    if state.is_main_process and partial.exists():
        shutil.rmtree(partial)  # left by a run killed while saving
    state.wait_for_everyone()
    trainer.save_model(str(partial))  # every rank: FSDP gathers the weights; only the main process writes
    state.wait_for_everyone()
    if state.is_main_process:
        if record is not None:
            (partial / READING_RECORD).write_text(json.dumps(record, indent=2))
        previous = output_dir / f"{FINAL_ADAPTER}.previous"
        if previous.exists():
            shutil.rmtree(previous)
        if final.exists():
            final.rename(previous)
        partial.rename(final)
        shutil.rmtree(previous, ignore_errors=True)
    state.wait_for_everyone()
    return final


def train(script_args: LipScriptArguments, training_args: SFTConfig, model_args: ModelConfig) -> SFTTrainer:
    """Run (or resume) training; leaves trainer_state.json and final-adapter/ under --output_dir.

    Returns the finished trainer, whose model is the one the adapter was saved from."""
    if not script_args.dataset_name:
        raise TrainingSetupError(NO_DATASET)
    checkpoint = resolve_checkpoint(training_args.resume_from_checkpoint, training_args.output_dir)
    record = reading_record(script_args.dataset_name)
    record["quantization"] = quantization_record(get_quantization_config(model_args))
    trainer = build_trainer(script_args, training_args, model_args, record=record)
    if trainer.accelerator.is_main_process:
        trainer.model.print_trainable_parameters()
    trainer.train(resume_from_checkpoint=checkpoint)
    trainer.save_state()
    final = save_final_adapter(trainer, training_args.output_dir, record)
    trainer.accelerator.print(f"adapter written to {final}")
    trainer.end()
    return trainer


def main(argv: list[str] | None = None, description: str | None = None) -> int:
    """train/sft.py's work: parse, train; a setup mistake is one line and status 2."""
    try:
        train(*parse_args(argv, description=description))
    except TrainingSetupError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0
