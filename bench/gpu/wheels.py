"""For a CUDA machine without a package index: gather the wheels it lacks into .whl/, at this checkout's pins, and
print the size of what must travel (the working tree and the wheels), checked against a limit for size-limited
transfers (--max-mib, 64 by default).

    python bench/gpu/wheels.py            (bash bench/gpu/run.sh wheels runs this)
    bash bench/gpu/run.sh offline         (there: installs them, then measures)

A typical CUDA image has torch, accelerate, timm, safetensors, tokenizers, huggingface-hub, pyarrow and pandas, but no
trl, datasets or bitsandbytes, and another transformers. The wheels are for Python 3.12 manylinux x86_64, at the
versions constraints.txt pins here, so the GPU runs the code tested here.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
WHEELS = REPO / ".whl"
LIMIT = 64 * 2**20
"""Default size limit of what travels: the working tree plus the wheels."""
MISSING = ("trl", "datasets", "transformers", "peft", "bitsandbytes")
"""Carried at this checkout's pins (peft and transformers exist there, at other versions)."""
EXTRA = ("dill<0.4.2", "multiprocess<0.70.20")
"""datasets' own needs that such an image lacks."""
PLATFORMS = (
    "manylinux_2_28_x86_64",
    "manylinux_2_27_x86_64",
    "manylinux_2_24_x86_64",
    "manylinux_2_17_x86_64",
    "manylinux2014_x86_64",
    "manylinux1_x86_64",
)
COMMAND = "bash bench/gpu/run.sh offline"


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
    """Bytes of the working tree that travels: tracked files and untracked ones git does not ignore."""
    listed = (
        subprocess.run(
            ["git", "ls-files", "-z", "-co", "--exclude-standard"], cwd=REPO, capture_output=True, check=True
        )
        .stdout.decode()
        .split("\0")
    )
    return sum((REPO / name).stat().st_size for name in listed if name and (REPO / name).is_file())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-mib", type=float, default=LIMIT / 2**20, help="size limit of what travels")
    args = parser.parse_args(argv)
    wheels = download()
    wheel_bytes = sum(w.stat().st_size for w in wheels)
    tree = tree_bytes()
    print("wheels for the GPU machine (Python 3.12, manylinux x86_64), in .whl/:")
    for wheel in wheels:
        print(f"  {wheel.stat().st_size / 2**20:7.1f} MiB  {wheel.name}")
    total = wheel_bytes + tree
    print(
        f"working tree {tree / 2**20:.1f} MiB + wheels {wheel_bytes / 2**20:.1f} MiB = {total / 2**20:.1f} MiB "
        f"(limit {args.max_mib:.0f} MiB)"
    )
    if total > args.max_mib * 2**20:
        print(
            "over the limit: leave bitsandbytes out of .whl/ for a first run (QLoRA is then skipped and noted), and "
            "send it in a second one",
            file=sys.stderr,
        )
        return 1
    print(f"there, with .whl/ beside the checkout: {COMMAND}   (figures: gpu_bench.json, .md and .log in OUT)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
