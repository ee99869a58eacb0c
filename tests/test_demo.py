"""The README's main quick-start command: the whole loop on the embedded default, offline, on a CPU."""

import json

import datasets
import jiwer
import pytest
from huggingface_hub import ModelCard

from lipagent.cli.demo import measured_line, run_demo
from lipagent.grammar import is_valid_sentence


def test_demo_runs_the_whole_loop(tmp_path, capsys):
    artifacts = run_demo(tmp_path / "demo")
    printed = capsys.readouterr().out
    for path in artifacts.values():
        assert path.exists(), path
    assert list(datasets.load_dataset(str(artifacts["dataset"]))) == ["train", "validation", "test"]
    assert (artifacts["adapter"] / "adapter_model.safetensors").is_file()
    losses = [e["loss"] for e in json.loads(artifacts["trainer state"].read_text())["log_history"] if "loss" in e]
    assert len(losses) >= 2
    metrics = json.loads(artifacts["metrics"].read_text())
    assert metrics["valid_sentence_rate"] == 1.0
    for reader in ("baseline read: ", "tiny Gemma read: "):
        assert is_valid_sentence(printed.split(reader)[1].splitlines()[0]), reader
    predictions = artifacts["metrics"].parent / "predictions.jsonl"
    records = [json.loads(line) for line in predictions.read_text().splitlines()]
    references = [record["reference"] for record in records]
    assert len(records) == metrics["num_samples"]
    assert metrics["wer"] == pytest.approx(jiwer.wer(references, [record["prediction"] for record in records]))
    baseline_read = [record["baseline_prediction"] for record in records]
    assert metrics["baseline"]["wer"] == pytest.approx(jiwer.wer(references, baseline_read))
    assert measured_line(metrics) in printed, "the demo prints what it measured"
    assert (artifacts["baseline"] / "model.safetensors").is_file()
    staged = datasets.load_dataset(str(artifacts["staged dataset"]))
    assert {s: len(staged[s]) for s in staged} == {
        s: len(d) for s, d in datasets.load_dataset(str(artifacts["dataset"])).items()
    }
    card = ModelCard.load(artifacts["staged adapter"] / "README.md")
    assert {r.metric_type: r.metric_value for r in card.data.eval_results}["wer"] == metrics["wer"]
    assert not (artifacts["staged adapter"] / "training_args.bin").exists()
    for command in (
        "lipagent prepare",
        "lipagent baseline train",
        "train/tiny_model.py",
        "lipagent train",
        "lipagent eval",
        "lipagent transcribe",
        "lipagent push",
    ):
        assert command in printed
