"""The model card of a published LoRA adapter (`lipagent push adapter`): base model, dataset, training recipe, the
evaluation's figures beside the baseline's, and how to read with it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from lipagent.config import MosaicConfig
from lipagent.data.card import GRID_CITATION
from lipagent.grammar import SLOT_NAMES
from lipagent.records import hub_id_shaped, read_record


def training_recipe(adapter: Path) -> dict[str, Any]:
    """What the card says about training: LoRA settings and, when the run left it, the trainer's state."""
    config = json.loads((adapter / "adapter_config.json").read_text())
    recipe = {key: config.get(key) for key in ("r", "lora_alpha", "lora_dropout", "target_modules")}
    state_file = adapter.parent / "trainer_state.json"
    if state_file.is_file():
        state = json.loads(state_file.read_text())
        losses = [entry["loss"] for entry in state.get("log_history", []) if "loss" in entry]
        recipe.update(
            epochs=state.get("num_train_epochs"),
            steps=state.get("global_step"),
            per_device_batch_size=state.get("train_batch_size"),
            final_train_loss=losses[-1] if losses else None,
        )
    return recipe


def adapter_card(adapter: Path, repo_id: str, metrics: dict | None, dataset: str | None) -> ModelCard:
    """A model card with the base model, dataset, recipe, usage, and the metrics in its metadata."""
    config = json.loads((adapter / "adapter_config.json").read_text())
    base = config.get("base_model_name_or_path")
    recipe = training_recipe(adapter)
    dataset_id = dataset or (metrics or {}).get("dataset")
    results = []
    if metrics:
        named = {
            "wer": "WER",
            "cer": "CER",
            "sentence_accuracy": "Sentence accuracy",
            "valid_sentence_rate": "Valid GRID sentences",
        }
        results = [
            EvalResult(
                task_type="image-to-text",
                task_name="Lip reading",
                dataset_type=str(dataset_id or "grid"),
                dataset_name="GRID mouth mosaics",
                dataset_split=metrics.get("split"),
                metric_type=key,
                metric_name=name,
                metric_value=float(metrics[key]),
            )
            for key, name in named.items()
            if key in metrics
        ]
    data = ModelCardData(
        base_model=base if is_hub_id(base) else None,
        library_name="peft",
        pipeline_tag="image-text-to-text",
        license="gemma",
        datasets=[dataset_id] if is_hub_id(dataset_id) else None,
        tags=["lip-reading", "visual-speech-recognition", "gemma3n", "lora", "lipagent"],
        model_name=repo_id.split("/")[-1],
        eval_results=results or None,
    )
    mosaic = read_record(adapter).mosaic
    return ModelCard(f"---\n{data.to_yaml()}\n---\n{_adapter_body(repo_id, base, recipe, metrics, dataset_id, mosaic)}")


def is_hub_id(name: str | None) -> bool:
    """An owner/name Hub id rather than a local path (a card links only the former)."""
    return bool(name) and hub_id_shaped(name) and not Path(str(name)).expanduser().exists()


def _link(name: str | None, kind: str = "") -> str:
    """Markdown for a model or dataset: a Hub link for a Hub id, the bare name for a local path."""
    if not name:
        return "GRID mouth mosaics"
    return f"[`{name}`](https://huggingface.co/{kind}{name})" if is_hub_id(name) else f"`{name}` (a local copy)"


def _cell(value: Any) -> str:
    """A Markdown table cell: `|` (as in a LoRA target regex) would end the cell."""
    return str(value).replace("|", "\\|")


def baseline_gap(metrics: dict) -> str:
    """How a model's WER relates to the baseline's in `metrics` (as run_eval.py --baseline writes it)."""
    gap = metrics["baseline"]["wer"] - metrics["wer"]
    return (
        f"beats it by {gap * 100:.1f} WER points"
        if gap > 0
        else f"trails it by {-gap * 100:.1f} WER points"
        if gap < 0
        else "only ties it"
    )


def baseline_comparison(metrics: dict) -> str:
    """The card's line on the yardstick: the baseline lip reader's WER on the same clips, and what it means."""
    base = metrics["baseline"]["wer"]
    relation = baseline_gap(metrics)
    return (
        f"**Against the baseline:** LipAgent's baseline lip reader (a ~1 MB CNN + GRU trained from scratch on the "
        f"same mosaics, `lipagent baseline train`) reads these clips at WER {base:.2%}; this adapter {relation}. "
        "A fine-tuned Gemma should beat it clearly: if it does not, the gain is not coming from the large model."
    )


def _adapter_body(
    repo_id: str, base: str, recipe: dict, metrics: dict | None, dataset: str | None, mosaic: MosaicConfig
) -> str:
    recipe_rows = "\n".join(f"| {k} | {_cell(v)} |" for k, v in recipe.items() if v is not None)
    if metrics:
        slots = " | ".join(f"{metrics['slot_accuracy'][s]:.1%}" for s in SLOT_NAMES)
        scores = (
            f"On `{dataset}` [{metrics.get('split')}], {metrics.get('num_samples')} clips, "
            f"{metrics.get('decoding', 'constrained')} decoding: WER {metrics['wer']:.2%}, CER {metrics['cer']:.2%}, "
            f"sentence accuracy {metrics['sentence_accuracy']:.2%}, "
            f"valid sentences {metrics['valid_sentence_rate']:.1%}.\n\n"
            f"| {' | '.join(SLOT_NAMES)} |\n|{'---|' * len(SLOT_NAMES)}\n| {slots} |"
        )
        if "baseline" in metrics:
            scores += "\n\n" + baseline_comparison(metrics)
    else:
        scores = "Not evaluated yet."
    cell_size = f"{mosaic.cell_width}x{mosaic.cell_height}"
    return f"""
# {repo_id.split("/")[-1]}

A LoRA adapter for {_link(base)} that reads lips: given a mosaic of {mosaic.num_frames} mouth crops
from a GRID-style video, it writes the six-word sentence spoken. Trained with LipAgent on
{_link(dataset, "datasets/")}.

## Use

```bash
lipagent transcribe clip.mp4 --model {repo_id}              # add --load-in-4bit on a small CUDA GPU
```

```python
import lipagent

reader = lipagent.load_reader("{repo_id}")                  # picks CUDA, MPS or CPU and a dtype that works there
print(reader.transcribe_video("clip.mp4"))                  # or transcribe_frames(frames), transcribe_mosaic(image)
```

Inputs go through exactly the preprocessing used for training, recorded in `lipagent.json` ({mosaic.describe()};
{mosaic.num_frames} frames over the spoken part of the clip, a {mosaic.rows}x{mosaic.cols} mosaic of {cell_size}
cells; the same prompt); decoding is constrained to valid GRID sentences by default.

## Evaluation
{scores}

## Training recipe
| setting | value |
|---|---|
{recipe_rows}

## License and citation
The adapter follows the base model's license (Gemma). The GRID corpus it was trained on is CC BY 4.0; cite it as:

```bibtex
{GRID_CITATION}
```
"""
