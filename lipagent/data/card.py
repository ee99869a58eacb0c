"""The dataset card (README.md) of a prepared mosaic dataset: Hub metadata, the build record that `validate`, training
and `eval` read back (lipagent.records), and the words a person reads. The GRID citation lives here once."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import datasets
from huggingface_hub import DatasetCard, DatasetCardData

from lipagent.config import MosaicConfig
from lipagent.data.recipe import DEFAULT_SPEECH_SPAN, describe_span
from lipagent.data.splits import SPLITS

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
    speech_span: str = DEFAULT_SPEECH_SPAN

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
            "speech_span": summary.speech_span,
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
{describe_span(summary.speech_span)}, tiled {mosaic["rows"]} rows x {mosaic["cols"]} columns in time order
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
  `face_frames`: landmarked frames in which a face was found (every sampled frame unless `landmarked_frames` is
  set; the others borrow their neighbour's crop)

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
`lipagent.mosaic` metadata, the span in `lipagent.speech_span`; models trained on this dataset record them, and read
new clips the same way).
A video was kept when a face was found in at least {mosaic["min_face_ratio"]:.0%} of its sampled frames.

## What was skipped and why
{skipped_table}

## License and citation
The GRID corpus is distributed under CC BY 4.0; so is this derived dataset. Please cite:

```bibtex
{GRID_CITATION}
```
"""
