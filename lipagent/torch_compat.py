"""Make torchvision importable next to a torch whose ABI its compiled ops do not match.

On the CPU machine, PyPI's torchvision for torch 2.13 is a CUDA build: its `_C` library fails to load, and
`import torchvision` then dies in `_meta_registrations` ("operator torchvision::nms does not exist"). timm,
and through it transformers' Gemma 3n, peft and trl, import torchvision, so nothing trains. Declaring the
two operator schemas that torchvision registers fake kernels for lets its pure-Python parts import; the
compiled ops themselves (nms, roi_align, ...) stay unavailable, which nothing here uses.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import logging
import os

import torch

# bitsandbytes warns at import, on every CPU run, that an optional kernels package is missing; its 4-bit
# path is never used on a CPU here, so that one logger is raised to errors before anything imports it.
logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)

_SCHEMAS = {
    "torchvision::nms": "(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "torchvision::qnms": "(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
}


def _compiled_ops_path() -> str | None:
    """Where torchvision's `_C` library lies, found without importing torchvision (None if absent)."""
    spec = importlib.util.find_spec("torchvision")
    if spec is None or spec.origin is None:
        return None
    loader = (importlib.machinery.ExtensionFileLoader, importlib.machinery.EXTENSION_SUFFIXES)
    lib_spec = importlib.machinery.FileFinder(os.path.dirname(spec.origin), loader).find_spec("_C")
    return None if lib_spec is None else lib_spec.origin


def _compiled_ops_load() -> bool:
    """Load `_C` the way torchvision does; loading it twice is a no-op, so a working install is unchanged."""
    path = _compiled_ops_path()
    if path is None:
        return False
    try:
        torch.ops.load_library(path)
    except (ImportError, OSError):
        return False
    return True


def _operator_exists(qualname: str) -> bool:
    namespace, name = qualname.split("::")
    return hasattr(getattr(torch.ops, namespace), name)


def ensure_torchvision_importable() -> None:
    """Declare `torchvision::nms`/`qnms` if torchvision's compiled ops cannot load; call before importing it.

    Idempotent. Defines nothing when torchvision is absent or its `_C` loads (a GPU box); must run before the
    first `import torchvision`, which fails for good once it has failed.
    """
    if importlib.util.find_spec("torchvision") is None or _compiled_ops_load():
        return
    for qualname, schema in _SCHEMAS.items():
        if not _operator_exists(qualname):
            torch.library.define(qualname, schema)
