"""Publishing and pulling through the Hub, tested for real up to the Hub client's calls."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import datasets
import pytest
from huggingface_hub import ModelCard
from huggingface_hub.errors import HfHubHTTPError

from lipagent.config import DEFAULT_CONFIG
from push_to_hub import main as push_main

REPO = Path(__file__).resolve().parents[1]
SECRET = "hf_not_a_real_token_0123456789"
METRICS = {
    "num_samples": 4,
    "wer": 0.25,
    "cer": 0.125,
    "sentence_accuracy": 0.5,
    "valid_sentence_rate": 1.0,
    "slot_accuracy": {"command": 1.0, "color": 1.0, "preposition": 0.75, "letter": 0.5, "digit": 0.75, "adverb": 1.0},
    "split": "test",
    "decoding": "constrained",
    "dataset": "team/grid-mosaics",
}


class FakeHub:
    """Stands in for HfApi at the boundary: records calls and checks the staged folder as it is uploaded."""

    def __init__(self, reject: bool = False, status: int = 401):
        self.reject, self.status, self.calls, self.uploaded = reject, status, [], {}

    def whoami(self, token=None):
        self.calls.append(("whoami", token))
        if self.reject:
            response = type("Response", (), {"status_code": self.status, "headers": {}, "text": "", "request": None})()
            raise HfHubHTTPError(f"{self.status} Client Error", response=response)
        return {"name": "fieldtalk-bot"}

    def create_repo(self, repo_id, **kwargs):
        self.calls.append(("create_repo", repo_id, kwargs))
        return f"https://huggingface.co/{repo_id}"

    def upload_folder(self, folder_path, **kwargs):
        self.calls.append(("upload_folder", kwargs))
        folder = Path(folder_path)
        self.uploaded = {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
        if kwargs["repo_type"] == "dataset":
            self.loaded = datasets.load_dataset(str(folder))


@pytest.fixture
def adapter_dir(tmp_path):
    out = tmp_path / "run" / "final-adapter"
    out.mkdir(parents=True)
    (out / "adapter_config.json").write_text(
        json.dumps(
            {
                "base_model_name_or_path": "google/gemma-3n-E4B-it",
                "r": 16,
                "lora_alpha": 32,
                "lora_dropout": 0.05,
                "target_modules": ".*language_model.*\\.(q_proj|k_proj|v_proj|o_proj)",
                "peft_type": "LORA",
            }
        )
    )
    (out / "adapter_model.safetensors").write_bytes(b"weights")
    (out / "tokenizer_config.json").write_text("{}")
    (out / "training_args.bin").write_bytes(b"pickle")
    (tmp_path / "run" / "trainer_state.json").write_text(
        json.dumps(
            {
                "num_train_epochs": 5,
                "global_step": 1250,
                "train_batch_size": 8,
                "log_history": [{"loss": 2.0}, {"loss": 0.1}],
            }
        )
    )
    (tmp_path / "metrics.json").write_text(json.dumps(METRICS))
    return out


def stage_adapter(adapter_dir: Path, stage: Path, *flags: str, repo: str = "team/x") -> ModelCard:
    """`push_to_hub.py adapter ... --dry-run`: the staged folder's model card."""
    assert push_main(["adapter", str(adapter_dir), "--repo", repo, *flags, "--dry-run", "--stage-dir", str(stage)]) == 0
    return ModelCard.load(stage / "README.md")


def test_dataset_dry_run_stages_exactly_what_loads(prepared, tmp_path):
    out, _ = prepared
    assert (
        push_main(["dataset", str(out), "--repo", "team/grid-mosaics", "--dry-run", "--stage-dir", str(tmp_path / "s")])
        == 0
    )
    staged, original = datasets.load_dataset(str(tmp_path / "s")), datasets.load_dataset(str(out))
    assert list(staged) == list(original)
    for split in original:
        assert staged[split]["video_id"] == original[split]["video_id"]
        assert staged[split]["text"] == original[split]["text"]
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == ["README.md", "data", "skipped.jsonl"]


def test_adapter_card_carries_base_recipe_and_metrics(adapter_dir, tmp_path):
    stage = tmp_path / "s"
    card = stage_adapter(
        adapter_dir, stage, "--eval", str(tmp_path / "metrics.json"), repo="team/gemma3n-lipreader-lora"
    )
    assert sorted(p.name for p in stage.iterdir()) == [
        "README.md",
        "adapter_config.json",
        "adapter_model.safetensors",
        "tokenizer_config.json",
    ]
    assert card.data.base_model == "google/gemma-3n-E4B-it" and card.data.library_name == "peft"
    assert card.data.datasets == ["team/grid-mosaics"]
    results = {r.metric_type: r.metric_value for r in card.data.eval_results}
    assert results == {"wer": 0.25, "cer": 0.125, "sentence_accuracy": 0.5, "valid_sentence_rate": 1.0}
    assert "lipagent transcribe clip.mp4 --model team/gemma3n-lipreader-lora" in card.text
    assert 'lipagent.load_reader("team/gemma3n-lipreader-lora")' in card.text
    assert "| r | 16 |" in card.text and "| epochs | 5 |" in card.text and "| final_train_loss | 0.1 |" in card.text
    assert "LipAgent 0.1" not in card.text and "tracking mode" in card.text, "no record: the legacy settings are named"


def test_adapter_card_shows_the_recorded_mosaics_and_the_baseline(adapter_dir, tmp_path):
    (adapter_dir / "lipagent.json").write_text(json.dumps({"mosaic": DEFAULT_CONFIG.to_dict()}))
    (tmp_path / "metrics.json").write_text(json.dumps({**METRICS, "baseline": {"model": "baseline", "wer": 0.37}}))
    stage = tmp_path / "s"
    card = stage_adapter(adapter_dir, stage, "--eval", str(tmp_path / "metrics.json"))
    text = " ".join(card.text.split())
    assert (stage / "lipagent.json").is_file(), "the record travels with the adapter"
    assert DEFAULT_CONFIG.describe() in text
    assert "reads these clips at WER 37.00%; this adapter beats it by 12.0 WER points" in text


