"""GGUFReader: a `lipagent export --gguf` folder read through llama.cpp (CPU or Metal), under the GRID grammar.

The mosaic is built by the same `Reader` code as for the PyTorch reader, with the settings the adapter recorded;
it is resized to the vision tower's input size here, as the transformers processor does (llama.cpp's own resize of
a non-square image differs, and on the tiny model gave NaNs), then sent with the chat prompt training used,
rendered at export time. Decoding is greedy. Constrained decoding samples through llama.cpp's GBNF grammar (only the
64,000 GRID sentences can come out) and, at each step, the token automaton PyTorch decoding uses
(`lipagent.model.constrained`, from the word spellings the export stored): GBNF constrains text, so alone it also lets
through other spellings of a word (single letters, byte tokens) that training never showed, and the two runtimes
would then read the same logits differently.
"""

from __future__ import annotations

import ctypes
import io
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from lipagent.gguf.export import MEDIA_MARKER
from lipagent.gguf.gbnf import GBNF_FILE
from lipagent.gguf.llama import GGUFError, llama_cpp
from lipagent.grammar import normalize
from lipagent.model.constrained import grammar_from_pieces
from lipagent.readers.base import Reader
from lipagent.records import READING_RECORD, read_record, record_kind
from lipagent.transform.mosaic import mosaic_image

CONTEXT = 512
"""Tokens llama.cpp makes room for: the prompt (256 image tokens and about 60 of text) and the answer."""
MAX_NEW_TOKENS = 48
"""More than any GRID sentence takes in Gemma's vocabulary (six words, end token); free decoding stops here."""


def gguf_record(folder: Path) -> dict[str, Any]:
    """The export's lipagent.json, after checking that the files it names are there."""
    folder = Path(folder)
    if not folder.is_dir():
        raise GGUFError(f"{folder} is not a folder (give the folder `lipagent export --gguf` wrote)")
    if record_kind(folder) != "gguf":
        raise GGUFError(f"{folder} is not a GGUF export: no {READING_RECORD} from `lipagent export --gguf`")
    record = read_record(folder).values
    for key, what in (("model", "text model"), ("mmproj", "vision projector (mmproj)")):
        if not record.get(key) or not (folder / record[key]).is_file():
            raise GGUFError(f"{folder} lacks its {what} {record.get(key) or ''}; export it again")
    if not (folder / GBNF_FILE).is_file():
        raise GGUFError(f"{folder} lacks {GBNF_FILE}; export it again")
    return record


