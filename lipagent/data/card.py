"""The cards: the dataset card (README.md) of a prepared mosaic dataset (metadata a Hub repo and `validate` read)
and the model card of a published adapter. The GRID citation and the mosaic numbers live here once, the numbers
taken from the `MosaicConfig` a dataset or adapter recorded."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets
from huggingface_hub import DatasetCard, DatasetCardData, EvalResult, ModelCard, ModelCardData

from lipagent.config import MosaicConfig
from lipagent.data.splits import SPLITS
from lipagent.grammar import SLOT_NAMES
from lipagent.model.reading import adapter_mosaic_config, hub_id_shaped

GRID_CITATION = """@article{cooke2006grid,
  author  = {Cooke, Martin and Barker, Jon and Cunningham, Stuart and Shao, Xu},
  title   = {An audio-visual corpus for speech perception and automatic speech recognition},
  journal = {The Journal of the Acoustical Society of America},
  volume  = {120},
  number  = {5},
  pages   = {2421--2424},
  year    = {2006},
  doi     = {10.1121/1.2229005}
}"""


@dataclass
class BuildSummary:
    """What a `prepare` run made, from what, and what it had to leave out."""

    speakers: list[str]
    source: str
    split_scheme: str
    limit: int | None
    mosaic: dict
    split_sizes: dict[str, int]
    skipped: list[dict] = field(default_factory=list)
    split_bytes: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    num_proc: int = 1
    clips: int = 0
    """Source clips looked at; a `speech_span: both` build makes two training rows of one (0: kept + skipped)."""

    @property
    def present_splits(self) -> list[str]:
        """Splits with rows: datasets cannot load an empty one, so the others are left out of the folder."""
        return [split for split in SPLITS if self.split_sizes.get(split, 0) > 0]

    @property
    def kept(self) -> int:
        return sum(self.split_sizes.values())

    def skipped_counts(self) -> dict[str, int]:
        return dict(sorted(Counter(row["skip_reason"] for row in self.skipped).items()))

    def text(self) -> str:
        """The summary printed at the end of `prepare`."""
        sizes = ", ".join(f"{split} {self.split_sizes.get(split, 0)}" for split in SPLITS)
        lines = [
            f"{self.kept} mosaics ({sizes}) from {self.clips or self.kept + len(self.skipped)} clips of "
            f"{', '.join(self.speakers)} in {self.seconds:.1f} s with {self.num_proc} process(es)",
        ]
        counts = self.skipped_counts()
        empty = [split for split in SPLITS if split not in self.present_splits]
        if empty:
            lines.append(f"no rows in {', '.join(empty)}: left out of the folder (scheme {self.split_scheme!r})")
        lines.append(f"skipped {len(self.skipped)}" + (":" if counts else ""))
        width = max((len(reason) for reason in counts), default=0)
        lines += [f"  {reason:<{width}}  {count}" for reason, count in counts.items()]
        return "\n".join(lines)


def _size_category(n: int) -> str:
    return "n<1K" if n < 1000 else "1K<n<10K" if n < 10_000 else "10K<n<100K"


def render_card(summary: BuildSummary, features: datasets.Features, name: str) -> DatasetCard:
    """A dataset card with Hub metadata (license, configs, features, split sizes) and the build record."""
    data = DatasetCardData(
        license="cc-by-4.0",
        language=["en"],
        pretty_name="GRID mouth mosaics",
        task_categories=["image-to-text"],
        tags=["lip-reading", "visual-speech-recognition", "grid-corpus"],
        size_categories=[_size_category(summary.kept)],
        configs=[
            {
                "config_name": "default",
                "data_files": [{"split": split, "path": f"data/{split}-*"} for split in summary.present_splits],
            }
        ],
        lipagent={
            "speakers": summary.speakers,
            "source": summary.source,
            "split_scheme": summary.split_scheme,
            "limit": summary.limit,
            "mosaic": summary.mosaic,
            "split_sizes": summary.split_sizes,
            "skipped": summary.skipped_counts(),
        },
    )
    info = datasets.DatasetInfo(
        features=features,
        splits=datasets.SplitDict(
            {
                s: datasets.SplitInfo(
                    name=s, num_examples=summary.split_sizes[s], num_bytes=summary.split_bytes.get(s, 0)
                )
                for s in summary.present_splits
            }
        ),
    )
    datasets.info.DatasetInfosDict({"default": info}).to_dataset_card_data(data)
    return DatasetCard(f"---\n{data.to_yaml()}\n---\n{_body(summary, name)}")


def _body(summary: BuildSummary, name: str) -> str:
    mosaic = summary.mosaic
    split_rows = "\n".join(f"| {s} | {summary.split_sizes.get(s, 0)} |" for s in SPLITS)
    counts = summary.skipped_counts()
    skipped_rows = "\n".join(
        f"| {reason} | {count} | "
        f"{', '.join(sorted(r['video_id'] for r in summary.skipped if r['skip_reason'] == reason)[:10])}"
        f"{' ...' if count > 10 else ''} |"
        for reason, count in counts.items()
    )
    skipped_table = (
        f"| reason | videos | ids (first 10) |\n|---|---|---|\n{skipped_rows}\n\nEvery skipped clip, with details, "
        "is listed in `skipped.jsonl`."
        if counts
        else "Nothing was skipped."
    )
    crops = mosaic["rows"] * mosaic["cols"]
    image_size = f"{mosaic['cols'] * mosaic['cell_width']}x{mosaic['rows'] * mosaic['cell_height']}"
    scheme = (
        "80/10/10 of every speaker's videos"
        if summary.split_scheme == "overlapped"
        else "speakers s1, s2, s20, s22 held out whole as test (LipNet protocol), the others 90/10 train/validation"
    )
    limit = f", first {summary.limit} videos by id" if summary.limit else ""
    return f"""