def test_local_base_models_and_regex_targets_do_not_break_the_card(adapter_dir, tmp_path):
    config = json.loads((adapter_dir / "adapter_config.json").read_text())
    (adapter_dir / "adapter_config.json").write_text(json.dumps({**config, "base_model_name_or_path": str(tmp_path)}))
    flags = ("--eval", str(tmp_path / "metrics.json"), "--dataset", str(tmp_path / "grid-mosaics"))
    card = stage_adapter(adapter_dir, tmp_path / "s", *flags)
    assert card.data.base_model is None and not card.data.datasets, "a local path is no Hub id for the metadata"
    assert "huggingface.co//" not in card.text and "huggingface.co/datasets//" not in card.text
    assert f"`{tmp_path}` (a local copy)" in card.text
    [row] = [line for line in card.text.splitlines() if line.startswith("| target_modules |")]
    assert row.count("|") - row.count("\\|") == 3, "the regex's | are escaped, so the row has two cells"


def test_missing_token_fails_before_any_work(prepared, tmp_path, monkeypatch, capsys):
    out, _ = prepared
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr("lipagent.hub.get_token", lambda: None)
    hub = FakeHub()
    assert push_main(["dataset", str(out), "--repo", "team/x", "--stage-dir", str(tmp_path / "s")], api=hub) == 2
    assert "no Hugging Face token" in capsys.readouterr().err
    assert not (tmp_path / "s").exists() and hub.calls == []


def test_rejected_token_is_clear_and_never_printed(adapter_dir, tmp_path, capsys):
    hub = FakeHub(reject=True)
    assert (
        push_main(
            ["adapter", str(adapter_dir), "--repo", "team/x", "--token", SECRET, "--stage-dir", str(tmp_path / "s")],
            api=hub,
        )
        == 2
    )
    captured = capsys.readouterr()
    assert "rejected (HTTP 401)" in captured.err
    assert SECRET not in captured.out + captured.err
    assert not (tmp_path / "s").exists()


def test_a_hub_that_answers_404_is_not_called_a_bad_token(adapter_dir, tmp_path, capsys):
    assert (
        push_main(
            ["adapter", str(adapter_dir), "--repo", "team/x", "--token", SECRET, "--stage-dir", str(tmp_path / "s")],
            api=FakeHub(reject=True, status=404),
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "answered HTTP 404 when checking the token" in err and "rejected" not in err


def test_an_unreachable_hub_is_one_line(adapter_dir, tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{probe.getsockname()[1]}"
    run = subprocess.run(
        [
            sys.executable,
            "push_to_hub.py",
            "adapter",
            str(adapter_dir),
            "--repo",
            "team/x",
            "--stage-dir",
            str(tmp_path / "s"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "HF_ENDPOINT": endpoint, "HF_TOKEN": SECRET, "HF_HUB_ETAG_TIMEOUT": "2"},
    )
    assert run.returncode == 2, run.stderr
    assert f"could not be reached at {endpoint}" in run.stderr and "Traceback" not in run.stderr, run.stderr
    assert SECRET not in run.stdout + run.stderr


@pytest.mark.parametrize("public", [False, True])
def test_publish_asks_for_a_private_repo_and_uploads_the_stage(prepared, public, capsys):
    out, _ = prepared
    hub = FakeHub()
    argv = ["dataset", str(out), "--repo", "team/grid-mosaics", "--token", SECRET] + (["--public"] if public else [])
    assert push_main(argv, api=hub) == 0
    assert [call[0] for call in hub.calls] == ["whoami", "create_repo", "upload_folder"]
    [(_, repo_id, create)] = [c for c in hub.calls if c[0] == "create_repo"]
    assert repo_id == "team/grid-mosaics"
    assert create["private"] is (not public) and create["repo_type"] == "dataset" and create["exist_ok"] is True
    assert "README.md" in hub.uploaded and "data/train-00000-of-00001.parquet" in hub.uploaded
    assert list(hub.loaded) == list(datasets.load_dataset(str(out)))
    captured = capsys.readouterr()
    assert SECRET not in captured.out + captured.err


def test_hub_ids_load_offline_from_the_cache(prepared, tiny_dir, tmp_path, cache_snapshot):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForImageTextToText

    from lipagent.model.training import LORA_TARGET_MODULES

    out, _ = prepared
    model = AutoModelForImageTextToText.from_pretrained(tiny_dir)
    get_peft_model(model, LoraConfig(r=2, target_modules=LORA_TARGET_MODULES)).save_pretrained(tmp_path / "adapter")
    hub_cache = tmp_path / "hf" / "hub"
    cache_snapshot(hub_cache, "dataset", "team/grid-mosaics", out)
    cache_snapshot(hub_cache, "model", "team/tiny-lipreader-lora", tmp_path / "adapter")
    script = (
        "import datasets\n"
        "from lipagent.records import resolve\n"
        "from lipagent.readers.gemma import LipReader\n"
        "rows = datasets.load_dataset(str(resolve('team/grid-mosaics', 'dataset')), split='test')\n"
        "reader = LipReader.from_pretrained('team/tiny-lipreader-lora')\n"
        "print(len(rows), reader.transcribe_mosaic(rows[0]['image']))\n"
    )
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, cwd=REPO, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    count, *sentence = result.stdout.strip().splitlines()[-1].split()
    assert int(count) == len(datasets.load_dataset(str(out), split="test")) and len(sentence) == 6
