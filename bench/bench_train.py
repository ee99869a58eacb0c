"""Training speed and memory of a LoRA/QLoRA config: samples/s, tokens/s, model FLOPs utilisation, peak memory.

Runs the real training code (lipagent.model.training.build_trainer -> TRL SFTTrainer: the same dataset transform,
collator, LoRA targets and fused loss as train/sft.py) for --warmup-steps + --steps optimizer steps and times the
last --steps. Every train/sft.py flag and --config YAML key works here too.

  # CPU, seconds: the tiny random Gemma 3n (written to a temp folder) on synthetic mosaics
  python bench/bench_train.py --tiny
  python bench/bench_train.py --tiny --dataset_name grid-mosaics          # on real prepared mosaics
  # GPU: the real E4B architecture with random weights (no download), bf16 LoRA, then QLoRA
  python bench/bench_train.py --random-model e4b --config train/configs/gemma3n-e4b-lora.yaml
  python bench/bench_train.py --random-model e4b --config train/configs/gemma3n-e4b-lora.yaml --load_in_4bit true

How the figures are defined:
- samples/s, tokens/s: over the timed steps, wall clock from the end of the last warm-up step (data loading
  included); tokens are every attended token (256 image tokens + ~75 others per sample with a Gemma-sized
  vocabulary), summed over processes.
- MFU = achieved model FLOP/s / peak FLOP/s. Model FLOPs per sample are counted, not estimated: one
  forward+backward of a real sample under torch.utils.flop_counter.FlopCounterMode, activation checkpointing off
  (its recomputation is not useful work), for the backbone (vision tower, language model, LoRA; frozen weights get
  input gradients only, so ~2*N*T + 2*N*T, not the 6*N*T of full training), plus the LM head on the answer
  positions only. The executed count (TRL's fused head scores every position without Triton, and recomputes in
  its backward) and 6*N*T are printed beside it. Peak: --peak-tflops, else the bf16 dense peak of a known GPU;
  "n/a" on a CPU.
- peak memory: torch.cuda.max_memory_allocated during training on a GPU; the process's peak RSS on a CPU.

--random-model e4b builds Gemma3nConfig() (the E4B architecture, 7.8 B parameters) with random weights; speed does
not depend on weight values. Its processor has the real token layout (image soft token 262145, 256 per image,
262400 ids) and a word-level vocabulary for the prompt and GRID words, so sequences have the real model's lengths.
--random-model narrow is the same layout with tiny widths, to check that path on a CPU.
"""

from __future__ import annotations

import argparse
import atexit
import io
import json
import math
import random
import resource
import shutil
import string
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from lipagent.torch_compat import ensure_torchvision_importable

ensure_torchvision_importable()

import datasets  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from PIL import Image  # noqa: E402
from tokenizers import AddedToken  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402
from trl import ModelConfig, SFTConfig, SFTTrainer  # noqa: E402

import lipagent.testing.tiny_gemma3n as tiny  # noqa: E402
from lipagent.config import DEFAULT_CONFIG  # noqa: E402
from lipagent.grammar import SLOTS  # noqa: E402
from lipagent.model import training  # noqa: E402
from lipagent.model.prompt import PROMPT  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TINY_CONFIG = REPO / "train" / "configs" / "tiny-cpu.yaml"

PEAK_BF16_TFLOPS = (  # dense bf16 tensor-core peaks from NVIDIA's datasheets; first substring match wins
    ("H100 PCIe", 756.0),
    ("H100 NVL", 835.0),
    ("H100", 989.0),
    ("H200", 989.0),
    ("A100", 312.0),
    ("L40S", 362.0),
    ("L4", 121.0),
)

