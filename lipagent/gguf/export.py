"""`lipagent export --gguf`: a trained adapter as llama.cpp files, to read lips on a laptop in 4 bits.

The adapter is merged into its base model (`lipagent.model.loading.export_merged`), llama.cpp's own converter
writes the text model and the vision projector (`mmproj`) as GGUF (`lipagent.gguf.convert` mends three Gemma 3n gaps
in it), the text model is quantized (default Q4_K_M), and beside them go what reading needs to see exactly what
training saw: the GRID grammar as GBNF, and `lipagent.json` with the mosaic settings the adapter recorded, the
rendered chat prompt and the image size. `lipagent.readers.gguf.GGUFReader` reads such a folder.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lipagent.gguf.gbnf import GBNF_FILE, grid_gbnf
from lipagent.gguf.llama import (
    QUANT_CHOICES,
    QUANT_TYPES,
    GGUFError,
    converter_dir,
    llama_cpp,
    llama_cpp_version,
    quantize,
)
from lipagent.model.loading import base_model_of, export_merged, load_processor
from lipagent.model.prompt import chat_prompt, recorded_prompt
from lipagent.outputs import check_output, move_into_place, output_lock, staging_for
from lipagent.records import GGUF_FORMAT, READING_RECORD, is_kind, read_record, resolve

SUPPORTED_ARCHITECTURES = ("Gemma3nForConditionalGeneration",)
MEDIA_MARKER = "<__media__>"
"""Where the image goes in the stored prompt (llama.cpp's mtmd default marker)."""


def _step(message: str) -> float:
    print(f"lipagent export: {message}", file=sys.stderr, flush=True)
    return time.perf_counter()


def run_converter(converter: Path, model: Path, target: Path, outtype: str, mmproj: bool = False) -> Path:
    """llama.cpp's convert_hf_to_gguf.py through lipagent.gguf.convert, in a subprocess; its last line on
    failure."""
    command = [
        sys.executable,
        "-m",
        "lipagent.gguf.convert",
        str(converter),
        str(model),
        "--outfile",
        str(target),
        "--outtype",
        outtype,
        *(["--mmproj"] if mmproj else []),
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0 or not target.is_file():
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        raise GGUFError(
            f"llama.cpp's converter failed on the {'vision projector' if mmproj else 'text model'}: "
            f"{lines[-1] if lines else 'no output'}"
        )
    return target


def base_model_file(base: str, name: str) -> Path:
    """One file of the base model: from its folder, or for a Hub id through the Hub cache."""
    if Path(base).exists():
        if not (Path(base) / name).is_file():
            raise GGUFError(f"{base} has no {name}, which llama.cpp's converter needs")
        return Path(base) / name
    from huggingface_hub import hf_hub_download

    try:
        return Path(hf_hub_download(base, name))
    except Exception as error:  # offline, gated or missing: all mean "cannot get it here"
        raise GGUFError(
            f"could not get {base}'s {name} ({type(error).__name__}); download the base model first "
            "(hf download) or pass --base-model FOLDER"
        ) from error


def base_architecture(config: dict[str, Any]) -> str:
    """The base model's architecture, from its config.json."""
    return (config.get("architectures") or ["model of unknown architecture"])[0]


def llama_cpp_shape_problem(text_config: dict[str, Any]) -> str | None:
    """Why llama.cpp cannot run a Gemma 3n text model of this shape, or None.

    llama.cpp's Gemma 3n graph hard-codes what E2B and E4B share (their config values below); a model of another
    shape converts without complaint and then fails to load, so it is refused before the merge and conversion.
    """
    layers = text_config.get("num_hidden_layers", 0)
    expected = {
        "hidden_size": 2048,
        "hidden_size_per_layer_input": 256,
        "laurel_rank": 64,
        "num_kv_shared_layers": max(0, layers - 20),
    }
    for key, value in expected.items():
        if text_config.get(key) != value:
            return f"text {key} is {text_config.get(key)}, llama.cpp's Gemma 3n needs {value}"
    sparsity = [float(x) for x in text_config.get("activation_sparsity_pattern") or [0.0] * layers]
    if sparsity != [0.95] * min(10, layers) + [0.0] * max(0, layers - 10):
        return "its activation sparsity is not 0.95 in exactly the first 10 layers, as llama.cpp's Gemma 3n assumes"
    return None


def tokenizer_model(adapter: Path, base: str) -> Path:
    """The SentencePiece file llama.cpp's converter reads: the adapter's if training kept one, else the base
    model's (transformers 5 no longer saves it)."""
    if (adapter / "tokenizer.model").is_file():
        return adapter / "tokenizer.model"
    return base_model_file(base, "tokenizer.model")


def reading_record(processor: Any, adapter: Path, base: str, quant: str, files: dict[str, str]) -> dict[str, Any]:
    """What GGUFReader needs to build the adapter's inputs: mosaic settings, prompt, image geometry."""
    from lipagent.model.constrained import grid_token_grammar

    grammar = grid_token_grammar(processor)
    recorded = read_record(adapter)
    image_token, full = processor.image_token, processor.full_image_sequence
    before = full[: full.index(processor.boi_token)]  # the text around <start_of_image>...<end_of_image>
    after = full[full.rindex(processor.tokenizer.eoi_token) + len(processor.tokenizer.eoi_token) :]
    size = processor.image_processor.size
    prompt = recorded_prompt(recorded)
    return {
        "format": GGUF_FORMAT,
        **files,
        "quant": quant,
        "mosaic": recorded.mosaic.to_dict(),
        "speech_span": recorded.speech_span,
        "prompt": prompt,
        "prompt_text": chat_prompt(processor, prompt).replace(image_token, before + MEDIA_MARKER + after),
        "grid_tokens": {
            "pieces": grammar.pieces,
            "end_ids": grammar.end_ids,
            "pad_id": processor.tokenizer.pad_token_id,
        },
        "image_size": [size["width"], size["height"]],
        "resample": int(processor.image_processor.resample),
        "adapter": str(adapter),
        "base_model": base,
        "llama_cpp_python": llama_cpp_version(),
    }


def usage_readme(record: dict[str, Any]) -> str:
    model, mmproj = record["model"], record["mmproj"]
    return f"""# LipAgent lip reader, GGUF ({record["quant"]})

Gemma 3n + the LoRA adapter `{record["adapter"]}` merged, for llama.cpp. Files: `{model}` (text model),
`{mmproj}` (vision projector, f16), `{GBNF_FILE}` (the GRID grammar), `{READING_RECORD}` (the mosaic settings and
prompt the adapter was trained with).

Read lips with LipAgent, which builds the mosaic exactly as training did:

    lipagent transcribe clip.mp4 --gguf {{this folder}}

With llama.cpp alone, give it a mosaic LipAgent made (an image of a prepared dataset, or one that
`lipagent live --source clip.mp4 --save DIR` keeps for each utterance):

    llama-mtmd-cli -m {model} --mmproj {mmproj} --grammar-file {GBNF_FILE} --temp 0 \\
        --image mosaic.jpg -p "{record["prompt"]}"
    llama-server -m {model} --mmproj {mmproj}     # then send the mosaic and the prompt with the grammar

The mosaic must be built with the settings in `{READING_RECORD}`; any other crop or frame choice is an input the
model never saw.

Ollama cannot read these files: its Gemma 3n model is text only (no vision encoder), so it would ignore the image.
"""


def export_gguf(
    adapter: str | Path,
    out: str | Path,
    quant: str = "Q4_K_M",
    base_model: str | None = None,
    overwrite: bool = False,
    check: Callable[[Path], None] | None = None,
) -> Path:
    """Write the GGUF folder for `adapter` (a folder or a Hub id) to `out`; returns `out`.

    `check` gets the finished folder before it takes the place of `out` (the command reads one mosaic with it), so
    an export llama.cpp cannot read is never left behind as if it were written."""
    out = Path(out)
    if quant not in QUANT_CHOICES:
        raise GGUFError(f"--quant {quant} is not one of {', '.join(QUANT_CHOICES)}")
    check_output(out, overwrite, is_kind("gguf"), "GGUF export")
    llama_cpp()
    folder = resolve(adapter)
    if not (folder / "adapter_config.json").is_file():
        raise GGUFError(f"{adapter} is not a LoRA adapter folder (no adapter_config.json)")
    base = base_model or base_model_of(folder)
    config = json.loads(base_model_file(base, "config.json").read_text())
    architecture = base_architecture(config)
    if architecture not in SUPPORTED_ARCHITECTURES:
        raise GGUFError(
            f"the base model {base} is a {architecture}; GGUF export knows Gemma 3n "
            f"({', '.join(SUPPORTED_ARCHITECTURES)})"
        )
    problem = llama_cpp_shape_problem(config["text_config"])
    if problem:
        raise GGUFError(f"llama.cpp cannot run the base model {base}: {problem}")
    converter = converter_dir(announce=_step)
    with output_lock(out), staging_for(out) as staging:
        started = _step(f"merging {folder} into {base}")
        text_type = "f32" if quant == "f32" else "f16"
        merged = export_merged(folder, staging / "merged", base, "float32" if quant == "f32" else "bfloat16")
        shutil.copy2(tokenizer_model(folder, base), merged / "tokenizer.model")
        _step("converting the text model (llama.cpp convert_hf_to_gguf.py)")
        text = run_converter(converter, merged, staging / f"model-{text_type}.gguf", text_type)
        _step("converting the vision projector")
        mmproj = run_converter(converter, merged, staging / "mmproj-f16.gguf", "f16", mmproj=True)
        if quant in QUANT_TYPES:
            _step(f"quantizing the text model to {quant}")
            unquantized, text = text, quantize(text, staging / f"model-{quant}.gguf", quant)
            unquantized.unlink()
        processor = load_processor(folder, base)
        record = reading_record(processor, folder, base, quant, {"model": text.name, "mmproj": mmproj.name})
        shutil.rmtree(merged)
        (staging / GBNF_FILE).write_text(grid_gbnf())
        (staging / READING_RECORD).write_text(json.dumps(record, indent=2) + "\n")
        (staging / "README.md").write_text(usage_readme(record))
        if check is not None:
            _step("checking that llama.cpp loads the export and reads a mosaic with it")
            check(staging)
        sizes = ", ".join(f"{p.name} {p.stat().st_size / 2**20:.1f} MiB" for p in sorted(staging.glob("*.gguf")))
        _step(f"done in {time.perf_counter() - started:.0f} s: {sizes}")
        return move_into_place(staging, out, overwrite, is_kind("gguf"), "GGUF export")
