"""report.png: per-slot accuracy and the letter and digit confusions, to see at a glance what goes wrong."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from lipagent.grammar import SLOT_NAMES, SLOTS

Confusions = Callable[[Sequence[str], Sequence[str], str], dict[tuple[str, str], int]]


def confusion_matrix(pairs: dict[tuple[str, str], int], words: Sequence[str], missing: str) -> np.ndarray:
    """Rows: reference word; columns: predicted word, plus a last column for anything else."""
    index = {w: i for i, w in enumerate(words)}
    matrix = np.zeros((len(words), len(words) + 1), dtype=int)
    for (reference, predicted), count in pairs.items():
        matrix[index[reference], index.get(predicted, len(words))] += count
    return matrix


def draw_report(
    metrics: dict,
    predictions: Sequence[str],
    references: Sequence[str],
    confusions: Confusions,
    missing: str,
    out: Path,
    title: str,
) -> Path:
    figure, axes = plt.subplots(1, 3, figsize=(20, 6.5), gridspec_kw={"width_ratios": [1, 2.2, 1.2]})
    accuracy = [metrics["slot_accuracy"][s] for s in SLOT_NAMES]
    bars = axes[0].bar(SLOT_NAMES, accuracy, color="#4c72b0")
    axes[0].bar_label(bars, labels=[f"{a:.0%}" for a in accuracy])
    axes[0].set_ylim(0, 1.05)
    axes[0].set_title(
        f"Per-slot accuracy\nWER {metrics['wer']:.1%}, sentences {metrics['sentence_accuracy']:.1%}, "
        f"valid {metrics['valid_sentence_rate']:.0%}"
    )
    axes[0].tick_params(axis="x", rotation=30)
    for axis, slot in zip(axes[1:], ("letter", "digit")):
        words = list(SLOTS[slot])
        matrix = confusion_matrix(confusions(predictions, references, slot), words, missing)
        rates = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
        axis.imshow(rates, cmap="Blues", vmin=0, vmax=1, aspect="auto")
        axis.set_xticks(range(len(words) + 1), words + ["other"], rotation=90 if slot == "digit" else 0)
        axis.set_yticks(range(len(words)), words)
        axis.set_xlabel("predicted")
        axis.set_ylabel("reference")
        axis.set_title(f"{slot} confusions (row-normalised)")
        for r, c in zip(*np.nonzero(matrix)):
            axis.text(
                c,
                r,
                str(matrix[r, c]),
                ha="center",
                va="center",
                fontsize=7,
                color="white" if rates[r, c] > 0.5 else "black",
            )
    figure.suptitle(title)
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=100)
    plt.close(figure)
    return out