# Where google/gemma-3n-E4B-it puts its special tokens (Gemma3nConfig() defaults and its tokenizer).
REAL_SPECIAL_IDS = {
    "<pad>": 0,
    "<eos>": 1,
    "<bos>": 2,
    "<unk>": 3,
    "<mask>": 4,
    "<start_of_turn>": 105,
    "<end_of_turn>": 106,
    "<start_of_image>": 255999,
    "<start_of_audio>": 256000,
    "<end_of_image>": 262144,
    "<image_soft_token>": 262145,
    "<end_of_audio>": 262272,
    "<audio_soft_token>": 262273,
}
REAL_VOCAB_SIZE = 262400
SEGMENT_START_WORDS = ("user", "model", "The", *SLOTS["command"])  # after "\n" in the chat: no space before


@dataclass
class Figures:
    """What one timed run measured, and the rates derived from it."""

    device: str
    steps: int
    samples_per_step: int
    seconds: float
    tokens: int
    flops_per_sample: float
    executed_flops_per_sample: float
    flops_6nt_per_sample: float
    peak_tflops: float | None
    peak_memory_gib: float
    memory_kind: str
    trainable_params: int
    total_params: int

    @property
    def samples_per_s(self) -> float:
        return self.steps * self.samples_per_step / self.seconds

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds

    @property
    def achieved_tflops(self) -> float:
        return self.flops_per_sample * self.samples_per_s / 1e12

    @property
    def mfu(self) -> float | None:
        """None without a peak for the device or without a FLOP count (see run)."""
        if self.peak_tflops is None or math.isnan(self.flops_per_sample):
            return None
        return self.achieved_tflops / self.peak_tflops

    def report(self) -> str:
        mfu = (
            f"{self.mfu:.1%}"
            if self.mfu is not None
            else (
                "n/a (the FLOP count failed)"
                if math.isnan(self.flops_per_sample)
                else "n/a (no peak for this device; pass --peak-tflops)"
            )
        )
        peak = "n/a" if self.peak_tflops is None else f"{self.peak_tflops:g} TFLOP/s"
        per_sample = self.tokens / (self.steps * self.samples_per_step)
        return "\n".join(
            [
                f"device                {self.device}",
                f"parameters            {self.total_params:,} total, {self.trainable_params:,} trainable (LoRA)",
                f"timed                 {self.steps} steps x {self.samples_per_step} samples in {self.seconds:.2f} s",
                f"samples/s             {self.samples_per_s:.2f}",
                f"tokens/s              {self.tokens_per_s:,.0f}  ({per_sample:.0f} tokens per sample)",
                f"model FLOPs/sample    {self.flops_per_sample / 1e9:,.2f} GFLOP fwd+bwd (executed:"
                f" {self.executed_flops_per_sample / 1e9:,.2f}; 6*N*T, N = language-model matmul weights:"
                f" {self.flops_6nt_per_sample / 1e9:,.2f})",
                f"achieved              {self.achieved_tflops:.4g} TFLOP/s; peak {peak}",
                f"MFU                   {mfu}",
                f"peak memory           {self.peak_memory_gib:.2f} GiB ({self.memory_kind})",
            ]
        )


class StepClock(transformers.TrainerCallback):
    """Wall-clock time at the end of every optimizer step (GPU work finished)."""

    def __init__(self) -> None:
        self.ends: list[float] = []

    def on_step_end(self, args, state, control, **kwargs):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.ends.append(time.perf_counter())


def peak_tflops(flag: float | None) -> float | None:
    """--peak-tflops, else the bf16 dense peak of a known GPU, else None (a CPU or an unknown GPU)."""
    if flag is not None:
        return flag
    if not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name()
    return next((tflops for key, tflops in PEAK_BF16_TFLOPS if key in name), None)


