"""`lipagent export --gguf` and `transcribe --gguf`: the tiny Gemma 3n through llama.cpp against the PyTorch reader,
on real GRID mosaics. The tiny model here has the text widths llama.cpp hard-codes (tiny_gemma3n.LLAMA_CPP_SHAPE)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import datasets
import numpy as np
import pytest
import torch

import lipagent.testing.tiny_gemma3n as tiny
from lipagent.cli import main as lipagent_main
from lipagent.gguf.gbnf import grid_gbnf
from lipagent.grammar import is_valid_sentence
from lipagent.model.prompt import PROMPT
from lipagent.records import READING_RECORD

pytest.importorskip("llama_cpp", reason="the gguf extra is not installed (make setup installs it)")

LOGIT_TOLERANCE = 0.02
"""Largest first-step logit difference allowed, as a share of the largest |logit| (measured: under 0.01; f16 vision
tower in llama.cpp, and its activation-sparsity cut-off uses the unbiased standard deviation)."""


def _gguf_export(root: Path) -> None:
    """A LoRA adapter with non-zero weights on the llama.cpp-shaped tiny Gemma 3n (with its reading record), and its
    f32 GGUF export."""
    adapter = tiny.save_random_adapter(tiny.save_tiny_model(root / "base", llama_cpp_shape=True), root / "adapter")
    assert lipagent_main(["export", str(adapter), "--gguf", str(root / "gguf"), "--quant", "f32"]) == 0


@pytest.fixture(scope="module")
def gguf_export(build_once) -> tuple[Path, Path]:
    root = build_once("gguf-tiny", _gguf_export)
    return root / "adapter", root / "gguf"


@pytest.fixture(scope="module")
def gguf_adapter(gguf_export) -> Path:
    return gguf_export[0]


@pytest.fixture(scope="module")
def exported(gguf_export) -> Path:
    return gguf_export[1]


@pytest.fixture(scope="module")
def mosaics(few_prepared) -> list:
    train = datasets.load_dataset(str(few_prepared), split="train")
    return [train[i]["image"] for i in range(4)]


GRID_GBNF = "\n".join(
    [
        "# GRID sentences (lipagent.grammar): command color preposition letter digit adverb",
        'root ::= command " " color " " preposition " " letter " " digit " " adverb',
        'command ::= "bin" | "lay" | "place" | "set"',
        'color ::= "blue" | "green" | "red" | "white"',
        'preposition ::= "at" | "by" | "in" | "with"',
        'letter ::= "a" | "b" | "c" | "d" | "e" | "f" | "g" | "h" | "i" | "j" | "k" | "l" | "m" | "n" | "o" | "p" | '
        '"q" | "r" | "s" | "t" | "u" | "v" | "x" | "y" | "z"',
        'digit ::= "zero" | "one" | "two" | "three" | "four" | "five" | "six" | "seven" | "eight" | "nine"',
        'adverb ::= "again" | "now" | "please" | "soon"',
        "",
    ]
)
"""The grammar llama.cpp gets, written out by hand from the GRID corpus description (no w among the letters)."""


def test_gbnf_spells_the_grid_grammar():
    assert grid_gbnf() == GRID_GBNF


def test_gbnf_literals_escape_quotes_and_backslashes():
    """GRID's words need no escaping; a vocabulary that did would still make a grammar llama.cpp parses."""
    from lipagent.gguf.gbnf import _literal

    assert _literal('say "hi"') == '"say \\"hi\\""' and _literal("a\\b") == '"a\\\\b"'


def test_export_writes_model_projector_grammar_and_what_reading_needs(exported, gguf_adapter):
    record = json.loads((exported / READING_RECORD).read_text())
    assert sorted(p.name for p in exported.iterdir()) == sorted(
        ["README.md", "grid.gbnf", READING_RECORD, "model-f32.gguf", "mmproj-f16.gguf"]
    )
    assert (record["format"], record["model"], record["mmproj"], record["quant"]) == (
        "lipagent-gguf",
        "model-f32.gguf",
        "mmproj-f16.gguf",
        "f32",
    )
    assert record["mosaic"] == json.loads((gguf_adapter / READING_RECORD).read_text())["mosaic"]
    assert PROMPT in record["prompt_text"] and record["image_size"] == [768, 768]
    assert (exported / "grid.gbnf").read_text() == grid_gbnf()
    readme = (exported / "README.md").read_text()
    assert "llama-mtmd-cli" in readme and "Ollama cannot" in readme


