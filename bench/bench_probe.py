"""How much of the mouth each stage of a Gemma 3n vision tower passes on: a linear probe per GRID slot.

    python bench/bench_probe.py --dataset DATASET                  # the learning check's small model, from scratch
    python bench/bench_probe.py --dataset DATASET --model google/gemma-3n-E4B-it --device cuda   # the real tower

A reader learns only what its image features hold. For every clip of a `lipagent prepare` dataset this runs the
model's vision tower on the mosaic as the processor hands it over (768x768 for Gemma 3n), average-pools the output of
each stage (the stem, every block stage, and the fusion adapter whose 256 tokens the language model reads) to
--positions x --positions places per mosaic cell, and fits one linear classifier per GRID slot on the train split's
clips (the leading --components principal components of the standardised features, L2-regularised logistic
regression), scored on the test split's clips. The same probe on the processor's pixels is the reference: a stage
that reads worse than the pixels has lost part of the mouth, and no projector or language model trained on top of it
gets that part back. A benchmark, not a test: it prints figures (a smoke run of it is in the tests).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from bench_accuracy import report

from lipagent.grammar import SLOT_NAMES


def cell_pooled(features, rows: int, cols: int, positions: int):
    """(batch, channels, height, width) features of whole mosaics -> (batch, features) averaged over
    `positions` x `positions` places per mosaic cell (the tower sees the mosaic stretched to a square, so each cell is
    an equal share of every feature map)."""
    import torch

    pooled = torch.nn.functional.adaptive_avg_pool2d(features.float(), (rows * positions, cols * positions))
    return pooled.flatten(1)


def linear_probe(
    train_x: np.ndarray,
    train_y: list[str],
    test_x: np.ndarray,
    test_y: list[str],
    components: int = 128,
    l2: float = 1e-2,
    seed: int = 0,
) -> float:
    """Test accuracy of a logistic regression fitted on the train features' leading principal components (each
    feature standardised first, so that a few loud channels do not decide the components); words of the test split
    the train split never had count as misses."""
    import torch

    torch.manual_seed(seed)
    train = torch.as_tensor(train_x, dtype=torch.float64)
    test = torch.as_tensor(test_x, dtype=torch.float64)
    mean, scale = train.mean(0), train.std(0) + 1e-6
    train, test = (train - mean) / scale, (test - mean) / scale
    _, _, basis = torch.pca_lowrank(train, q=max(1, min(components, *train.shape) - 1), center=False)
    train, test = train @ basis, test @ basis
    spread = train.std(0) + 1e-6
    train, test = train / spread, test / spread
    classes = sorted(set(train_y))
    index = {word: i for i, word in enumerate(classes)}
    targets = torch.tensor([index[word] for word in train_y])
    weights = torch.zeros(train.shape[1], len(classes), dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(len(classes), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([weights, bias], max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(train @ weights + bias, targets) + l2 * weights.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    with torch.no_grad():
        predicted = (test @ weights + bias).argmax(1).tolist()
    return float(np.mean([classes[p] == word for p, word in zip(predicted, test_y, strict=True)]))


def stage_modules(tower) -> dict:
    """The named stages of a MobileNetV5 tower (timm's, inside transformers' wrapper): stem, each block stage, the
    multi-scale fusion adapter that makes the language model's image tokens."""
    encoder = getattr(tower, "timm_model", tower)
    stages = {"stem": encoder.conv_stem}
    stages.update({f"stage {i}": block for i, block in enumerate(encoder.blocks)})
    stages["fusion (image tokens)"] = encoder.msfa
    return stages


def tower_features(model, processor, images: list, rows: int, cols: int, positions: int, batch_size: int = 8) -> dict:
    """Cell-pooled pixels (as the processor hands them to the tower) and each stage's output for `images`."""
    import torch

    tower = model.model.vision_tower
    outputs: dict = {}
    hooks = [
        module.register_forward_hook(lambda _m, _i, out, name=name: outputs.__setitem__(name, out))
        for name, module in stage_modules(tower).items()
    ]
    device = next(tower.parameters()).device
    pooled: dict[str, list] = {}
    try:
        for start in range(0, len(images), batch_size):
            batch = [image.convert("RGB") for image in images[start : start + batch_size]]
            pixels = processor.image_processor(batch, return_tensors="pt")["pixel_values"]
            with torch.inference_mode():
                tower(pixel_values=pixels.to(device, next(tower.parameters()).dtype), do_pooling=False)
            pooled.setdefault("pixels", []).append(cell_pooled(pixels.mean(1, keepdim=True), rows, cols, positions))
            for name, out in outputs.items():
                out = out if torch.is_tensor(out) else out[0]
                pooled.setdefault(name, []).append(cell_pooled(out, rows, cols, positions).cpu())
    finally:
        for hook in hooks:
            hook.remove()
    return {name: torch.cat(parts).numpy() for name, parts in pooled.items()}