def synthetic_mosaics(count: int, seed: int = 0) -> datasets.DatasetDict:
    """Noise mosaics (the default size, JPEG, like the real ones) with random GRID sentences: speed needs no real
    data."""
    rng = random.Random(seed)
    generator = torch.Generator().manual_seed(seed)
    images, texts = [], []
    for _ in range(count):
        pixels = torch.randint(0, 256, (DEFAULT_CONFIG.height, DEFAULT_CONFIG.width, 3), generator=generator)
        buffer = io.BytesIO()
        Image.fromarray(pixels.to(torch.uint8).numpy()).save(buffer, format="JPEG", quality=DEFAULT_CONFIG.jpeg_quality)
        images.append({"bytes": buffer.getvalue(), "path": None})
        texts.append(" ".join(rng.choice(words) for words in SLOTS.values()))
    features = datasets.Features({"image": datasets.Image(), "text": datasets.Value("string")})
    return datasets.DatasetDict(train=datasets.Dataset.from_dict({"image": images, "text": texts}, features=features))


def _words() -> list[str]:
    """Every word the prompt, the chat template and the GRID grammar produce."""
    text = PROMPT + " user model " + " ".join(w for words in SLOTS.values() for w in words)
    for mark in string.punctuation + string.digits:
        text = text.replace(mark, " ")
    return sorted(set(text.split()))


def real_layout_tokenizer() -> transformers.GemmaTokenizer:
    """Gemma-layout tokenizer (262400 ids, special tokens at the real ids) with one token per prompt/GRID word.

    The real SentencePiece vocabulary cannot be downloaded here; like it, this splits digits and punctuation and
    keeps common words whole, so the prompt and answers have about the real token counts.
    """
    by_id = {i: token for token, i in REAL_SPECIAL_IDS.items()}
    pieces = [
        "\n",
        "\n\n",
        "▁",
        *(f"<0x{b:02X}>" for b in range(256)),
        *string.ascii_letters,
        *string.digits,
        *string.punctuation,
    ]
    merges: list[tuple[str, str]] = [("\n", "\n")]
    # Whole words after a space first, then the few that start a segment (no space before them). Each word's
    # merges grow it from the left; putting all space-prefixed chains first keeps inner pairs from merging early.
    chains = [("▁", word) for word in _words()] + [("", word) for word in SEGMENT_START_WORDS]
    for start, word in chains:
        for end in range(1, len(word) + 1):
            left, piece = start + word[: end - 1], start + word[:end]
            if piece not in pieces:
                pieces.append(piece)
            if left and (left, word[end - 1]) not in merges:
                merges.append((left, word[end - 1]))
    free = (i for i in range(REAL_VOCAB_SIZE) if i not in by_id)
    for piece in pieces:
        by_id[next(free)] = piece
    for i in free:
        by_id[i] = f"<unused{i}>"
    vocab = {token: i for i, token in by_id.items()}
    added = {i: AddedToken(token, special=True, normalized=False) for token, i in REAL_SPECIAL_IDS.items()}
    return transformers.GemmaTokenizer(
        vocab=vocab,
        merges=merges,
        added_tokens_decoder=added,
        extra_special_tokens=tiny.NAMED_SPECIAL_TOKENS,
        add_bos_token=True,
        chat_template=tiny.CHAT_TEMPLATE,
    )


def real_layout_processor() -> transformers.Gemma3nProcessor:
    """The tiny processor's image/audio preprocessing (the real model's) with the real token layout."""
    base = tiny.build_processor()
    return transformers.Gemma3nProcessor(
        feature_extractor=base.feature_extractor,
        image_processor=base.image_processor,
        tokenizer=real_layout_tokenizer(),
        chat_template=tiny.CHAT_TEMPLATE,
        image_seq_length=tiny.IMAGE_SOFT_TOKENS,
        audio_seq_length=tiny.AUDIO_SOFT_TOKENS,
    )


def random_model_config(kind: str) -> transformers.Gemma3nConfig:
    """E4B as published (Gemma3nConfig() defaults), or its token layout with the tiny model's widths."""
    config = transformers.Gemma3nConfig()
    if kind == "narrow":
        narrow = tiny.build_config()
        narrow.text_config.vocab_size = config.text_config.vocab_size
        narrow.text_config.vocab_size_per_layer_input = config.text_config.vocab_size_per_layer_input
        narrow.vision_config.vocab_offset = config.vision_config.vocab_offset
        narrow.audio_config.vocab_offset = config.audio_config.vocab_offset
        for key in ("boi_token_id", "eoi_token_id", "image_token_id", "boa_token_id", "eoa_token_id", "audio_token_id"):
            setattr(narrow, key, getattr(config, key))
        config = narrow
    config.text_config.eos_token_id = [REAL_SPECIAL_IDS["<eos>"], REAL_SPECIAL_IDS["<end_of_turn>"]]
    return config


