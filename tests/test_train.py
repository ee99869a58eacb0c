"""train/sft.py and lipagent.model.training on the tiny random Gemma 3n and real GRID mosaics (`prepared`)."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lipagent.torch_compat import ensure_torchvision_importable

ensure_torchvision_importable()  # before peft/trl/timm import torchvision

import torch  # noqa: E402
import transformers  # noqa: E402
import yaml  # noqa: E402
from peft import PeftModel  # noqa: E402
from peft.tuners.lora import LoraLayer  # noqa: E402
from safetensors.torch import load_file  # noqa: E402

from lipagent.config import MosaicConfig  # noqa: E402
from lipagent.model import training  # noqa: E402
from lipagent.model.prompt import PROMPT, prompt_for  # noqa: E402
from lipagent.records import READING_RECORD, read_dataset_record  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "train" / "configs"
TINY_CPU = CONFIGS / "tiny-cpu.yaml"
RECIPE = CONFIGS / "gemma3n-e4b-lora.yaml"
OVERFIT_STEPS = 12
OVERFIT = [
    "--max_samples",
    "2",
    "--per_device_train_batch_size",
    "2",
    "--max_steps",
    str(OVERFIT_STEPS),
    "--learning_rate",
    "5e-3",
    "--lr_scheduler_type",
    "constant",
    "--warmup_steps",
    "0",
    "--lora_dropout",
    "0",
    "--save_steps",
    "6",
    "--save_total_limit",
    "2",
]

# transformers 5.24 deprecations triggered inside peft 0.21 / trl 1.16, not by this code.
pytestmark = pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated:FutureWarning")


@pytest.fixture(scope="module")
def dataset_dir(prepared) -> Path:
    return prepared[0]


def tiny_argv(tiny_dir: Path, dataset_dir: Path, out: Path, *extra: str) -> list[str]:
    """A training command line with the tiny CPU config (train/sft.py's and `lipagent train`'s flags)."""
    return [
        "--config",
        str(TINY_CPU),
        "--model_name_or_path",
        str(tiny_dir),
        "--dataset_name",
        str(dataset_dir),
        "--output_dir",
        str(out),
        *extra,
    ]


def tiny_args(tiny_dir: Path, dataset_dir: Path, out: Path, *extra: str):
    """That command line parsed by the script's own parser."""
    return training.parse_args(tiny_argv(tiny_dir, dataset_dir, out, *extra))


def logged_losses(out: Path) -> dict[int, float]:
    history = json.loads((out / "trainer_state.json").read_text())["log_history"]
    return {entry["step"]: entry["loss"] for entry in history if "loss" in entry}