class GGUFReader(Reader):
    """One llama.cpp model + vision projector; `transcribe_*` as every Reader."""

    def __init__(
        self, folder: str | Path, decoding: str = "constrained", threads: int | None = None, verbose: bool = False
    ) -> None:
        self.folder = Path(folder)
        record = gguf_record(self.folder)
        self.record, self.decoding = record, decoding
        self.config = read_record(self.folder).mosaic
        self.lib = llama = llama_cpp()
        from llama_cpp import _logger, mtmd_cpp

        self.mtmd = mtmd_cpp
        _logger.set_verbose(verbose)
        mtmd_cpp.mtmd_helper_log_set(_logger.llama_log_callback, ctypes.c_void_p(0))
        from llama_cpp._utils import suppress_stdout_stderr

        threads = threads or max(1, (os.cpu_count() or 2) // 2)
        with suppress_stdout_stderr(disable=verbose):  # llama.cpp notes a context's set-up on stderr regardless
            # n_gpu_layers=-1: every layer on the GPU backend llama.cpp was built with (Metal on a Mac), none on a CPU
            self.llm = llama.Llama(
                model_path=str(self.folder / record["model"]),
                n_ctx=CONTEXT,
                n_batch=CONTEXT,
                n_threads=threads,
                n_gpu_layers=-1,
                verbose=verbose,
            )
            params = mtmd_cpp.mtmd_context_params_default()
            params.use_gpu, params.n_threads, params.print_timings = True, threads, verbose
            self.ctx = mtmd_cpp.mtmd_init_from_file(
                str(self.folder / record["mmproj"]).encode(), self.llm.model, params
            )
        if not self.ctx:
            raise GGUFError(f"llama.cpp could not load {record['mmproj']} with {record['model']}")
        self.grammar = (self.folder / GBNF_FILE).read_text()
        spelled = record["grid_tokens"]
        self.tokens = grammar_from_pieces(spelled["pieces"], spelled["end_ids"], spelled.get("pad_id"))
        self.prompt = record["prompt_text"].replace(MEDIA_MARKER, mtmd_cpp.mtmd_default_marker().decode())
        self.vocab = llama.llama_model_get_vocab(self.llm.model)
        self.sampler = self._sampler()  # one chain, reset for every clip: the grammar is parsed once
        self.description = (
            f"llama.cpp: {record['model']} ({record.get('quant')}) + {record['mmproj']}, "
            f"{threads} threads, {decoding} decoding"
        )

    def close(self) -> None:
        if getattr(self, "sampler", None):
            self.lib.llama_sampler_free(self.sampler)
            self.sampler = None
        if getattr(self, "ctx", None):
            self.mtmd.mtmd_free(self.ctx)
            self.ctx = None
        if getattr(self, "llm", None) is not None:
            self.llm.close()
            self.llm = None

    def __del__(self) -> None:
        if not sys.is_finalizing():  # at interpreter exit the bindings may be gone; the OS frees the memory
            self.close()

    def model_image(self, mosaic: Image.Image | bytes) -> bytes:
        """The mosaic resized to the vision tower's input, as the transformers processor resizes it (PNG)."""
        width, height = self.record["image_size"]
        image = mosaic_image(mosaic).convert("RGB").resize((width, height), Image.Resampling(self.record["resample"]))
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return buffer.getvalue()

    def prompt_chunks(self, mosaic: Image.Image | bytes) -> Any:
        """The prompt with the image, tokenized by llama.cpp's mtmd (caller frees the chunks)."""
        data = self.model_image(mosaic)
        bitmap = self.mtmd.mtmd_helper_bitmap_init_from_buf(
            self.ctx, (ctypes.c_uint8 * len(data)).from_buffer(bytearray(data)), len(data), False
        )
        text = self.mtmd.mtmd_input_text()
        encoded = self.prompt.encode()
        text.text, text.text_len, text.add_special, text.parse_special = encoded, len(encoded), False, True
        chunks = self.mtmd.mtmd_input_chunks_init()
        try:
            bitmaps = (self.mtmd.mtmd_bitmap_p_ctypes * 1)(bitmap)
            if self.mtmd.mtmd_tokenize(self.ctx, chunks, ctypes.byref(text), bitmaps, 1) != 0:
                self.mtmd.mtmd_input_chunks_free(chunks)
                raise GGUFError("llama.cpp could not tokenize the prompt with the mosaic")
        finally:
            self.mtmd.mtmd_bitmap_free(bitmap)
        return chunks

    def prompt_tokens(self, mosaic: Image.Image | bytes) -> list[int]:
        """The prompt's token ids as llama.cpp feeds them, -1 for each image embedding (for comparisons)."""
        chunks = self.prompt_chunks(mosaic)
        try:
            ids: list[int] = []
            for i in range(self.mtmd.mtmd_input_chunks_size(chunks)):
                chunk = self.mtmd.mtmd_input_chunks_get(chunks, i)
                if self.mtmd.mtmd_input_chunk_get_type(chunk) == self.mtmd.MTMD_INPUT_CHUNK_TYPE_TEXT:
                    count = ctypes.c_size_t()
                    tokens = self.mtmd.mtmd_input_chunk_get_tokens_text(chunk, ctypes.byref(count))
                    ids += [tokens[j] for j in range(count.value)]
                else:
                    ids += [-1] * self.mtmd.mtmd_input_chunk_get_n_tokens(chunk)
            return ids
        finally:
            self.mtmd.mtmd_input_chunks_free(chunks)

    def _read_prompt(self, mosaic: Image.Image | bytes) -> None:
        """Clear the context and evaluate prompt + image, leaving the next-token logits in llama.cpp's buffer."""
        llama = self.lib
        llama.llama_memory_clear(llama.llama_get_memory(self.llm.ctx), True)
        chunks = self.prompt_chunks(mosaic)
        try:
            past = llama.llama_pos(0)
            if (
                self.mtmd.mtmd_helper_eval_chunks(
                    self.ctx, self.llm.ctx, chunks, 0, 0, self.llm.n_batch, True, ctypes.byref(past)
                )
                != 0
            ):
                raise GGUFError("llama.cpp could not evaluate the prompt with the mosaic")
        finally:
            self.mtmd.mtmd_input_chunks_free(chunks)

    def _logits(self) -> np.ndarray:
        """The next-token logits in llama.cpp's own buffer (a view: writing to it changes what is sampled)."""
        pointer = self.lib.llama_get_logits_ith(self.llm.ctx, -1)
        return np.ctypeslib.as_array(pointer, shape=(self.llm.n_vocab(),))

    def _keep_only(self, allowed: np.ndarray) -> None:
        """Set every other next-token logit to -inf, in llama.cpp's buffer (the sampler reads it from there)."""
        logits = self._logits()
        kept = logits[allowed].copy()
        logits[:] = -np.inf
        logits[allowed] = kept

    def first_logits(self, mosaic: Image.Image | bytes) -> np.ndarray:
        """The next-token logits after the prompt: what the first answer token is chosen from."""
        self._read_prompt(mosaic)
        return self._logits().copy()

    def _sampler(self) -> Any:
        llama = self.lib
        chain = llama.llama_sampler_chain_init(llama.llama_sampler_chain_default_params())
        if self.decoding == "constrained":
            grammar = llama.llama_sampler_init_grammar(self.vocab, self.grammar.encode(), b"root")
            if not grammar:
                raise GGUFError(f"llama.cpp rejected {GBNF_FILE}")
            llama.llama_sampler_chain_add(chain, grammar)
        llama.llama_sampler_chain_add(chain, llama.llama_sampler_init_greedy())
        return chain

    def _piece(self, token: int) -> bytes:
        buffer = ctypes.create_string_buffer(64)
        size = self.lib.llama_token_to_piece(self.vocab, token, buffer, len(buffer), 0, False)
        return buffer.raw[: max(size, 0)]

    def transcribe_mosaic(self, mosaic: Image.Image | bytes) -> str:
        llama = self.lib
        self._read_prompt(mosaic)
        if not np.isfinite(self._logits()).all():
            raise GGUFError("llama.cpp returned non-finite logits for this mosaic")
        llama.llama_sampler_reset(self.sampler)
        answer, state = b"", self.tokens.start
        for _ in range(MAX_NEW_TOKENS):
            if self.decoding == "constrained":
                self._keep_only(self.tokens.allowed[state].numpy())
            token = llama.llama_sampler_sample(self.sampler, self.llm.ctx, -1)
            state = self.tokens.step(state, token)
            if llama.llama_vocab_is_eog(self.vocab, token):
                break
            answer += self._piece(token)
            batch = llama.llama_batch_get_one((llama.llama_token * 1)(token), 1)
            if llama.llama_decode(self.llm.ctx, batch) != 0:
                raise GGUFError("llama.cpp could not decode the next token")
        return normalize(answer.decode("utf-8", errors="replace"))

    def transcribe_mosaics(self, mosaics: Sequence[Image.Image | bytes]) -> list[str]:
        return [self.transcribe_mosaic(mosaic) for mosaic in mosaics]
