"""`lipagent validate`: check a prepared folder the way a training run will read it."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image
from tqdm.auto import tqdm

from lipagent.config import MosaicConfig
from lipagent.data.recipe import spans_of_split
from lipagent.data.splits import SPLITS, assign_split
from lipagent.grammar import is_valid_sentence, normalize
from lipagent.records import DATASET_CARD, Record, read_record, record_kind

REQUIRED_COLUMNS = ("image", "text", "speaker", "video_id")
SHARD_NAME = re.compile(r"^(?P<split>[a-z]+)-(?P<index>\d{5})-of-(?P<count>\d{5})\.parquet$")


@dataclass
class ValidationReport:
    split_sizes: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, problem: str, examples: list[str] | None = None) -> None:
        shown = f" (e.g. {', '.join(examples[:5])})" if examples else ""
        self.problems.append(problem + shown)

    def text(self) -> str:
        sizes = ", ".join(f"{s} {n}" for s, n in self.split_sizes.items())
        if self.ok:
            return f"OK: {sum(self.split_sizes.values())} mosaics ({sizes})"
        return "\n".join([f"FAILED: {len(self.problems)} problem(s) ({sizes})"] + [f"  - {p}" for p in self.problems])


def _check_shards(folder: Path, report: ValidationReport) -> None:
    shards = sorted((folder / "data").glob("*.parquet"))
    if not shards:
        report.add(f"no Parquet shards under {folder / 'data'}")
    groups: dict[str, list[re.Match]] = {}
    for shard in shards:
        match = SHARD_NAME.match(shard.name)
        if match is None or match["split"] not in SPLITS:
            report.add(f"unexpected file data/{shard.name} (want data/<split>-NNNNN-of-NNNNN.parquet)")
            continue
        try:  # the footer: a truncated or foreign file fails here, named, instead of deep inside datasets
            pq.ParquetFile(shard)
        except (pa.ArrowException, OSError) as error:
            report.add(f"data/{shard.name} is not a readable Parquet file ({error}); rebuild with `lipagent prepare`")
            continue
        groups.setdefault(match["split"], []).append(match)
    for split, matches in groups.items():
        count = int(matches[0]["count"])
        if sorted(int(m["index"]) for m in matches) != list(range(count)) or any(
            int(m["count"]) != count for m in matches
        ):
            report.add(f"split {split}: shards are incomplete or inconsistent ({', '.join(m.string for m in matches)})")


def validate_folder(folder: str | Path) -> ValidationReport:
    """Every problem found in a folder written by `lipagent prepare`; an empty list means it is sound."""
    folder = Path(folder)
    report = ValidationReport()
    if not folder.is_dir():
        report.add(f"{folder}: no such folder")
        return report
    if not (folder / DATASET_CARD).is_file():
        report.add(f"{folder} has no README.md dataset card")
        return report
    if record_kind(folder) != "dataset":
        report.add("the dataset card has no `lipagent` metadata (was it written by `lipagent prepare`?)")
    record = read_record(folder) if record_kind(folder) == "dataset" else Record("dataset", MosaicConfig.from_dict({}))
    meta = record.values
    scheme = meta.get("split_scheme", "overlapped")
    _check_shards(folder, report)
    if not report.ok:
        return report
    # Split sizes are compared below with a clearer message than datasets' own check would raise.
    dataset = datasets.load_dataset(str(folder), verification_mode="no_checks")
    sizes = meta.get("split_sizes") or {}
    missing_splits = [s for s in SPLITS if s not in dataset and sizes.get(s, 1) > 0]
    if missing_splits:
        report.add(f"missing split(s): {', '.join(missing_splits)}")
    seen: dict[str, str] = {}
    for split in [s for s in SPLITS if s in dataset]:
        _check_split(split, dataset[split], record, scheme, seen, report)
        expected = sizes.get(split)
        if expected is not None and expected != len(dataset[split]):
            report.add(f"split {split}: {len(dataset[split])} rows, the card says {expected}")
    return report


def _check_split(
    split: str,
    dataset: datasets.Dataset,
    record: Record,
    scheme: str,
    seen: dict[str, str],
    report: ValidationReport,
) -> None:
    report.split_sizes[split] = len(dataset)
    missing = [c for c in REQUIRED_COLUMNS if c not in dataset.column_names]
    if missing:
        report.add(f"split {split}: missing column(s) {', '.join(missing)}")
        return
    if not isinstance(dataset.features["image"], datasets.Image):
        report.add(f"split {split}: `image` is {dataset.features['image']!r}, not an Image feature")
        return
    rows = dataset.cast_column("image", datasets.Image(decode=False))
    bad_text, bad_image, moved, repeated = [], [], [], []
    copies: dict[str, int] = {}
    config, allowed = record.mosaic, len(spans_of_split(record.speech_span, split))
    for row in tqdm(rows, desc=f"Checking {split}", unit=" mosaics", leave=False, disable=None):
        vid = row["video_id"]
        if not is_valid_sentence(row["text"]) or normalize(row["text"]) != row["text"]:
            bad_text.append(f"{vid}: {row['text']!r}")
        image = Image.open(io.BytesIO(row["image"]["bytes"]))
        if image.size != (config.width, config.height) or image.mode != "RGB" or image.format != "JPEG":
            bad_image.append(f"{vid}: {image.format} {image.mode} {image.size[0]}x{image.size[1]}")
        copies[vid] = copies.get(vid, 0) + 1
        if vid in seen and seen[vid] != split:
            repeated.append(f"{vid} in {seen[vid]} and {split}")
        elif copies[vid] == allowed + 1:  # `speech_span: both` holds a training clip once per span
            repeated.append(f"{vid} {copies[vid]} times in {split}")
        seen[vid] = split
        if assign_split(vid, row["speaker"], scheme) != split:
            moved.append(vid)
    checks = [
        (bad_text, "texts are not lowercase GRID sentences"),
        (bad_image, f"images are not {config.width}x{config.height} RGB JPEG"),
        (repeated, "video ids appear more than once"),
        (moved, f"videos are in a different split than the {scheme!r} scheme assigns"),
    ]
    for found, what in checks:
        if found:
            report.add(f"split {split}: {len(found)} {what}", found)
