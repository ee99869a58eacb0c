"""`lipagent baseline train`: fit the baseline lip reader on a prepared mosaic dataset, on a CPU, in minutes.

The dataset (a `lipagent prepare` folder or a Hub id) is decoded once into grey cells held in memory (a few
MB for GRID-sized splits); each epoch shuffles, augments and steps through them. Everything random draws
from `--seed`, so a run repeats exactly on the same machine. The output folder is written beside its final
place and renamed in, so it is either absent, the previous complete model or the new one.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from lipagent.config import MosaicConfig
from lipagent.grammar import SLOT_NAMES, SLOTS
from lipagent.model.baseline import (
    CONFIG_FILE,
    HISTORY_FILE,
    WEIGHTS_FILE,
    BaselineRecord,
    SlotReader,
    labels_of,
    mosaic_cells,
    normalise,
)
from lipagent.model.baseline_config import BaselineArch, BaselineTrainingArgs
from lipagent.outputs import check_output, move_into_place, output_lock, staging_for
from lipagent.records import is_kind, read_dataset_record, resolve
from lipagent.transform.augment import Augmentation, augment_clip
from lipagent.transform.mosaic import mosaic_image


@dataclass
class CellSet:
    """One split decoded for the network: grey cells, slot labels and ids."""

    cells: np.ndarray
    labels: np.ndarray
    video_ids: list[str]
    texts: list[str]
    speakers: list[str]

    def __len__(self) -> int:
        return len(self.video_ids)


def load_cells(
    rows: datasets.Dataset,
    mosaic: MosaicConfig,
    arch: BaselineArch,
    desc: str,
    view: Callable[[Image.Image], Image.Image] | None = None,
) -> CellSet:
    """Decode a split's mosaics into (N, frames, H, W) uint8 cells with their labels; `view` changes each decoded
    mosaic first (a benchmark's question: what is left of the cells after another model's resize, say)."""
    rows = rows.cast_column("image", datasets.Image(decode=False))
    cells = [
        mosaic_cells(view(mosaic_image(image["bytes"])) if view else image["bytes"], mosaic, arch)
        for image in tqdm(rows["image"], desc=f"Decoding {desc}", unit=" mosaics", leave=False)
    ]
    texts = list(rows["text"])
    return CellSet(np.stack(cells), labels_of(texts), list(rows["video_id"]), texts, list(rows["speaker"]))


def load_dataset_cells(
    dataset: str,
    splits: list[str],
    arch: BaselineArch,
    max_samples: int | None = None,
    view: Callable[[Image.Image], Image.Image] | None = None,
) -> tuple[MosaicConfig, dict[str, CellSet]]:
    """The dataset's mosaic settings (from its card) and the asked splits as cells (`max_samples` caps the first;
    `view` as in `load_cells`)."""
    folder = resolve(dataset, "dataset")
    mosaic = read_dataset_record(folder).mosaic
    loaded = datasets.load_dataset(str(folder))
    missing = [s for s in splits if s not in loaded]
    if missing:
        raise ValueError(f"{dataset} has no {', '.join(missing)} split (it has {', '.join(loaded)})")
    result = {}
    for i, split in enumerate(splits):
        rows = loaded[split]
        if i == 0 and max_samples is not None:
            rows = rows.select(range(min(max_samples, len(rows))))
        result[split] = load_cells(rows, mosaic, arch, split, view)
    return mosaic, result


def augment(cells: np.ndarray, rng: np.random.Generator, shift: int, flip: bool, gamma: float) -> np.ndarray:
    """Each clip of a batch changed by `lipagent.transform.augment.augment_clip` (one draw per clip). Per-clip
    normalisation already removes plain gain and offset, so gamma is the only lighting change that teaches anything."""
    augmentation = Augmentation(shift, flip, gamma)
    return np.stack([augment_clip(clip, rng, augmentation) for clip in cells]) if len(cells) else cells.copy()


def slot_accuracy(logits: dict[str, torch.Tensor], labels: torch.Tensor) -> float:
    """Share of slots right. A baseline always writes six valid words, so WER is exactly 1 minus this (every
    error is a substitution)."""
    hits = [(logits[slot].argmax(-1) == labels[:, i]).float().mean() for i, slot in enumerate(SLOT_NAMES)]
    return float(torch.stack(hits).mean())


@torch.inference_mode()
def predict_logits(model: SlotReader, cells: np.ndarray, batch_size: int = 64) -> dict[str, torch.Tensor]:
    model.eval()
    parts = [model(normalise(torch.from_numpy(cells[i : i + batch_size]))) for i in range(0, len(cells), batch_size)]
    return {slot: torch.cat([p[slot] for p in parts]) for slot in SLOT_NAMES}


def fit(
    train: CellSet,
    args: BaselineTrainingArgs,
    mosaic: MosaicConfig,
    evaluation: CellSet | None = None,
    progress: bool = True,
) -> tuple[SlotReader, list[dict[str, Any]]]:
    """Train a fresh network on `train`; returns it and its per-epoch history (loss, training accuracy on the
    augmented batches, and validation WER when `evaluation` is given)."""
    args.check()
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    model = SlotReader(args.arch, mosaic.num_frames, SLOTS)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.learning_rate, weight_decay=args.weight_decay)
    steps_per_epoch = math.ceil(len(train) / args.batch_size)
    total = args.epochs * steps_per_epoch
    warmup = max(1, total // 20)
    # Linear warm-up then cosine decay: the usual schedule for a network trained from scratch in few steps. With a peak
    # of 3e-3 and no clipping, 2 runs in 6 stalled 10 points worse than the others; 1e-3 and clipping at 1 did not.
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min(1.0, (step + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(step, total) / total))
    )
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=args.label_smoothing)
    labels = torch.from_numpy(train.labels)
    history: list[dict[str, Any]] = []
    bar = tqdm(range(args.epochs), desc="Training baseline", unit=" epoch", disable=not progress)
    for epoch in bar:
        model.train()
        order = rng.permutation(len(train))
        losses, accuracies = [], []
        for start in range(0, len(order), args.batch_size):
            index = order[start : start + args.batch_size]
            if len(index) < 2:  # batch norm needs two clips; a lone leftover clip waits for the next epoch
                continue
            batch = torch.from_numpy(augment(train.cells[index], rng, args.shift, args.flip, args.gamma))
            logits = model(normalise(batch))
            loss = sum(loss_fn(logits[slot], labels[index, i]) for i, slot in enumerate(SLOT_NAMES)) / len(SLOT_NAMES)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if args.max_grad_norm > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), args.max_grad_norm)
            optimizer.step()
            schedule.step()
            losses.append(loss.item())
            accuracies.append(slot_accuracy(logits, labels[index]))
        entry: dict[str, Any] = {
            "epoch": epoch + 1,
            "loss": float(np.mean(losses)),
            "train_slot_accuracy": float(np.mean(accuracies)),
        }
        if evaluation is not None and len(evaluation):
            entry["eval_wer"] = 1 - slot_accuracy(
                predict_logits(model, evaluation.cells), torch.from_numpy(evaluation.labels)
            )
        history.append(entry)
        bar.set_postfix({k: f"{v:.3f}" for k, v in entry.items() if k != "epoch"})
    model.eval()
    return model, history


def save_baseline(
    model: SlotReader, record: BaselineRecord, history: list[dict[str, Any]], out: Path, overwrite: bool
) -> Path:
    """model.safetensors, config.json and history.json, staged beside `out` and renamed into place."""
    from safetensors.torch import save_file

    out = Path(out)
    check_output(out, overwrite, is_kind("baseline"), "baseline")
    with staging_for(out) as staging:
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, staging / WEIGHTS_FILE)
        (staging / CONFIG_FILE).write_text(record.to_json())
        (staging / HISTORY_FILE).write_text(json.dumps(history, indent=2))
        return move_into_place(staging, out, overwrite, is_kind("baseline"), "baseline")


def train_baseline(args: BaselineTrainingArgs, progress: bool = True) -> tuple[Path, list[dict[str, Any]]]:
    """Load the dataset, train, save: the whole `lipagent baseline train`."""
    args.check()
    out = Path(args.out)
    check_output(out, args.overwrite, is_kind("baseline"), "baseline")
    with output_lock(out):
        return _train(args, out, progress)


def _train(args: BaselineTrainingArgs, out: Path, progress: bool) -> tuple[Path, list[dict[str, Any]]]:
    started = time.perf_counter()
    splits = [args.train_split] + ([args.eval_split] if args.eval_split else [])
    mosaic, cells = load_dataset_cells(args.dataset, splits, args.arch, args.max_samples)
    span = read_dataset_record(resolve(args.dataset, "dataset")).speech_span
    model, history = fit(cells[args.train_split], args, mosaic, cells.get(args.eval_split or ""), progress)
    training = {key: value for key, value in asdict(args).items() if key not in ("out", "arch", "overwrite")}
    training.update(
        num_train_samples=len(cells[args.train_split]),
        seconds=round(time.perf_counter() - started, 1),
        torch_threads=torch.get_num_threads(),
    )
    record = BaselineRecord(args.arch, mosaic, training, span)
    return save_baseline(model, record, history, out, args.overwrite), history
