"""llama.cpp from Python, for the GGUF path: its runtime (llama-cpp-python, the optional `gguf` extra), the
converter of the same llama.cpp, and its quantizer.

The converter (`convert_hf_to_gguf.py` with its `conversion/` and `gguf-py/`) ships only in llama-cpp-python's
source distribution, not in the installed package, so it is unpacked once from that sdist (pip downloads it from
the package index, usually from pip's own cache since installing the extra fetched it) into a cache folder named by
the installed version: the converter always matches the runtime that reads its files.
"""

from __future__ import annotations

import ctypes
import importlib.metadata
import os
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from lipagent.config import cache_root
from lipagent.records import RecordError

INSTALL_HINT = (
    'llama.cpp is not installed: pip install -e ".[gguf]" (builds llama.cpp from source; about 3 minutes on 2 cores)'
)
CONVERTER_ENV = "LIPAGENT_LLAMA_CPP_CONVERTER"
"""A llama.cpp checkout whose convert_hf_to_gguf.py to use instead of the one unpacked from the sdist."""
CONVERTER_FILES = ("convert_hf_to_gguf.py", "conversion", "gguf-py")

QUANT_TYPES = {
    "Q4_K_M": "LLAMA_FTYPE_MOSTLY_Q4_K_M",
    "Q5_K_M": "LLAMA_FTYPE_MOSTLY_Q5_K_M",
    "Q6_K": "LLAMA_FTYPE_MOSTLY_Q6_K",
    "Q8_0": "LLAMA_FTYPE_MOSTLY_Q8_0",
    "Q4_0": "LLAMA_FTYPE_MOSTLY_Q4_0",
}
"""--quant choices that llama.cpp's quantizer makes from the f16 GGUF; f16 and f32 are the converter's own."""
QUANT_CHOICES = (*QUANT_TYPES, "f16", "f32")


class GGUFError(RecordError):
    """A GGUF export or read that cannot go on, in one line a user can act on."""


def llama_cpp() -> ModuleType:
    """The llama_cpp package (with its multimodal bindings), or a GGUFError saying how to install it."""
    try:
        import llama_cpp as module
        import llama_cpp.mtmd_cpp
    except ImportError as error:
        raise GGUFError(INSTALL_HINT) from error
    return module


def llama_cpp_version() -> str:
    return importlib.metadata.version("llama-cpp-python")


def converter_dir(announce: Callable[[str], object] = lambda message: None) -> Path:
    """A folder holding convert_hf_to_gguf.py, conversion/ and gguf-py/ of the installed llama.cpp; `announce`
    hears of the one-time fetch, which takes a minute."""
    override = os.environ.get(CONVERTER_ENV)
    if override:
        if not (Path(override) / "convert_hf_to_gguf.py").is_file():
            raise GGUFError(f"{CONVERTER_ENV}={override} has no convert_hf_to_gguf.py (give a llama.cpp checkout)")
        return Path(override)
    llama_cpp()
    version = llama_cpp_version()
    folder = cache_root() / f"llama.cpp-converter-{version}"
    if not (folder / "convert_hf_to_gguf.py").is_file():
        announce(f"fetching llama.cpp's converter (llama-cpp-python=={version} source, once) into {folder}")
        fetch_converter(version, folder)
    return folder


def fetch_converter(version: str, folder: Path) -> Path:
    """Unpack the converter files from llama-cpp-python's sdist of `version` into `folder` (atomically)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent, prefix=".converter-") as work:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--no-binary",
                ":all:",
                f"llama-cpp-python=={version}",
                "--dest",
                work,
            ],
            capture_output=True,
            text=True,
        )
        archives = sorted(Path(work).glob("llama_cpp_python-*.tar.gz"))
        if result.returncode != 0 or not archives:
            last = (result.stderr.strip().splitlines() or ["no archive"])[-1]
            raise GGUFError(
                f"could not fetch llama.cpp's converter (llama-cpp-python=={version} source): {last}; "
                f"set {CONVERTER_ENV} to a llama.cpp checkout instead"
            )
        prefix = f"{archives[0].name.removesuffix('.tar.gz')}/vendor/llama.cpp/"
        staging = Path(work) / "converter"
        with tarfile.open(archives[0]) as archive:
            members = [
                m
                for m in archive.getmembers()
                if m.name.startswith(prefix) and m.name[len(prefix) :].split("/")[0] in CONVERTER_FILES
            ]
            for member in members:
                member.name = member.name[len(prefix) :]
            archive.extractall(staging, members=members, filter="data")
        if not (staging / "convert_hf_to_gguf.py").is_file():
            raise GGUFError(f"llama-cpp-python=={version}'s source has no convert_hf_to_gguf.py")
        staging.rename(folder)
    return folder


def quantize(source: Path, target: Path, quant: str, threads: int | None = None) -> Path:
    """llama.cpp's quantizer (llama_model_quantize) from an f16/f32 GGUF to `quant`."""
    module = llama_cpp()
    from llama_cpp import _logger

    _logger.set_verbose(False)  # its per-tensor notes ("falling back to q5_0") are not the user's business
    params = module.llama_model_quantize_default_params()
    params.ftype = getattr(module, QUANT_TYPES[quant])
    params.nthread = threads or os.cpu_count() or 1
    if module.llama_model_quantize(str(source).encode(), str(target).encode(), ctypes.byref(params)) != 0:
        raise GGUFError(f"llama.cpp could not quantize {source.name} to {quant}")
    return target
