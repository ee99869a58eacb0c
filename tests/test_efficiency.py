"""The training settings that make Gemma 3n faster or leaner compute what the plain path computes: loss and LoRA
gradients on real mosaics through the tiny Gemma 3n, the trainer's own collator and loss."""

from __future__ import annotations

from pathlib import Path

import pytest

from lipagent.torch_compat import ensure_torchvision_importable

ensure_torchvision_importable()

import torch  # noqa: E402
import trl.trainer.utils as trl_utils  # noqa: E402

from lipagent.model import efficiency, training  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated:FutureWarning")


def build(tiny_dir: Path, dataset: Path, out: Path, *extra: str) -> training.LipSFTTrainer:
    argv = [
        "--config",
        str(Path(__file__).resolve().parents[1] / "train" / "configs" / "tiny-cpu.yaml"),
        "--model_name_or_path",
        str(tiny_dir),
        "--dataset_name",
        str(dataset),
        "--output_dir",
        str(out),
        "--lora_dropout",
        "0",
        *extra,
    ]
    return training.build_trainer(*training.parse_args(argv))


def loss_and_grads(trainer: training.LipSFTTrainer, rows: list[int]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The trainer's loss on a batch of real rows as its collator builds it, and the LoRA gradients it gives."""
    batch = trainer.data_collator([trainer.train_dataset[i] for i in rows])
    model = trainer.model.train()
    model.zero_grad()
    loss = trainer.compute_loss(model, dict(batch))
    loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    return loss.detach(), grads


def assert_same(a: tuple[torch.Tensor, dict], b: tuple[torch.Tensor, dict], rtol: float = 1e-5) -> None:
    torch.testing.assert_close(a[0], b[0], rtol=rtol, atol=1e-6)
    assert a[1].keys() == b[1].keys() and a[1]
    for name in a[1]:
        torch.testing.assert_close(a[1][name], b[1][name], rtol=rtol * 100, atol=1e-6, msg=name)


@pytest.fixture(scope="module")
def dataset(few_prepared: Path) -> Path:
    return few_prepared


@pytest.fixture(scope="module")
def rows(tiny_dir: Path, dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> list[int]:
    """Two training rows whose answers differ in length, so the collator pads one."""
    trainer = build(tiny_dir, dataset, tmp_path_factory.mktemp("rows"))
    lengths = [len(trainer.train_dataset[i]["completion"][0]["content"][0]["text"]) for i in range(6)]
    return [0, next(i for i, length in enumerate(lengths) if length != lengths[0])]


@pytest.fixture(scope="module")
def plain(tiny_dir: Path, dataset: Path, rows: list[int], tmp_path_factory: pytest.TempPathFactory):
    """Loss and gradients with the audio tower kept and nothing compiled or padded further."""
    trainer = build(tiny_dir, dataset, tmp_path_factory.mktemp("plain"), "--drop_audio_tower", "false")
    assert trainer.model.base_model.model.model.audio_tower is not None
    return loss_and_grads(trainer, rows)


def test_the_audio_tower_is_left_out_by_default_and_changes_nothing(tiny_dir, dataset, rows, plain, tmp_path):
    kept = build(tiny_dir, dataset, tmp_path / "kept", "--drop_audio_tower", "false")
    trainer = build(tiny_dir, dataset, tmp_path / "dropped")
    tower = sum(p.numel() for n, p in kept.model.named_parameters() if ".audio_tower." in n)
    assert tower > 0
    assert not [n for n, _ in trainer.model.named_parameters() if ".audio_tower." in n]
    total = sum(p.numel() for p in trainer.model.parameters())
    assert total == sum(p.numel() for p in kept.model.parameters()) - tower
    assert trainer.model.base_model.model.model.embed_audio is not None, "every forward embeds the audio vocabulary"
    assert_same(loss_and_grads(trainer, rows), plain, rtol=1e-6)


def test_padding_every_batch_to_one_length_changes_nothing(tiny_dir, dataset, rows, plain, tmp_path):
    trainer = build(tiny_dir, dataset, tmp_path / "padded", "--pad_to_length", "512", "--drop_audio_tower", "false")
    batch = trainer.data_collator([trainer.train_dataset[i] for i in rows])
    assert batch["input_ids"].shape == batch["labels"].shape == batch["token_type_ids"].shape == (2, 512)
    assert (batch["attention_mask"][:, 480:] == 0).all() and (batch["labels"][:, 480:] == -100).all()
    assert_same(loss_and_grads(trainer, rows), plain)
    short = build(tiny_dir, dataset, tmp_path / "short", "--pad_to_length", "100")
    with pytest.raises(ValueError, match="a batch holds 4.. tokens, more than --pad_to_length 100: raise it"):
        short.data_collator([short.train_dataset[i] for i in rows])


def test_the_lm_head_only_at_the_answer_gives_the_full_logits_loss(
    tiny_dir, dataset, rows, plain, tmp_path, monkeypatch
):
    """TRL's fused head scores only labelled positions where Triton runs (a GPU); forced here, it gives the loss of
    the model's own full logits, soft-capping included, and the same gradients."""
    trainer = build(tiny_dir, dataset, tmp_path / "full", "--drop_audio_tower", "false")
    batch = trainer.data_collator([trainer.train_dataset[i] for i in rows])
    model = trainer.model.train()
    model.zero_grad()
    labels = batch.pop("labels")
    logits = model(**batch, use_cache=False).logits
    assert trainer.model.config.get_text_config().final_logit_softcapping
    loss = torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), labels[:, 1:].flatten(), ignore_index=-100)
    loss.backward()
    full = loss.detach(), {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    assert_same(full, plain)
    scored = []
    chunked = trl_utils._ChunkedLogProbFunction.apply

    def counting(hidden, *args):
        scored.append(hidden.shape[0])
        return chunked(hidden, *args)

    monkeypatch.setattr(trl_utils, "_use_triton", lambda device: True)
    monkeypatch.setattr(trl_utils._ChunkedLogProbFunction, "apply", counting)
    compact = loss_and_grads(build(tiny_dir, dataset, tmp_path / "compact", "--drop_audio_tower", "false"), rows)
    assert scored == [int((labels[:, 1:] != -100).sum())], "only the answer positions went through the head"
    assert_same(compact, full)


def test_per_layer_embeddings_in_host_memory_compute_the_same(tiny_dir, dataset, rows, plain, tmp_path):
    trainer = build(tiny_dir, dataset, tmp_path / "host", "--per_layer_embeddings_on_host", "true")
    language = trainer.model.base_model.model.model.language_model
    table = language.embed_tokens_per_layer
    assert isinstance(table, efficiency.HostEmbedding)
    assert not [n for n, _ in trainer.model.named_parameters() if "embed_tokens_per_layer" in n]
    trainer.model.to("meta")
    assert table.weight.device.type == "cpu", "moving the model leaves the table in host memory"
    trainer = build(tiny_dir, dataset, tmp_path / "host2", "--per_layer_embeddings_on_host", "true")
    assert efficiency.keep_per_layer_embeddings_on_host(trainer.model) == 0, "once only"
    assert_same(loss_and_grads(trainer, rows), plain, rtol=1e-6)


def test_compiled_decoder_layers_compute_the_same(tiny_dir, dataset, rows, plain, tmp_path):
    trainer = build(
        tiny_dir, dataset, tmp_path / "compiled", "--compile_layers", "aot_eager", "--drop_audio_tower", "false"
    )
    layers = efficiency.decoder_layers(trainer.model)
    assert layers and all(layer._compiled_call_impl is not None for layer in layers)
    assert len(layers) == trainer.model.config.get_text_config().num_hidden_layers
    assert_same(loss_and_grads(trainer, rows), plain)


def test_compiling_twice_over_is_refused(tiny_dir, dataset, tmp_path):
    with pytest.raises(training.TrainingSetupError, match="--compile_layers .* --torch_compile .*: pick one"):
        build(tiny_dir, dataset, tmp_path / "both", "--compile_layers", "eager", "--torch_compile", "true")


def test_a_model_without_decoder_layers_is_named():
    with pytest.raises(ValueError, match="no language-model decoder layers in Linear"):
        efficiency.compile_decoder_layers(torch.nn.Linear(2, 2))