def test_llama_cpp_reads_what_pytorch_reads(exported, gguf_adapter, mosaics):
    """Same prompt tokens, first-step logits within LOGIT_TOLERANCE, same constrained transcriptions."""
    from lipagent.readers.gemma import LipReader
    from lipagent.readers.gguf import GGUFReader

    torch_reader = LipReader.from_pretrained(gguf_adapter, device="cpu")
    reader = GGUFReader(exported)
    try:
        image_token = torch_reader.model.config.image_token_id
        for mosaic in mosaics[:2]:
            inputs = torch_reader.prompt_inputs([mosaic])
            ids = [-1 if i == image_token else i for i in inputs["input_ids"][0].tolist()]
            assert reader.prompt_tokens(mosaic) == ids
            with torch.inference_mode():
                expected = torch_reader.model(**inputs).logits[0, -1].float().numpy()
            got = reader.first_logits(mosaic)
            assert np.abs(got - expected).max() <= LOGIT_TOLERANCE * np.abs(expected).max()
            assert got.argmax() == expected.argmax()
        read = reader.transcribe_mosaics(mosaics)
        assert all(is_valid_sentence(text) for text in read)
        decided = [decided_prefix(torch_reader, mosaic) for mosaic in mosaics]
        assert all(text.startswith(prefix) for text, prefix in zip(read, decided, strict=True)), (read, decided)
        assert min(len(prefix) for prefix in decided) >= len("lay blue in p"), "most of each sentence is decided"
    finally:
        reader.close()


def decided_prefix(torch_reader, mosaic) -> str:
    """What PyTorch's constrained greedy reading writes before its first near-tie: a step whose two best allowed
    tokens are within LOGIT_TOLERANCE of the largest logit, where llama.cpp's f16 tower may tip the other way (the
    random tiny model ignores the image and meets such ties; a whole sentence when it meets none)."""
    inputs = torch_reader.prompt_inputs([mosaic])
    tokenizer = torch_reader.processor.tokenizer
    with torch.inference_mode():
        out = torch_reader.model.generate(
            **inputs,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id,
            output_scores=True,
            output_logits=True,
            return_dict_in_generate=True,
            **torch_reader.generation_kwargs(),
        )
    answer = out.sequences[0, inputs["input_ids"].shape[1] :]
    for step, (scores, logits) in enumerate(zip(out.scores, out.logits, strict=True)):
        allowed = torch.isfinite(scores[0])
        if allowed.sum() > 1:
            best, second = torch.topk(logits[0].masked_fill(~allowed, -torch.inf), 2).values
            if best - second <= LOGIT_TOLERANCE * logits[0].abs().max():
                return tokenizer.decode(answer[:step], skip_special_tokens=True)
    return tokenizer.decode(answer, skip_special_tokens=True).strip()


def test_a_prompt_llama_cpp_cannot_evaluate_is_one_error_and_its_chunks_are_freed(exported, mosaics, monkeypatch):
    """The image chunks llama.cpp allocates for a prompt are freed whether it evaluates them or not."""
    from lipagent.gguf.llama import GGUFError
    from lipagent.readers.gguf import GGUFReader

    reader = GGUFReader(exported)
    try:
        made, freed = [], []
        prompt_chunks = reader.prompt_chunks
        monkeypatch.setattr(reader, "prompt_chunks", lambda mosaic: made.append(prompt_chunks(mosaic)) or made[-1])
        free = reader.mtmd.mtmd_input_chunks_free
        monkeypatch.setattr(reader.mtmd, "mtmd_input_chunks_free", lambda chunks: freed.append(chunks) or free(chunks))
        reader.first_logits(mosaics[0])
        monkeypatch.setattr(reader.mtmd, "mtmd_helper_eval_chunks", lambda *args: 1)
        with pytest.raises(GGUFError) as refused:
            reader.first_logits(mosaics[0])
        assert str(refused.value) == "llama.cpp could not evaluate the prompt with the mosaic"
        assert len(made) == 2 and freed == made, "each prompt's chunks, freed once"
    finally:
        reader.close()