def random_model(kind: str, model_args: ModelConfig) -> transformers.PreTrainedModel:
    """Random weights straight on the device in --dtype; 4-bit goes through from_pretrained's quantizer."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = getattr(torch, model_args.dtype) if model_args.dtype not in (None, "auto") else torch.bfloat16
    torch.manual_seed(0)
    with torch.device(device):
        model = transformers.AutoModelForImageTextToText.from_config(random_model_config(kind), dtype=dtype)
    quantization = training.quantization_config(model_args)
    if quantization is None:
        return model
    quantized = type(model).from_pretrained(  # the Auto class refuses a None path
        None,
        config=model.config,
        state_dict=model.state_dict(),
        quantization_config=quantization,
        dtype=dtype,
        device_map={"": 0} if device == "cuda" else None,
    )
    del model
    if device == "cuda":
        torch.cuda.empty_cache()
    return quantized


class UnseenMatmuls:
    """Forward FLOPs of bitsandbytes 4-bit layers (2*rows*in*out), which run in its own gemm_4bit kernel that
    FlopCounterMode cannot see; their input gradient is a plain torch.matmul, which it counts."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.modules = [m for m in model.modules() if type(m).__name__ == "Linear4bit"]
        self.flops = 0
        self._handles: list = []

    def _forward(self, module: torch.nn.Linear, args: tuple, output: torch.Tensor) -> None:
        self.flops += 2 * (args[0].numel() // module.in_features) * module.in_features * module.out_features

    def __enter__(self) -> "UnseenMatmuls":
        self._handles = [module.register_forward_hook(self._forward) for module in self.modules]
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()


def _matmul_plus_flop(self_shape, a_shape, b_shape, *_, out_shape=None, **__) -> int:
    """addmm/baddbmm: the product's FLOPs. torch 2.11's own formulas bind a fourth positional argument (seen on
    the H200 with Gemma 3n) to out_shape and raise; this one takes and ignores it."""
    *batch, m, k = a_shape
    return 2 * math.prod(batch) * m * k * b_shape[-1]


MATMUL_PLUS = {torch.ops.aten.addmm: _matmul_plus_flop, torch.ops.aten.baddbmm: _matmul_plus_flop}


def _counted(trainer: SFTTrainer, step) -> float:
    """FLOPs of `step()` (a forward and a backward): FlopCounterMode's count plus the unseen 4-bit forwards."""
    with FlopCounterMode(display=False, custom_mapping=MATMUL_PLUS) as counter, UnseenMatmuls(trainer.model) as unseen:
        with trainer.compute_loss_context_manager():
            loss = step()
        loss.backward()
    trainer.model.zero_grad(set_to_none=True)
    return counter.get_total_flops() + unseen.flops


def count_flops_per_sample(trainer: SFTTrainer) -> tuple[float, float]:
    """(model FLOPs, executed FLOPs) of one forward+backward of one real sample (GRID samples differ by a few
    tokens; one sample keeps the un-checkpointed activations of E4B small), activation checkpointing off.

    Executed: the trainer's own loss. Model: the backbone (vision tower, language model, LoRA; frozen weights get
    input gradients only) back-propagated from the answer positions, plus the LM head on those positions only
    (2 forward + 2 input-gradient FLOPs per weight): TRL's fused head scores every position where Triton is
    missing (a CPU) and recomputes its tiles in the backward, which is not useful work.
    """
    batch = trainer.data_collator([trainer.train_dataset[0]])
    batch = {key: value.to(trainer.args.device) for key, value in batch.items()}
    model = trainer.model
    base = model.get_base_model()
    if base.is_activation_checkpointing:
        base.activation_checkpointing_disable()
    model.train()
    attention = base.config._attn_implementation
    # FlopCounterMode's SDPA formula asserts on grouped-query shapes (E4B has fewer KV heads than query heads);
    # eager attention repeats the KV heads and does the same matmuls in plain counted ops.
    base.set_attn_implementation("eager")
    try:
        executed = _counted(trainer, lambda: trainer.compute_loss(model, dict(batch)))  # it adds keys to its dict
        answer = batch["labels"][:, 1:] != -100
        inputs = {key: value for key, value in batch.items() if key != "labels"}

        def backbone_from_answer_positions() -> torch.Tensor:
            hidden = base.model(**inputs, use_cache=False).last_hidden_state[:, :-1]
            return hidden[answer].float().sum()

        backbone = _counted(trainer, backbone_from_answer_positions)
    finally:
        base.set_attn_implementation(attention)
    head = base.get_output_embeddings().weight
    return backbone + 4 * answer.sum().item() * head.numel(), executed


def matmul_weights(model: torch.nn.Module) -> int:
    """N of 6*N*T: weights of the language model's linear layers (embedding lookups and norms do no matmul)."""
    language_model = model.get_base_model().model.language_model
    return sum(m.in_features * m.out_features for m in language_model.modules() if isinstance(m, torch.nn.Linear))


def peak_memory_gib() -> tuple[float, str]:
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**30, "torch.cuda.max_memory_allocated, training"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, "process peak RSS, CPU, whole run"


def bench_overrides(args: SFTConfig, steps: int, warmup: int) -> None:
    """Exactly warmup+steps optimizer steps, a loss log per step, nothing saved or evaluated."""
    args.max_steps = warmup + steps
    args.logging_steps = 1
    args.save_strategy = transformers.trainer_utils.SaveStrategy.NO
    args.eval_strategy = transformers.trainer_utils.IntervalStrategy.NO
    args.report_to = []
    args.disable_tqdm = True


def build(bench: argparse.Namespace, trainer_argv: list[str], callbacks: list) -> SFTTrainer:
    """The real trainer (train/sft.py's build_trainer) set to run exactly the benchmark's steps."""
    script_args, args, model_args = training.parse_args(trainer_argv)
    bench_overrides(args, bench.steps, bench.warmup_steps)
    model = processor = None
    if bench.random_model:
        model, processor = random_model(bench.random_model, model_args), real_layout_processor()
    dataset = None if script_args.dataset_name else synthetic_mosaics(bench.samples)
    trainer = training.build_trainer(
        script_args, args, model_args, dataset=dataset, model=model, processor=processor, callbacks=callbacks
    )
    trainer.remove_callback(transformers.trainer_callback.PrinterCallback)  # the figures are the output
    return trainer


def run(bench: argparse.Namespace, trainer_argv: list[str]) -> Figures:
    clock = StepClock()
    trainer = build(bench, trainer_argv, [clock])
    args = trainer.args
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    trainer.train()
    memory, memory_kind = peak_memory_gib()
    history = {entry["step"]: entry for entry in trainer.state.log_history if "num_tokens" in entry}
    first, last = bench.warmup_steps, bench.warmup_steps + bench.steps
    tokens = int(history[last]["num_tokens"] - history[first]["num_tokens"])
    samples_per_step = args.per_device_train_batch_size * args.gradient_accumulation_steps * args.world_size
    flops = executed = float("nan")
    if getattr(args, "compile_layers", None):
        print("FLOP count skipped: compiled layers would compile again for it (same FLOPs as uncompiled)")
    else:
        try:
            flops, executed = count_flops_per_sample(trainer)
        except Exception as error:  # the timing and memory figures stand without a FLOP count (MFU then reads nan)
            print(f"FLOP count failed ({type(error).__name__}: {error}); MFU is not reported", file=sys.stderr)
    trainable, total = trainer.model.get_nb_trainable_parameters()
    return Figures(
        device=torch.cuda.get_device_name() if torch.cuda.is_available() else f"cpu, {torch.get_num_threads()} threads",
        steps=bench.steps,
        samples_per_step=samples_per_step,
        seconds=clock.ends[last - 1] - clock.ends[first - 1],
        tokens=tokens,
        flops_per_sample=flops,
        executed_flops_per_sample=executed,
        flops_6nt_per_sample=6 * matmul_weights(trainer.model) * tokens / (bench.steps * samples_per_step),
        peak_tflops=peak_tflops(bench.peak_tflops),
        peak_memory_gib=memory,
        memory_kind=memory_kind,
        trainable_params=trainable,
        total_params=total,
    )


def parse_bench_args(argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    """Benchmark flags; everything else goes to the training parser (train/sft.py's flags and --config)."""
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Any other flag is a train/sft.py flag (python train/sft.py --help lists them).",
    )
    parser.add_argument("--steps", type=int, default=4, help="timed optimizer steps (default: 4)")
    parser.add_argument("--warmup-steps", type=int, default=2, help="untimed steps first (default: 2)")
    parser.add_argument(
        "--peak-tflops",
        type=float,
        help="peak FLOP/s of the device in TFLOP/s, for MFU (default: known GPUs' bf16 dense peak; none on a CPU)",
    )
    parser.add_argument(
        "--tiny",
        action="store_true",
        help="write the tiny random Gemma 3n to a temp folder and use "
        "it, with train/configs/tiny-cpu.yaml unless --config is given",
    )
    parser.add_argument(
        "--random-model",
        choices=("e4b", "narrow"),
        help="random-weight Gemma 3n: the E4B architecture (needs a GPU's memory) or its token layout with tiny widths",
    )
    parser.add_argument("--samples", type=int, default=64, help="synthetic mosaics when no --dataset_name is given")
    parser.add_argument("--json", type=Path, help="also write the figures here as JSON")
    bench, rest = parser.parse_known_args(argv)
    if bench.steps < 1 or bench.warmup_steps < 1:
        parser.error("--steps and --warmup-steps must be at least 1 (the first step compiles and allocates)")
    if bench.tiny and bench.random_model:
        parser.error("--tiny and --random-model pick different models; choose one")
    if (bench.tiny or bench.random_model == "narrow") and "--config" not in rest:
        rest = ["--config", str(TINY_CONFIG), *rest]
    if not {"--output_dir", "--output-dir", "--out"} & set(rest):
        scratch = tempfile.mkdtemp(prefix="bench-train-")  # checkpoints nobody asked for: gone when the run ends
        atexit.register(shutil.rmtree, scratch, ignore_errors=True)
        rest += ["--output_dir", scratch]
    return bench, rest


@contextmanager
def with_model(bench: argparse.Namespace, rest: list[str]) -> Iterator[list[str]]:
    """`rest` plus the model flag --tiny or --random-model stands for (the tiny model lives in a temp folder for
    the block)."""
    with tempfile.TemporaryDirectory(prefix="tiny-gemma3n-") as folder:
        if bench.tiny:
            rest = [*rest, "--model_name_or_path", str(tiny.save_tiny_model(Path(folder) / "model"))]
        elif bench.random_model:
            rest = [*rest, "--model_name_or_path", f"random-gemma3n-{bench.random_model}"]
        yield rest


def main(argv: list[str] | None = None) -> None:
    bench, rest = parse_bench_args(argv)
    with with_model(bench, rest) as rest:
        try:
            figures = run(bench, rest)
        except training.TrainingSetupError as error:
            sys.exit(f"error: {error}")
    print(figures.report())
    if bench.json:
        bench.json.write_text(
            json.dumps(
                {
                    **figures.__dict__,
                    "samples_per_s": figures.samples_per_s,
                    "tokens_per_s": figures.tokens_per_s,
                    "mfu": figures.mfu,
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