def small_model(work: Path, seed: int) -> Path:
    """The learning check's small Gemma 3n (bench_learning.py's: llama.cpp widths, zero-mean random filters)."""
    from lipagent.testing.tiny_gemma3n import save_tiny_model

    folder = work / f"small-gemma3n-seed{seed}"
    if not (folder / "config.json").is_file():
        save_tiny_model(folder, seed=seed, llama_cpp_shape=True, zero_mean=True)
    return folder


def run(args: argparse.Namespace) -> dict:
    import datasets
    import torch
    import transformers

    from lipagent.model.loading import load_processor, register_tiny_encoder
    from lipagent.records import read_dataset_record

    mosaic = read_dataset_record(args.dataset).mosaic
    rows = datasets.load_dataset(str(args.dataset))
    for split in (args.train_split, args.test_split):
        if split not in rows:
            raise ValueError(f"--dataset {args.dataset} has no {split} split (it has {', '.join(rows)})")
    model_name = args.model or str(small_model(args.work, args.seed))
    register_tiny_encoder()
    processor = load_processor(model_name, model_name)
    model = transformers.Gemma3nForConditionalGeneration.from_pretrained(model_name, dtype=torch.float32)
    model = model.to(args.device).eval()
    started = time.perf_counter()
    features, words = {}, {}
    for split in (args.train_split, args.test_split):
        clips = rows[split].select(range(min(args.max_clips or len(rows[split]), len(rows[split]))))
        images = clips["image"]
        features[split] = tower_features(model, processor, images, mosaic.rows, mosaic.cols, args.positions)
        words[split] = [text.split() for text in clips["text"]]
        print(f"{split}: {len(images)} mosaics through the tower", flush=True)
    seconds = time.perf_counter() - started
    train, test = features[args.train_split], features[args.test_split]
    table: dict = {"majority": {}}
    for slot, name in enumerate(SLOT_NAMES):
        seen = [sentence[slot] for sentence in words[args.train_split]]
        common = max(sorted(set(seen)), key=seen.count)
        table["majority"][name] = float(np.mean([s[slot] == common for s in words[args.test_split]]))
    for stage in train:
        table[stage] = {
            name: linear_probe(
                train[stage],
                [s[slot] for s in words[args.train_split]],
                test[stage],
                [s[slot] for s in words[args.test_split]],
                args.components,
                args.l2,
                args.seed,
            )
            for slot, name in enumerate(SLOT_NAMES)
        }
    return {
        "model": model_name,
        "dataset": str(args.dataset),
        "grid": f"{mosaic.rows}x{mosaic.cols}",
        "clips": {split: len(words[split]) for split in words},
        "positions": args.positions,
        "components": args.components,
        "feature_sizes": {stage: int(train[stage].shape[1]) for stage in train},
        "tower_seconds": seconds,
        "accuracy": table,
    }


def markdown(table: dict) -> str:
    lines = [
        "| features | " + " | ".join(SLOT_NAMES) + " | mean |",
        "| --- " + "| ---: " * (len(SLOT_NAMES) + 1) + "|",
    ]
    for stage, accuracy in table["accuracy"].items():
        label = "most common word of the train split" if stage == "majority" else stage
        values = [accuracy[name] for name in SLOT_NAMES]
        lines.append(f"| {label} | " + " | ".join(f"{v:.0%}" for v in values) + f" | {np.mean(values):.0%} |")
    clips = table["clips"]
    lines += [
        "",
        f"Share of test clips whose word a linear probe gets right; {table['model']} on {table['dataset']} "
        f"({table['grid']} mosaics; {', '.join(f'{n} {split}' for split, n in clips.items())} clips); each feature "
        f"map pooled to {table['positions']}x{table['positions']} places per cell, {table['components']} principal "
        f"components; the tower ran {table['tower_seconds']:.0f} s.",
    ]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", type=Path, required=True, help="a `lipagent prepare` folder")
    parser.add_argument(
        "--model", help="a Gemma 3n folder or Hub id (default: the learning check's small model, built in --work)"
    )
    parser.add_argument("--train-split", default="train", help="the clips the probes learn from (default: train)")
    parser.add_argument("--test-split", default="test", help="the clips they are scored on (default: test)")
    parser.add_argument("--max-clips", type=int, help="only the first N clips of each split (smoke runs)")
    parser.add_argument("--positions", type=int, default=4, help="places per cell side each map is pooled to (4)")
    parser.add_argument("--components", type=int, default=128, help="principal components per probe (128)")
    parser.add_argument("--l2", type=float, default=1e-2, help="the probes' L2 penalty (1e-2)")
    parser.add_argument("--device", default="cpu", help="where the tower runs (default: cpu)")
    parser.add_argument("--seed", type=int, default=0, help="the small model's weights and the probes' PCA")
    parser.add_argument("--work", type=Path, default=Path("bench-probe"), help="where the small model is written")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args(argv)
    if args.positions < 1 or args.components < 1:
        parser.error("--positions and --components must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    return report("bench_probe", run, markdown, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