def test_a_q4_k_m_export_loads_and_reads_valid_sentences(gguf_adapter, mosaics, tmp_path):
    from lipagent.readers.gguf import GGUFReader

    out = tmp_path / "gguf-q4"
    assert lipagent_main(["export", str(gguf_adapter), "--gguf", str(out)]) == 0
    assert json.loads((out / READING_RECORD).read_text())["model"] == "model-Q4_K_M.gguf"
    assert (out / "model-Q4_K_M.gguf").stat().st_size < 0.5 * 171e6  # the f32 text model is 171 MB
    reader = GGUFReader(out)
    try:
        assert all(is_valid_sentence(text) for text in reader.transcribe_mosaics(mosaics[:2]))
    finally:
        reader.close()


def test_transcribe_gguf_reads_a_real_clip(exported, unpacked, capsys):
    clip = next((unpacked / "s1").glob("*.mpg"))
    assert lipagent_main(["transcribe", str(clip), "--gguf", str(exported)]) == 0
    out, err = capsys.readouterr()
    assert is_valid_sentence(out.strip().splitlines()[-1]) and "llama.cpp: model-f32.gguf" in err


def test_run_eval_scores_a_gguf_export(exported, few_prepared, tmp_path):
    from eval.run_eval import main as run_eval_main

    argv = ["--gguf", str(exported), "--dataset", str(few_prepared), "--split", "train", "--max-samples", "3"]
    assert run_eval_main([*argv, "--out", str(tmp_path / "eval")]) == 0
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["valid_sentence_rate"] == 1.0 and metrics["decoding"] == "constrained"