def adapter_tensors(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(folder / "adapter_model.safetensors")


@pytest.fixture(scope="module")
def trainer(tiny_dir: Path, dataset_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """A trainer on the whole real train split, as sft.py builds it (nothing trained)."""
    return training.build_trainer(*tiny_args(tiny_dir, dataset_dir, tmp_path_factory.mktemp("built")))


@pytest.fixture(scope="module")
def overfit(tiny_dir: Path, dataset_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """Memorise the first two mosaics: (output folder, finished trainer)."""
    out = tmp_path_factory.mktemp("overfit") / "run"
    return out, training.train(*tiny_args(tiny_dir, dataset_dir, out, *OVERFIT))


def test_recipe_holds_the_issue_hyperparameters():
    script_args, args, model_args = training.parse_args(
        ["--config", str(RECIPE), "--bf16", "false", "--use_cpu", "true", "--output_dir", "unused"]
    )
    assert model_args.model_name_or_path == "google/gemma-3n-E4B-it" and model_args.dtype == "bfloat16"
    lora = (model_args.use_peft, model_args.lora_r, model_args.lora_alpha, model_args.lora_dropout)
    assert lora == (True, 16, 32, 0.05)
    assert model_args.lora_target_modules == training.LORA_TARGET_MODULES
    assert (args.num_train_epochs, args.per_device_train_batch_size, args.gradient_accumulation_steps) == (5, 8, 2)
    assert (args.learning_rate, args.lr_scheduler_type.value, args.warmup_steps) == (2e-4, "cosine", 0.05)
    assert args.activation_checkpointing and args.gradient_checkpointing
    assert yaml.safe_load(RECIPE.read_text())["bf16"] is True
    assert script_args.dataset_test_split == "validation"


def test_out_is_the_output_dir_flag_every_other_command_uses():
    for flag in ("--out", "--output_dir", "--output-dir"):
        _, args, _ = training.parse_args(["--config", str(TINY_CPU), flag, "runs/a"])
        assert args.output_dir == "runs/a"


def test_bf16_recipe_on_a_cpu_says_what_to_do():
    with pytest.raises(training.TrainingSetupError, match="tiny-cpu.yaml"):
        training.parse_args(["--config", str(RECIPE), "--dataset_name", "d", "--output_dir", "unused"])


def test_no_dataset_is_named_before_anything_else(tiny_dir: Path, tmp_path: Path, capsys):
    """`lipagent train` alone names the missing dataset, not the bf16 default that fails first on a CPU."""
    from lipagent.cli import main as lipagent_main

    assert lipagent_main(["train"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == f"lipagent train: error: {training.NO_DATASET}"
    argv = ["--config", str(TINY_CPU), "--model_name_or_path", str(tiny_dir), "--output_dir", str(tmp_path / "run")]
    with pytest.raises(training.TrainingSetupError, match="--dataset_name is required"):
        training.train(*training.parse_args(argv))
    assert not (tmp_path / "run").exists()


def test_loss_counts_only_the_answer_and_its_end_of_turn(trainer):
    """Real mosaics through the tiny processor and TRL's collator, exactly as the trainer batches them."""
    tokenizer = trainer.processing_class.tokenizer
    rows = trainer.train_dataset
    texts = [rows[i]["completion"][0]["content"][0]["text"] for i in range(8)]
    lengths = [len(tokenizer.tokenize(text)) for text in texts]
    other = next(i for i, length in enumerate(lengths) if length != lengths[0])
    batch = trainer.data_collator([rows[0], rows[other]])
    image_token = trainer.processing_class.image_token_id
    for row, text in enumerate((texts[0], texts[other])):
        ids, labels, mask = batch["input_ids"][row], batch["labels"][row], batch["attention_mask"][row]
        counted = (labels != -100).nonzero().flatten()
        assert torch.equal(labels[counted], ids[counted])
        tokens = tokenizer.convert_ids_to_tokens(ids[counted].tolist())
        # TRL's completion is the chat template's tail after the prompt: the answer, <end_of_turn>, "\n"; no <eos>.
        assert tokens == tokenizer.tokenize(text) + ["<end_of_turn>", "\n"]
        assert tokenizer.decode(ids[counted]) == f"{text}<end_of_turn>\n"
        first, last = counted[0].item(), counted[-1].item()
        assert counted.tolist() == list(range(first, last + 1))  # one contiguous span ...
        assert last == mask.nonzero().max().item()  # ... that ends the real tokens
        assert tokenizer.decode(ids[:first]).endswith("only.<end_of_turn>\n<start_of_turn>model\n")
        assert (ids == image_token).sum() == 256 and (labels[ids == image_token] == -100).all()
        assert (labels[mask == 0] == -100).all()
    assert (batch["attention_mask"] == 0).any(), "the two answers differ in length, so one row is padded"
    assert batch["pixel_values"].shape[0] == 2
    # Spelled out for the first real mosaic (s1 bbaf2n): 18 of its 462 tokens count, in this order.
    assert texts[0] == "bin blue at f two now"
    counted = batch["input_ids"][0][batch["labels"][0] != -100].tolist()
    assert tokenizer.convert_ids_to_tokens(counted) == [
        "b",
        "i",
        "n",
        "▁b",
        "l",
        "u",
        "e",
        "▁a",
        "t",
        "▁f",
        "▁t",
        "w",
        "o",
        "▁n",
        "o",
        "w",
        "<end_of_turn>",
        "\n",
    ]
    assert batch["attention_mask"][0].sum() == 462


def test_lora_adapts_only_the_language_models_attention(trainer):
    adapted = [name for name, module in trainer.model.named_modules() if isinstance(module, LoraLayer)]
    assert adapted and all(".language_model." in name for name in adapted)
    assert not any("vision" in name or "audio" in name for name in adapted)
    assert {name.rsplit(".", 1)[1] for name in adapted} == {"q_proj", "k_proj", "v_proj", "o_proj"}
    trainable = [name for name, p in trainer.model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in name and ".language_model." in name for name in trainable)


def test_cli_smoke_run_on_real_mosaics(tiny_dir: Path, dataset_dir: Path, tmp_path: Path):
    out = tmp_path / "run"
    command = [
        sys.executable,
        str(REPO / "train" / "sft.py"),
        *tiny_argv(tiny_dir, dataset_dir, out, "--max_steps", "2"),
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(logged_losses(out)) == [1, 2]
    final = out / training.FINAL_ADAPTER
    for name in (
        "adapter_model.safetensors",
        "adapter_config.json",
        "processor_config.json",
        "tokenizer.json",
        "chat_template.jinja",
    ):
        assert (final / name).is_file(), name
    config = json.loads((final / "adapter_config.json").read_text())
    assert config["target_modules"] == training.LORA_TARGET_MODULES
    assert config["base_model_name_or_path"] == str(tiny_dir) and config["r"] == 16
    assert not (out / f"{training.FINAL_ADAPTER}.partial").exists()
    record = json.loads((final / READING_RECORD).read_text())
    assert MosaicConfig.from_dict(record["mosaic"]) == read_dataset_record(dataset_dir).mosaic
    assert record["prompt"] == PROMPT and record["dataset"] == str(dataset_dir)
    assert record["quantization"] is None, "trained on unquantized weights"


def test_lipagent_train_is_the_same_door(tiny_dir: Path, dataset_dir: Path, tmp_path: Path, capsys):
    """`lipagent train ...` takes train/sft.py's flags and writes the same adapter; its mistakes are one line."""
    from lipagent.cli import main as lipagent_main

    out = tmp_path / "run"
    assert lipagent_main(["train", *tiny_argv(tiny_dir, dataset_dir, out, "--max_steps", "1")]) == 0
    assert (out / training.FINAL_ADAPTER / "adapter_model.safetensors").is_file()
    assert (
        lipagent_main(
            ["train", "--config", str(RECIPE), "--dataset_name", str(dataset_dir), "--out", str(tmp_path / "x")]
        )
        == 2
    )
    assert "tiny-cpu.yaml" in capsys.readouterr().err


def test_a_model_learns_with_the_prompt_for_its_datasets_mosaics(tiny_dir: Path, dataset_dir: Path, tmp_path: Path):
    narrow = tmp_path / "narrow"
    shutil.copytree(dataset_dir, narrow)
    card = narrow / "README.md"
    text, rows = re.subn(r"(\n\s+)rows: 4\n", r"\g<1>rows: 3\n", card.read_text())
    text, cols = re.subn(r"(\n\s+)cols: 6\n", r"\g<1>cols: 4\n", text)
    assert rows == cols == 1
    card.write_text(text)
    expected = prompt_for(MosaicConfig(rows=3, cols=4))
    assert read_dataset_record(narrow).mosaic.num_frames == 12 and expected != PROMPT
    assert training.reading_record(str(narrow))["prompt"] == expected
    trainer = training.build_trainer(*tiny_args(tiny_dir, narrow, tmp_path / "out"))
    assert trainer.train_dataset[0]["prompt"][0]["content"][1]["text"] == expected
    original = training.build_trainer(*tiny_args(tiny_dir, dataset_dir, tmp_path / "out"))
    assert original.train_dataset[0]["prompt"][0]["content"][1]["text"] == PROMPT


def test_augmentation_changes_training_mosaics_only_and_repeats_with_the_seed(
    tiny_dir: Path, dataset_dir: Path, tmp_path: Path
):
    plain = training.build_trainer(*tiny_args(tiny_dir, dataset_dir, tmp_path / "plain"))
    assert plain.train_dataset[0]["images"][0].size == (600, 320)
    flags = ("--augment_shift", "3", "--augment_flip", "true", "--augment_gamma", "0.3", "--eval_strategy", "steps")
    first, again = (training.build_trainer(*tiny_args(tiny_dir, dataset_dir, tmp_path / n, *flags)) for n in "ab")
    before = np.asarray(plain.train_dataset[0]["images"][0])
    changed = [np.asarray(first.train_dataset[0]["images"][0]) for _ in range(3)]
    assert all(c.shape == before.shape for c in changed)
    assert not any(np.array_equal(c, before) for c in changed) and not np.array_equal(changed[0], changed[1])
    assert np.array_equal(np.asarray(again.train_dataset[0]["images"][0]), changed[0]), "the seed repeats a run"
    evaluated = np.asarray(first.eval_dataset[0]["images"][0])
    validation = training.load_mosaic_dataset(str(dataset_dir))["validation"][0]["image"]
    assert np.array_equal(evaluated, np.asarray(validation.convert("RGB"))), "evaluation reads the mosaics as they are"
    with pytest.raises(training.TrainingSetupError, match=r"^--augment_\*: augmentation out of range: shift -2"):
        training.build_trainer(*tiny_args(tiny_dir, dataset_dir, tmp_path / "c", "--augment_shift", "-2"))


def test_the_projector_learns_at_its_own_rate_when_asked(tiny_dir: Path, dataset_dir: Path, tmp_path: Path):
    flags = ("--lora_modules_to_save", "embed_vision", "--learning_rate", "1e-4")
    trainer = training.build_trainer(
        *tiny_args(tiny_dir, dataset_dir, tmp_path / "a", *flags, "--projector_learning_rate", "3e-3")
    )
    optimizer = trainer.create_optimizer()
    names = {id(p): n for n, p in trainer.model.named_parameters()}
    trained = {n for n, p in trainer.model.named_parameters() if p.requires_grad}
    by_rate = {}
    for group in optimizer.param_groups:
        by_rate.setdefault(group["lr"], set()).update(names[id(p)] for p in group["params"])
    projector = {n for n in trained if "embed_vision" in n}
    assert projector and set(by_rate) == {1e-4, 3e-3}
    assert by_rate[3e-3] == projector and by_rate[1e-4] == trained - projector
    rates = [g["lr"] for g in optimizer.param_groups]
    assert trainer.create_scheduler(10, optimizer).base_lrs == rates, "warm-up and decay scale each group's own rate"
    plain = training.build_trainer(*tiny_args(tiny_dir, dataset_dir, tmp_path / "b", *flags))
    assert {g["lr"] for g in plain.create_optimizer().param_groups} == {1e-4}
    alone = training.build_trainer(*tiny_args(tiny_dir, dataset_dir, tmp_path / "c", "--projector_learning_rate", "1"))
    with pytest.raises(training.TrainingSetupError, match="no embed_vision weight is trained; add --lora_modules"):
        alone.create_optimizer()


def test_a_dataset_without_mosaic_settings_stops_training_before_it_starts(dataset_dir: Path, tmp_path: Path):
    bare = tmp_path / "bare"
    shutil.copytree(dataset_dir, bare)
    (bare / "README.md").unlink()
    with pytest.raises(training.TrainingSetupError, match="must record the mosaic settings"):
        training.reading_record(str(bare))


def test_loss_falls_when_memorising_two_samples(overfit):
    out, _ = overfit
    losses = logged_losses(out)
    assert sorted(losses) == list(range(1, OVERFIT_STEPS + 1))
    first, last = losses[1], losses[OVERFIT_STEPS]
    assert last < first - 0.5, losses  # ~6.68 -> ~5.87 with seed 42; no learning would keep it constant
    assert all(losses[step] < first for step in range(OVERFIT_STEPS - 2, OVERFIT_STEPS + 1))


def test_saved_adapter_gives_the_in_memory_models_logits(overfit, tiny_dir: Path):
    out, trainer = overfit
    batch = trainer.data_collator([trainer.train_dataset[0], trainer.train_dataset[1]])
    trained = trainer.model.eval()
    reloaded = PeftModel.from_pretrained(
        transformers.AutoModelForImageTextToText.from_pretrained(tiny_dir), out / training.FINAL_ADAPTER
    ).eval()
    inputs = {key: value for key, value in batch.items() if key != "labels"}
    with torch.no_grad():
        expected, actual = trained(**inputs).logits, reloaded(**inputs).logits
    assert torch.allclose(actual, expected, atol=1e-5, rtol=1e-5)
    lora_b = [t for name, t in adapter_tensors(out / training.FINAL_ADAPTER).items() if "lora_B" in name]
    assert lora_b and any(t.abs().max() > 0 for t in lora_b), "LoRA B starts at zero; training must move it"


def test_resume_from_a_checkpoint_finishes_the_same_run(overfit, tiny_dir: Path, dataset_dir: Path, tmp_path: Path):
    """A run killed after checkpoint-6: resuming with 'last' trains steps 7-12 and ends where the whole run did."""
    whole, _ = overfit
    killed = tmp_path / "run"
    shutil.copytree(whole / "checkpoint-6", killed / "checkpoint-6")
    assert not (killed / training.FINAL_ADAPTER).exists()
    training.train(*tiny_args(tiny_dir, dataset_dir, killed, *OVERFIT, "--resume_from_checkpoint", "last"))
    resumed_losses, whole_losses = logged_losses(killed), logged_losses(whole)
    assert sorted(resumed_losses) == list(range(1, OVERFIT_STEPS + 1))  # 1-6 restored from the checkpoint's state
    for step in range(7, OVERFIT_STEPS + 1):
        assert resumed_losses[step] == pytest.approx(whole_losses[step], abs=1e-4)
    expected, actual = adapter_tensors(whole / training.FINAL_ADAPTER), adapter_tensors(killed / training.FINAL_ADAPTER)
    assert expected.keys() == actual.keys()
    assert all(torch.allclose(actual[key], expected[key], atol=1e-6, rtol=1e-4) for key in expected)


def test_resume_without_a_checkpoint_says_so(tmp_path: Path):
    with pytest.raises(training.TrainingSetupError, match="no checkpoint"):
        training.resolve_checkpoint("last", tmp_path)
    with pytest.raises(training.TrainingSetupError, match="no such folder"):
        training.resolve_checkpoint(str(tmp_path / "checkpoint-9"), tmp_path)


def test_a_save_that_dies_leaves_the_previous_adapter_whole(overfit, tmp_path: Path, monkeypatch):
    source, trainer = overfit
    out = tmp_path / "run"
    shutil.copytree(source / training.FINAL_ADAPTER, out / training.FINAL_ADAPTER)
    before = {path.name: path.read_bytes() for path in (out / training.FINAL_ADAPTER).iterdir()}

    def dies_halfway(output_dir: str) -> None:
        Path(output_dir).mkdir(parents=True)
        (Path(output_dir) / "adapter_model.safetensors").write_bytes(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(trainer, "save_model", dies_halfway)
    with pytest.raises(KeyboardInterrupt):
        training.save_final_adapter(trainer, out)
    assert {path.name: path.read_bytes() for path in (out / training.FINAL_ADAPTER).iterdir()} == before
    monkeypatch.undo()
    final = training.save_final_adapter(trainer, out)  # the next save clears the leftover and replaces the adapter
    assert (final / "adapter_model.safetensors").read_bytes() != b"half"
    assert sorted(path.name for path in out.iterdir()) == [training.FINAL_ADAPTER]


def test_qlora_builds_nf4_and_trains_a_step_on_cpu(tiny_dir: Path, dataset_dir: Path, tmp_path: Path):
    """bitsandbytes 0.50 runs NF4 on CPU, so 4-bit needs no CUDA here; AltUp's coefficient layers stay unquantized."""
    import bitsandbytes as bnb

    script_args, args, model_args = tiny_args(
        tiny_dir,
        dataset_dir,
        tmp_path,
        "--load_in_4bit",
        "true",
        "--dtype",
        "bfloat16",
        "--max_samples",
        "1",
        "--per_device_train_batch_size",
        "1",
    )
    config = training.quantization_config(model_args)
    assert config.load_in_4bit and config.bnb_4bit_quant_type == "nf4"
    assert config.bnb_4bit_compute_dtype == torch.bfloat16
    assert set(config.llm_int8_skip_modules) == {"lm_head", "correction_coefs", "prediction_coefs"}
    trainer = training.build_trainer(script_args, args, model_args)
    base = trainer.model.get_base_model()
    assert isinstance(base.model.language_model.layers[0].self_attn.q_proj.base_layer, bnb.nn.Linear4bit)
    assert not isinstance(base.model.language_model.layers[0].altup.prediction_coefs, bnb.nn.Linear4bit)
    batch = trainer.data_collator([trainer.train_dataset[0]])
    trainer.model.train()
    loss = trainer.compute_loss(trainer.model, batch)
    loss.backward()
    grads = [p.grad for name, p in trainer.model.named_parameters() if "lora_A" in name]
    assert torch.isfinite(loss) and grads and all(g is not None and torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("nested", ["false", "true"])
def test_reading_rebuilds_the_4bit_weights_training_used(tiny_dir: Path, dataset_dir: Path, tmp_path: Path, nested):
    from lipagent.model.loading import nf4_config, quantization_record

    _, _, model_args = tiny_args(
        tiny_dir,
        dataset_dir,
        tmp_path,
        "--load_in_4bit",
        "true",
        "--dtype",
        "bfloat16",
        "--use_bnb_nested_quant",
        nested,
    )
    trained = training.quantization_config(model_args)
    record = json.loads(json.dumps(quantization_record(trained)))  # as lipagent.json carries it
    for read in (nf4_config(torch.bfloat16, record),) + (
        (nf4_config(torch.bfloat16, None),) if nested == "false" else ()
    ):
        for key in ("load_in_4bit", "bnb_4bit_quant_type", "bnb_4bit_use_double_quant", "llm_int8_skip_modules"):
            assert getattr(read, key) == getattr(trained, key), key


def test_dataset_errors_tell_what_to_pass(dataset_dir: Path, tmp_path: Path, monkeypatch):
    import datasets
    import huggingface_hub.constants

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(training.TrainingSetupError, match="the Hub did not give it .*in the cache"):
        training.load_mosaic_dataset("team/no-such-mosaics")
    with pytest.raises(training.TrainingSetupError, match="no such dataset folder .*lipagent prepare"):
        training.load_mosaic_dataset(str(tmp_path / "grid-mosaics"))
    loaded = training.load_mosaic_dataset(str(dataset_dir))
    said = "the dataset has no 'dev' split (it has train, validation, test); pick one with --dataset_train_split/"
    with pytest.raises(training.TrainingSetupError, match=f"^{re.escape(said)}--dataset_test_split$"):
        training.training_split(loaded, "dev")
    bare = loaded["train"].remove_columns(["text", "speaker"])
    said = (
        "split 'train' lacks column(s) text (it has image, video_id, frame_indices, face_frames, num_frames); train on "
        "a dataset written by `lipagent prepare`, whose rows hold a mosaic `image` and its `text`"
    )
    with pytest.raises(training.TrainingSetupError, match=f"^{re.escape(said)}$"):
        training.training_split(datasets.DatasetDict(train=bare), "train")
    with pytest.raises(training.TrainingSetupError, match="lacks column\\(s\\) image, text"):
        training.training_split(datasets.DatasetDict(train=bare.remove_columns("image")), "train")
    assert len(training.training_split(loaded, "train", max_samples=3)) == 3
    with pytest.raises(training.TrainingSetupError, match="^--max_samples must be at least 1, got 0$"):
        training.training_split(loaded, "train", max_samples=0)


@pytest.mark.parametrize("completion_only_loss", [None, True, False])
def test_the_trainer_keeps_the_raw_columns_and_warns_when_the_prompt_is_learned(completion_only_loss, caplog):
    args = training.SFTConfig(output_dir="unused", completion_only_loss=completion_only_loss, bf16=False)
    with caplog.at_level("INFO", logger=training.logger.name):
        training._prepare_training_args(args)
    assert args.remove_unused_columns is False
    assert "remove_unused_columns forced off: the sample transform needs the raw image/text columns" in caplog.text
    warned = "completion_only_loss is off: the loss will also cover the prompt and the 256 image tokens"
    assert (warned in caplog.text) == (completion_only_loss is False)


def load_bench():
    """bench/bench_train.py as a module (bench/ is not a package)."""
    spec = importlib.util.spec_from_file_location("bench_train", REPO / "bench" / "bench_train.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass resolves annotations through sys.modules
    spec.loader.exec_module(module)
    return module


def test_bench_tokenizer_has_the_e4b_layout_and_word_tokens():
    """Honest token counts for the random E4B: real special-token ids, one token per GRID word."""
    bench = load_bench()
    processor, config = bench.real_layout_processor(), transformers.Gemma3nConfig()
    tokenizer = processor.tokenizer
    assert len(tokenizer) == config.text_config.vocab_size
    assert processor.image_token_id == config.image_token_id
    ids = tokenizer.convert_tokens_to_ids
    assert (ids("<start_of_image>"), ids("<end_of_image>")) == (config.boi_token_id, config.eoi_token_id)
    assert tokenizer.tokenize("bin blue at f two now") == ["bin", "▁blue", "▁at", "▁f", "▁two", "▁now"]


def test_bench_runs_on_the_tiny_model_and_reports_figures(tmp_path: Path, capsys):
    bench = load_bench()
    bench.main(
        [
            "--tiny",
            "--steps",
            "1",
            "--warmup-steps",
            "1",
            "--samples",
            "4",
            "--json",
            str(tmp_path / "f.json"),
            "--output_dir",
            str(tmp_path / "out"),
        ]
    )
    figures = json.loads((tmp_path / "f.json").read_text())
    assert figures["samples_per_s"] > 0 and figures["tokens_per_s"] > 0 and figures["mfu"] is None
    assert 0 < figures["flops_per_sample"] <= figures["executed_flops_per_sample"]
    assert "MFU                   n/a" in capsys.readouterr().out


def test_bench_flop_formula_for_addmm_takes_a_fourth_positional_argument():
    """torch 2.11's addmm formula raised on the H200 (a fourth positional argument bound to out_shape); ours counts
    the product's FLOPs whatever follows."""
    bench = load_bench()
    assert bench._matmul_plus_flop((3, 5), (3, 4), (4, 5)) == 2 * 3 * 4 * 5
    assert bench._matmul_plus_flop((2, 3, 5), (2, 3, 4), (2, 4, 5), 1.0, out_shape=(2, 3, 5)) == 2 * 2 * 3 * 4 * 5
    with torch.utils.flop_counter.FlopCounterMode(display=False, custom_mapping=bench.MATMUL_PLUS) as counter:
        torch.addmm(torch.zeros(3, 5), torch.ones(3, 4), torch.ones(4, 5), beta=0.5)
    assert counter.get_total_flops() == 2 * 3 * 4 * 5


def test_train_help_is_trls_parser_made_once_per_installed_versions(tmp_path, monkeypatch, capsys):
    """`lipagent train --help` prints the training parser's help; building it imports torch, PEFT and TRL, so the
    text is kept per versions, the flags' source and terminal width, and a second --help does not build the parser
    again."""
    import lipagent.model.training as training
    from lipagent.cli import main as lipagent_main
    from lipagent.cli.train import DESCRIPTION

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv("COLUMNS", "100")
    assert lipagent_main(["train", "--help"]) == 0
    first = capsys.readouterr().out
    assert first == training.make_parser(DESCRIPTION, "lipagent train").format_help()
    assert "--dataset_name" in first and "--lora_r" in first
    [cached] = (tmp_path / "lipagent").glob("train-help-*.txt")

    def unbuildable(*args, **kwargs):
        raise AssertionError("the parser was built again")

    monkeypatch.setattr(training, "make_parser", unbuildable)
    assert lipagent_main(["train", "-h"]) == 0
    assert capsys.readouterr().out == first
    monkeypatch.setenv("COLUMNS", "140")
    with pytest.raises(AssertionError, match="built again"):
        lipagent_main(["train", "-h"])
    monkeypatch.setenv("COLUMNS", "100")
    with monkeypatch.context() as edited:  # flags edited in a checkout: the same version, another source
        edited.setattr("lipagent.cli.train.HELP_SOURCES", ("lipagent.cli.train",))
        with pytest.raises(AssertionError, match="built again"):
            lipagent_main(["train", "-h"])
    assert lipagent_main(["train", "-h"]) == 0 and capsys.readouterr().out == first
    cached.unlink()
    with pytest.raises(AssertionError, match="built again"):
        lipagent_main(["train", "-h"])
