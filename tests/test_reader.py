"""LipReader, `lipagent transcribe`/`export` and eval/run_eval.py on the tiny Gemma 3n and real GRID clips."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import datasets
import numpy as np
import pytest
import torch

import lipagent.testing.tiny_gemma3n as tiny
from lipagent.cli import main as lipagent_main
from lipagent.config import DEFAULT_CONFIG, LEGACY_SETTINGS, MosaicConfig
from lipagent.data.align import parse_alignment
from lipagent.grammar import is_valid_sentence
from lipagent.model.prompt import PROMPT, prompt_for, recorded_prompt, training_example
from lipagent.readers.base import ReaderError
from lipagent.readers.gemma import LipReader, plan_device
from lipagent.records import READING_RECORD, Record, read_record
from lipagent.transform.mosaic import mosaic_image
from lipagent.transform.pipeline import ClipRejected
from lipagent.transform.video import read_frames


@pytest.fixture(scope="module")
def tiny_adapter(tiny_dir, tmp_path_factory):
    """A LoRA adapter on the tiny random Gemma 3n whose weights are not zero (so merging matters)."""
    return tiny.save_random_adapter(tiny_dir, tmp_path_factory.mktemp("tiny") / "adapter")


@pytest.fixture(scope="module")
def reader(tiny_adapter):
    return LipReader.from_pretrained(tiny_adapter, device="cpu")


def _speech(unpacked, video_id):
    alignment = parse_alignment((unpacked / "alignments" / "s1" / f"{video_id}.align").read_text())
    return alignment.speech_start_frame, alignment.speech_end_frame


def test_device_plan_on_this_machine():
    plan = plan_device()
    assert plan.device == "cpu" and plan.dtype == torch.float32 and "cpu" in plan.reason
    with pytest.raises(ReaderError, match="CUDA"):
        plan_device(load_in_4bit=True)
    with pytest.raises(ReaderError, match="mps"):
        plan_device(device="mps")
    with pytest.raises(ReaderError, match="^--device cuda:1 was asked for but no CUDA GPU is visible$"):
        plan_device(device="cuda:1")
    with pytest.raises(ReaderError, match="^--device tpu is not one of cuda, cuda:N, mps or cpu$"):
        plan_device(device="tpu")
    assert plan_device(dtype="bfloat16").dtype == torch.bfloat16


@pytest.mark.parametrize("video_id", ["bbaf2n", "lrae3s", "sgib8n"])
def test_mosaic_is_byte_identical_to_the_datasets(prepared, unpacked, video_id):
    out, _ = prepared
    stored = {
        row["video_id"]: row["image"]["bytes"]
        for split in ("train", "validation", "test")
        for row in datasets.load_dataset(str(out), split=split).cast_column("image", datasets.Image(decode=False))
    }
    reader = LipReader(model=None, processor=None, plan=plan_device())
    speech = _speech(unpacked, video_id)
    path = unpacked / "s1" / f"{video_id}.mpg"
    assert reader.mosaic_for_video(path, speech) == stored[video_id]
    frames, count = read_frames(path)
    assert reader.mosaic_for_frames([frames[i] for i in range(count)], speech) == stored[video_id]


@pytest.mark.parametrize("prompt", [PROMPT, prompt_for(MosaicConfig(rows=4, cols=6))])
def test_prompt_tokens_and_pixels_match_the_training_collator(tiny_adapter, prepared, prompt):
    from trl.trainer.sft_trainer import DataCollatorForVisionLanguageModeling

    out, _ = prepared
    row = datasets.load_dataset(str(out), split="test")[0]
    reader = LipReader(model=None, processor=tiny.build_processor(), plan=plan_device(), prompt=prompt)
    inputs = reader.prompt_inputs([row["image"]])
    assert prompt in reader.processor.tokenizer.decode(inputs["input_ids"][0])
    collator = DataCollatorForVisionLanguageModeling(processor=reader.processor)
    batch = collator([training_example(row["image"], row["text"], prompt)])
    prompt = inputs["input_ids"][0][inputs["attention_mask"][0] == 1]
    trained = batch["input_ids"][0][batch["attention_mask"][0] == 1]
    assert torch.equal(trained[: len(prompt)], prompt), "inference must send the training sequence's prompt exactly"
    answer = reader.processor.tokenizer.decode(trained[len(prompt) :], skip_special_tokens=True)
    assert answer.strip() == row["text"]
    assert torch.equal(inputs["pixel_values"], batch["pixel_values"])


def test_a_model_reads_with_the_prompt_it_recorded_or_else_the_one_for_its_mosaics(reader, tiny_adapter):
    assert reader.prompt == read_record(tiny_adapter).prompt == PROMPT
    assert "24 frames" in PROMPT and "(4 rows of 6)" in PROMPT
    narrow = MosaicConfig(rows=3, cols=4)
    assert recorded_prompt(Record("adapter", narrow)) == prompt_for(narrow) != PROMPT
    assert "12 frames" in prompt_for(narrow) and "(3 rows of 4)" in prompt_for(narrow)
    assert recorded_prompt(Record("adapter", narrow, values={"prompt": "Read the lips."})) == "Read the lips."


def test_the_reader_builds_mosaics_as_the_adapter_recorded(reader, tiny_adapter, tmp_path, caplog):
    assert reader.config == DEFAULT_CONFIG == read_record(tiny_adapter).mosaic
    recorded = MosaicConfig(landmarks="tracking", resampling="area")
    shutil.copy(tiny_adapter / "adapter_config.json", tmp_path)
    (tmp_path / READING_RECORD).write_text(json.dumps({"mosaic": {**recorded.to_dict(), "speech_span": "both"}}))
    assert read_record(tmp_path).mosaic == recorded and read_record(tmp_path).speech_span == "both"
    (tmp_path / READING_RECORD).unlink()
    legacy = read_record(tmp_path).mosaic
    assert {k: getattr(legacy, k) for k in LEGACY_SETTINGS} == LEGACY_SETTINGS
    assert READING_RECORD in caplog.text, "an adapter without a record must say which settings it is read with"


def test_transcribe_a_real_clip_end_to_end(reader, unpacked):
    reader.decoding = "constrained"
    sentence = reader.transcribe_video(unpacked / "s1" / "bbaf2n.mpg")
    assert is_valid_sentence(sentence), sentence
    reader.decoding = "free"
    assert isinstance(reader.transcribe_video(unpacked / "s1" / "bbaf2n.mpg"), str)
    reader.decoding = "constrained"


def test_batched_transcription_matches_one_by_one(reader, prepared):
    out, _ = prepared
    images = datasets.load_dataset(str(out), split="test")[:3]["image"]
    assert reader.transcribe_mosaics(images) == [reader.transcribe_mosaic(i) for i in images]


def test_cli_prints_the_transcription_last(tiny_adapter, unpacked, capsys):
    code = lipagent_main(["transcribe", str(unpacked / "s1" / "bbaf2n.mpg"), "--model", str(tiny_adapter)])
    captured = capsys.readouterr()
    assert code == 0
    assert is_valid_sentence(captured.out.strip().splitlines()[-1])
    assert "running on cpu" in captured.err


def test_a_transcription_prints_no_library_noise(tiny_adapter, unpacked):
    # sgib8n makes FFmpeg print "ac-tex damaged"; loading a PEFT adapter made transformers print a FutureWarning.
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "lipagent",
            "transcribe",
            str(unpacked / "s1" / "sgib8n.mpg"),
            "--model",
            str(tiny_adapter),
        ],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert is_valid_sentence(run.stdout.strip().splitlines()[-1])
    for noise in ("ac-tex", "Warning MVs", "FutureWarning", "is_gradient_checkpointing"):
        assert noise not in run.stderr, run.stderr


def _blank_clip(path):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"PIM1"), 25, (360, 288))
    for _ in range(40):
        writer.write(np.zeros((288, 360, 3), np.uint8))
    writer.release()


def test_bad_inputs_are_clear_errors_before_any_model_loads(tiny_adapter, unpacked, tmp_path, capsys, monkeypatch):
    (tmp_path / "notes.mp4").write_text("not a video")
    _blank_clip(tmp_path / "blank.mpg")

    def no_model_load(*args, **kwargs):
        raise AssertionError("the input must be checked before the model is loaded")

    with monkeypatch.context() as patched:
        patched.setattr(LipReader, "from_pretrained", no_model_load)
        cases = [
            (tmp_path / "notes.mp4", [], "cannot be opened"),
            (tmp_path / "blank.mpg", [], "no face was found in any frame"),
            (tmp_path / "blank.mpg", ["--speech", "whole"], "face found too rarely"),
            (tmp_path / "missing.mp4", [], "no such file"),
            (unpacked / "s1" / "bbaf2n.mpg", ["--start-frame", "3"], "both --start-frame and --end-frame"),
        ]
        for path, extra, message in cases:
            assert lipagent_main(["transcribe", str(path), "--model", str(tiny_adapter), *extra]) == 2
            assert message in capsys.readouterr().err
    assert (
        lipagent_main(
            ["transcribe", str(unpacked / "s1" / "bbaf2n.mpg"), "--model", str(tiny_adapter), "--load-in-4bit"]
        )
        == 2
    )
    assert "CUDA" in capsys.readouterr().err
    reader = LipReader(model=None, processor=None, plan=plan_device())
    with pytest.raises(ClipRejected, match="5 frames given; a mosaic needs at least 12"):
        reader.mosaic_for_frames([np.zeros((288, 360, 3), np.uint8)] * 5)


def test_export_merges_the_adapter(reader, tiny_adapter, tmp_path, prepared):
    from transformers import AutoModelForImageTextToText

    out, _ = prepared
    assert lipagent_main(["export", str(tiny_adapter), "--merged", str(tmp_path / "merged"), "--dtype", "float32"]) == 0
    merged = AutoModelForImageTextToText.from_pretrained(tmp_path / "merged").eval()
    assert (tmp_path / "merged" / READING_RECORD).read_text() == (tiny_adapter / READING_RECORD).read_text()
    inputs = reader.prompt_inputs([datasets.load_dataset(str(out), split="test")[0]["image"]])
    with torch.inference_mode():
        expected = reader.model(**inputs).logits
        got = merged(**inputs).logits
        base = reader.model.get_base_model()
        with reader.model.disable_adapter():
            plain = base(**inputs).logits
    assert torch.allclose(got, expected, atol=1e-4)
    assert not torch.allclose(plain, expected, atol=1e-3), (
        "the adapter must change the logits for this test to mean anything"
    )


def test_run_eval_writes_metrics_predictions_and_report(tiny_adapter, prepared, tmp_path):
    from eval.run_eval import main as run_eval_main

    out, _ = prepared
    assert (
        run_eval_main(
            [
                "--model",
                str(tiny_adapter),
                "--dataset",
                str(out),
                "--split",
                "test",
                "--out",
                str(tmp_path / "eval"),
                "--max-samples",
                "5",
                "--batch-size",
                "2",
            ]
        )
        == 0
    )
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert {"wer", "cer", "sentence_accuracy", "valid_sentence_rate", "slot_accuracy", "per_speaker"} <= set(metrics)
    assert set(metrics["slot_accuracy"]) == {"command", "color", "preposition", "letter", "digit", "adverb"}
    assert metrics["valid_sentence_rate"] == 1.0 and metrics["num_samples"] == 5
    assert set(metrics["per_speaker"]) <= {"s1", "s2"}
    lines = [json.loads(line) for line in (tmp_path / "eval" / "predictions.jsonl").read_text().splitlines()]
    assert len(lines) == 5 and set(lines[0]) == {"video_id", "speaker", "reference", "prediction"}
    assert all(is_valid_sentence(line["prediction"]) for line in lines)
    assert (tmp_path / "eval" / "report.png").stat().st_size > 10_000


def test_mosaic_image_accepts_bytes_and_images(prepared):
    out, _ = prepared
    row = datasets.load_dataset(str(out), split="test").cast_column("image", datasets.Image(decode=False))[0]
    image = mosaic_image(row["image"]["bytes"])
    assert image.size == (DEFAULT_CONFIG.width, DEFAULT_CONFIG.height) and image.mode == "RGB"
    assert mosaic_image(image) is not None


def test_a_static_cache_reads_the_same_and_the_prefill_scores_one_position(tiny_adapter, prepared):
    out, _ = prepared
    images = datasets.load_dataset(str(out), split="test")[:3]["image"]
    dynamic = LipReader.from_pretrained(tiny_adapter, device="cpu")
    static = LipReader.from_pretrained(tiny_adapter, device="cpu", cache="static")
    assert static.generation_kwargs()["cache_implementation"] == "static"
    assert "cache_implementation" not in dynamic.generation_kwargs()
    assert static.transcribe_mosaics(images) == dynamic.transcribe_mosaics(images)
    positions = []
    head = static.model.get_output_embeddings()
    hook = head.register_forward_hook(lambda module, args, output: positions.append(output.shape[1]))
    try:
        static.transcribe_mosaic(images[0])
    finally:
        hook.remove()
    assert positions[0] == 1, "the prefill computes the LM head at the last prompt position only"
    assert not [n for n, _ in static.model.named_parameters() if ".audio_tower." in n], "a reader never runs audio"
    with pytest.raises(ReaderError, match="cache must be one of dynamic, static, got 'paged'"):
        LipReader(static.model, static.processor, static.plan, cache="paged")
