"""Here, before a GPU is lent: gather the wheels the GPU machine lacks, check that they and the working tree fit
what the device tool carries, and print the exact device call.

    python bench/gpu/prepare.py            (bench/gpu/run.sh prepare runs this)

The GPU machine has torch, accelerate, timm, safetensors, tokenizers, huggingface-hub, pyarrow and pandas, but no
trl, datasets or bitsandbytes, and an older transformers (its README, KINDS.md). The wheels go to .whl/ (ignored by
git) for Python 3.12 manylinux, at the versions constraints.txt pins here, so the GPU runs the code tested here.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
WHEELS = REPO / ".whl"
LIMIT = 64 * 2**20
"""What one device call carries: the working tree plus the carried paths."""
MISSING = ("trl", "datasets", "transformers", "peft", "bitsandbytes")
"""Carried at this checkout's pins (peft and transformers exist there, at other versions)."""
EXTRA = ("dill<0.4.2", "multiprocess<0.70.20")
"""datasets' own needs that the image lacks."""
PLATFORMS = (
    "manylinux_2_28_x86_64",
    "manylinux_2_27_x86_64",
    "manylinux_2_24_x86_64",
    "manylinux_2_17_x86_64",
    "manylinux2014_x86_64",
    "manylinux1_x86_64",
)
COMMAND = "bash bench/gpu/run.sh device"
TIMEOUT_S = 560


def pins() -> dict[str, str]:
    """name -> version spec from constraints.txt (e.g. 'transformers' -> '==5.24.*')."""
    found = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)\s*([=<>!~].*)$", line.split("#")[0].strip())
        if match:
            found[match[1].lower()] = match[2].strip()
    return found


def download() -> list[Path]:
    """A fresh .whl/ with one wheel per package (two versions of one would stop the install there)."""
    shutil.rmtree(WHEELS, ignore_errors=True)
    WHEELS.mkdir()
    specs = [f"{name}{pins().get(name, '')}" for name in MISSING] + list(EXTRA)
    platforms = [arg for platform in PLATFORMS for arg in ("--platform", platform)]
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "-q",
        "--no-deps",
        "--only-binary=:all:",
        "--python-version",
        "3.12",
        "--implementation",
        "cp",
        *platforms,
        "-d",
        str(WHEELS),
        *specs,
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"prepare: pip could not download {' '.join(specs)}:\n{result.stderr.strip()[-1500:]}")
    return sorted(WHEELS.glob("*.whl"))


def tree_bytes() -> int:
    """Bytes of what travels besides the carried paths: tracked files and untracked ones git does not ignore."""
    listed = (
        subprocess.run(
            ["git", "ls-files", "-z", "-co", "--exclude-standard"], cwd=REPO, capture_output=True, check=True
        )
        .stdout.decode()
        .split("\0")
    )
    return sum((REPO / name).stat().st_size for name in listed if name and (REPO / name).is_file())


def main() -> int:
    wheels = download()
    wheel_bytes = sum(w.stat().st_size for w in wheels)
    tree = tree_bytes()
    print("wheels for the GPU machine (Python 3.12, manylinux x86_64), in .whl/:")
    for wheel in wheels:
        print(f"  {wheel.stat().st_size / 2**20:7.1f} MiB  {wheel.name}")
    total = wheel_bytes + tree
    print(
        f"working tree {tree / 2**20:.1f} MiB + wheels {wheel_bytes / 2**20:.1f} MiB = {total / 2**20:.1f} MiB "
        f"of the {LIMIT / 2**20:.0f} MiB one call carries"
    )
    if total > LIMIT:
        print(
            "too big for one call: remove bitsandbytes from .whl/ for a first call (QLoRA is then skipped and "
            "noted), and run a second call with it alone plus the others",
            file=sys.stderr,
        )
        return 1
    call = {"command": COMMAND, "carry": [".whl"], "timeout_s": TIMEOUT_S}
    print("\nthe device call (its `run` verb, no kind named):")
    print(json.dumps(call))
    print("the figures come back as gpu_bench.json, gpu_bench.md and gpu_bench.log under the reply's files_at")
    return 0


if __name__ == "__main__":
    sys.exit(main())