# GRID mouth mosaics

Mouth-region mosaics of the [GRID audio-visual corpus](https://doi.org/10.5281/zenodo.3625687), made by
LipAgent for fine-tuning vision-language models to read lips. Each row is one
three-second GRID video: `image` holds {crops} mouth crops taken evenly over
{MosaicConfig.from_dict(mosaic).describe_span()}, tiled {mosaic["rows"]} rows x {mosaic["cols"]} columns in time order
({image_size} RGB JPEG), and `text` is the six-word transcription.

```python
from datasets import load_dataset
ds = load_dataset("{name}")
```

## Columns
- `image`: the mosaic ({mosaic["cell_width"]}x{mosaic["cell_height"]} cells, JPEG quality {mosaic["jpeg_quality"]})
- `text`: the transcription, lowercase, single spaces (command color preposition letter digit adverb)
- `speaker`, `video_id`: GRID speaker (`s1`) and video id (`bbaf2n`)
- `frame_indices`: the video frames in the mosaic; `num_frames`: frames in the video;
  `face_frames`: sampled frames in which Face Mesh found a face (the others borrow their neighbour's crop)

## Splits
Scheme `{summary.split_scheme}`: {scheme}.
A video's split depends only on its id, so adding speakers never moves a video between splits.

| split | mosaics |
|---|---|
{split_rows}

## How it was made
Speakers {", ".join(summary.speakers)} from `{summary.source}`{limit}.
Videos were decoded sequentially with OpenCV; MediaPipe Face Mesh found the 40 lip landmarks on each sampled frame.
Mosaic settings: {MosaicConfig.from_dict(mosaic).describe()} (all of them are in this card's
`lipagent.transform.mosaic` metadata; models trained on this dataset record them, and read new clips the same way).
A video was kept when a face was found in at least {mosaic["min_face_ratio"]:.0%} of its sampled frames.

## What was skipped and why
{skipped_table}

## License and citation
The GRID corpus is distributed under CC BY 4.0; so is this derived dataset. Please cite:

```bibtex
{GRID_CITATION}
```
"""


def is_lipagent_dataset(folder: Path) -> bool:
    """Whether a folder holds a dataset `lipagent prepare` wrote (its card has `lipagent` metadata): the only kind
    of folder `prepare --overwrite` may replace."""
    card = Path(folder) / "README.md"
    try:
        return card.is_file() and bool(DatasetCard.load(card).data.to_dict().get("lipagent"))
    except (ValueError, OSError):
        return False


def dataset_mosaic_config(folder: str | Path) -> MosaicConfig:
    """The mosaic settings a prepared dataset folder was built with, from its card's `lipagent` metadata."""
    card = Path(folder) / "README.md"
    if not card.is_file():
        raise ValueError(
            f"{folder} has no README.md dataset card, so its mosaic settings are unknown; "
            "use a dataset written by `lipagent prepare`"
        )
    meta = DatasetCard.load(card).data.to_dict().get("lipagent") or {}
    if "mosaic" not in meta:
        raise ValueError(
            f"the dataset card in {folder} has no `lipagent.transform.mosaic` settings (was it written by "
            "`lipagent prepare`?)"
        )
    return MosaicConfig.from_dict(meta["mosaic"])


# The model card of a LoRA adapter (push_to_hub.py / lipagent push)


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
    mosaic = adapter_mosaic_config(adapter)
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
lipagent transcribe clip.mp4 --adapter {repo_id}            # add --load_in_4bit on a small CUDA GPU
```

```python
from lipagent.model.reader import LipReader

reader = LipReader.from_pretrained("{repo_id}")             # picks CUDA, MPS or CPU and a dtype that works there
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