def test_bad_gguf_input_gets_one_line_errors(exported, gguf_adapter, tmp_path, capsys, monkeypatch):
    assert lipagent_main(["export", str(gguf_adapter), "--gguf", str(exported)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert lipagent_main(["export", str(tmp_path / "missing"), "--gguf", str(tmp_path / "x")]) == 2
    assert "no such model folder" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:
        lipagent_main(["export", str(gguf_adapter)])
    assert usage.value.code == 2 and "one of the arguments --merged --gguf is required" in capsys.readouterr().err

    broken = tmp_path / "no-mmproj"
    shutil.copytree(exported, broken)
    (broken / "mmproj-f16.gguf").unlink()
    assert lipagent_main(["transcribe", str(tmp_path / "clip.mpg"), "--gguf", str(broken)]) == 2
    from lipagent.gguf.llama import GGUFError
    from lipagent.readers.gguf import GGUFReader

    with pytest.raises(GGUFError, match="lacks its vision projector"):
        GGUFReader(broken)
    with pytest.raises(SystemExit) as exit_info:
        lipagent_main(["transcribe", str(tmp_path / "clip.mpg"), "--gguf", str(gguf_adapter)])
    assert exit_info.value.code == 2 and "not a folder written by `lipagent export --gguf`" in capsys.readouterr().err

    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # as if the extra were not installed
    assert lipagent_main(["export", str(gguf_adapter), "--gguf", str(tmp_path / "y")]) == 2
    assert 'pip install -e ".[gguf]"' in capsys.readouterr().err


def test_a_base_model_llama_cpp_cannot_take_is_refused(tmp_path, capsys):
    """An adapter on another architecture: refused before any work, nothing left behind."""
    import transformers
    from peft import LoraConfig, get_peft_model

    config = transformers.LlamaConfig(
        vocab_size=64,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
    )
    transformers.LlamaForCausalLM(config).save_pretrained(tmp_path / "llama")
    model = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "llama")
    get_peft_model(model, LoraConfig(r=2, target_modules=["q_proj"])).save_pretrained(tmp_path / "adapter")
    assert (
        lipagent_main(
            [
                "export",
                str(tmp_path / "adapter"),
                "--gguf",
                str(tmp_path / "out"),
                "--base-model",
                str(tmp_path / "llama"),
            ]
        )
        == 2
    )
    assert "LlamaForCausalLM; GGUF export knows Gemma 3n" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adapter", "llama"]


def test_a_gemma_3n_of_a_shape_llama_cpp_cannot_run_is_refused_before_any_work(tiny_dir, tmp_path, capsys):
    """The 64-wide tiny model converts without complaint and then fails to load: refused in one line instead."""
    from lipagent.gguf.export import llama_cpp_shape_problem

    adapter = tiny.save_random_adapter(tiny_dir, tmp_path / "adapter")
    assert lipagent_main(["export", str(adapter), "--gguf", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "llama.cpp cannot run the base model" in err and "hidden_size is 64, llama.cpp's Gemma 3n needs 2048" in err
    assert "merging" not in err and not (tmp_path / "out").exists()
    assert llama_cpp_shape_problem(tiny.build_config(llama_cpp_shape=True).text_config.to_dict()) is None
    e4b = __import__("transformers").Gemma3nTextConfig().to_dict()
    assert llama_cpp_shape_problem(e4b) is None
    assert "activation sparsity" in llama_cpp_shape_problem({**e4b, "activation_sparsity_pattern": [0.95] * 35})


def test_the_converter_fetch_is_announced_once(tmp_path, monkeypatch):
    import lipagent.gguf.llama as llama

    fetched = []
    monkeypatch.delenv(llama.CONVERTER_ENV, raising=False)
    monkeypatch.setattr(llama, "cache_root", lambda: tmp_path)
    monkeypatch.setattr(llama, "llama_cpp_version", lambda: "9.9.9")

    def fetch(version: str, folder: Path) -> Path:
        fetched.append(version)
        folder.mkdir(parents=True)
        (folder / "convert_hf_to_gguf.py").write_text("")
        return folder

    monkeypatch.setattr(llama, "fetch_converter", fetch)
    heard: list[str] = []
    assert llama.converter_dir(heard.append) == tmp_path / "llama.cpp-converter-9.9.9"
    assert llama.converter_dir(heard.append) == tmp_path / "llama.cpp-converter-9.9.9"
    assert fetched == ["9.9.9"]
    folder = tmp_path / "llama.cpp-converter-9.9.9"
    assert heard == [f"fetching llama.cpp's converter (llama-cpp-python==9.9.9 source, once) into {folder}"]


def test_an_export_llama_cpp_cannot_read_is_not_written(gguf_adapter, tmp_path, capsys):
    """The check runs on the finished files before they take --gguf's place; its failure leaves nothing there."""
    from lipagent.gguf.export import export_gguf
    from lipagent.gguf.llama import GGUFError

    checked = []

    def unreadable(folder: Path) -> None:
        checked.append(sorted(p.name for p in folder.iterdir()))
        raise GGUFError("llama.cpp could not load mmproj-f16.gguf with model-f32.gguf")

    with pytest.raises(GGUFError, match="could not load"):
        export_gguf(gguf_adapter, tmp_path / "out", "f32", check=unreadable)
    assert checked and "model-f32.gguf" in checked[0] and "mmproj-f16.gguf" in checked[0]
    assert list(tmp_path.iterdir()) == []
    assert "checking that llama.cpp loads the export and reads a mosaic" in capsys.readouterr().err


@pytest.mark.parametrize("resample", [0, 2])
def test_the_mosaic_is_resized_as_the_export_recorded(resample):
    """The vision input is resized with the filter the export recorded (the processor's), not Pillow's default."""
    import io
    from types import SimpleNamespace

    from PIL import Image

    from lipagent.readers.gguf import GGUFReader

    mosaic = Image.fromarray(np.random.default_rng(0).integers(0, 256, (240, 400, 3), dtype=np.uint8))
    reader = SimpleNamespace(record={"image_size": [96, 96], "resample": resample})
    resized = Image.open(io.BytesIO(GGUFReader.model_image(reader, mosaic)))
    assert np.array_equal(np.array(resized), np.array(mosaic.resize((96, 96), Image.Resampling(resample))))
