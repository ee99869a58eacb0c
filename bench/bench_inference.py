"""Inference speed: end-to-end latency per clip (video in, text out) and batched evaluation throughput.

    python bench/bench_inference.py                       # tiny random Gemma 3n + LoRA, on this machine
    python bench/bench_inference.py --model out/gemma3n-lipreader/final-adapter [--load-in-4bit]

Clips are real GRID s1 videos from ../shared/grid. Latency is split into the mosaic (decode, Face Mesh, crops,
JPEG) and generation; throughput is mosaics per second through `LipReader.transcribe_mosaics` per batch size.
"""

from __future__ import annotations

import argparse
import io
import statistics
import tempfile
import time
import zipfile
from pathlib import Path

from lipagent.torch_compat import ensure_torchvision_importable

ensure_torchvision_importable()

import torch  # noqa: E402
from PIL import Image  # noqa: E402

from lipagent.readers.gemma import LipReader  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def tiny_adapter(root: Path) -> Path:
    """A tiny random Gemma 3n with a LoRA adapter, as train/sft.py would leave it."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForImageTextToText

    import lipagent.testing.tiny_gemma3n as tiny
    from lipagent.model.training import LORA_TARGET_MODULES

    tiny.save_tiny_model(root / "base", seed=0)
    model = AutoModelForImageTextToText.from_pretrained(root / "base")
    get_peft_model(model, LoraConfig(r=16, lora_alpha=32, target_modules=LORA_TARGET_MODULES)).save_pretrained(
        root / "adapter"
    )
    tiny.build_processor().save_pretrained(root / "adapter")
    return root / "adapter"


def clips(grid_dir: Path, count: int, root: Path) -> list[Path]:
    with zipfile.ZipFile(grid_dir / "s1.zip") as archive:
        names = sorted(n for n in archive.namelist() if n.endswith(".mpg"))[:count]
        for name in names:
            archive.extract(name, root)
    return [root / name for name in names]


def _timed(function, *args) -> float:
    start = time.perf_counter()
    function(*args)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="adapter folder or Hub id (default: a tiny random one)")
    parser.add_argument("--grid-dir", type=Path, default=REPO.parent / "shared" / "grid")
    parser.add_argument("--clips", type=int, default=8, help="clips for the latency figure")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per batch size (the best is kept)")
    parser.add_argument("--decoding", choices=("constrained", "free"), default="constrained")
    parser.add_argument("--load-in-4bit", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        adapter = args.model or str(tiny_adapter(Path(tmp)))
        reader = LipReader.from_pretrained(adapter, load_in_4bit=args.load_in_4bit, decoding=args.decoding)
        print(f"{adapter}: {reader.plan.reason}, {args.decoding} decoding, torch threads {torch.get_num_threads()}")
        videos = clips(args.grid_dir, max(args.clips, max(args.batch_sizes)), Path(tmp) / "clips")
        reader.transcribe_video(videos[0])
        mosaic_s, generate_s, mosaics = [], [], []
        for video in videos[: args.clips]:
            start = time.perf_counter()
            jpeg = reader.mosaic_for_video(video)
            middle = time.perf_counter()
            reader.transcribe_mosaic(jpeg)
            mosaic_s.append(middle - start)
            generate_s.append(time.perf_counter() - middle)
        mosaics = [Image.open(io.BytesIO(reader.mosaic_for_video(v))) for v in videos]
        total = [m + g for m, g in zip(mosaic_s, generate_s)]
        print(
            f"latency per clip, video in -> text out ({len(total)} clips, median): "
            f"{statistics.median(total) * 1000:.0f} ms "
            f"(mosaic {statistics.median(mosaic_s) * 1000:.0f} ms, "
            f"generation {statistics.median(generate_s) * 1000:.0f} ms)"
        )
        for size in args.batch_sizes:
            batch = mosaics[:size]
            reader.transcribe_mosaics(batch)
            seconds = min(_timed(reader.transcribe_mosaics, batch) for _ in range(args.repeats))
            print(f"batched generation, batch {size:>2}: {size / seconds:6.1f} mosaics/s (best of {args.repeats})")


if __name__ == "__main__":
    main()
