"""`lipagent prepare`: GRID sources -> mosaics (parallel `Dataset.map`) -> a Hub-style Parquet folder.

Work is cached at every stage (downloads, unpacked zips, the builder's rows, each chunk of mosaics),
so an interrupted run resumes where it stopped. The output folder appears only when complete.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import cv2
import datasets
import multiprocess

from lipagent.config import DEFAULT_CONFIG, MosaicConfig, ZenodoRecord
from lipagent.data.builder import SOURCE_FEATURES, GridMosaics
from lipagent.data.card import BuildSummary, render_card
from lipagent.data.grid_files import source_fingerprint
from lipagent.data.recipe import DEFAULT_SPEECH_SPAN, check_speech_span, spans_of_split
from lipagent.data.splits import SPLITS
from lipagent.interrupt import ignore_in_workers
from lipagent.outputs import check_output, move_into_place, output_lock, staging_for
from lipagent.records import is_kind
from lipagent.transform.mouth import landmarker_created_here
from lipagent.transform.pipeline import ClipRejected, prepare_video, video_to_mosaic
from lipagent.transform.skips import SkipReason
from lipagent.transform.speech import NoSpeechFound

MOSAIC_FEATURES = datasets.Features(
    {
        **SOURCE_FEATURES,
        "image": datasets.Image(),
        "frame_indices": datasets.Sequence(datasets.Value("int32")),
        "face_frames": datasets.Value("int32"),
        "num_frames": datasets.Value("int32"),
    }
)
OUTPUT_COLUMNS = ("image", "text", "speaker", "video_id", "frame_indices", "face_frames", "num_frames")
OUTPUT_FEATURES = datasets.Features({name: MOSAIC_FEATURES[name] for name in OUTPUT_COLUMNS})
MAX_SHARD_BYTES = 500 * 1000**2


def default_num_proc() -> int:
    """The machine's cores, at most 8."""
    return max(1, min(8, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))


def _without_folder(detail: str, row: dict) -> str:
    """A skip detail without the local folder of the video: `skipped.jsonl` is published with the dataset."""
    return detail.replace(str(Path(row["video_path"]).parent) + os.sep, "")


def mosaic_row(row: dict, config: dict, span: str) -> dict:
    """The `Dataset.map` function: one source row -> its mosaic over its `aligned` or `detected` span, or the reason
    it has none."""
    ignore_in_workers()
    empty = {"image": None, "frame_indices": None, "face_frames": None, "num_frames": None}
    if row["skip_reason"] is not None:
        return empty
    settings = MosaicConfig(**config)
    try:
        if span == "detected":  # as inference finds it: no alignment, the mouth's own span
            mosaic = prepare_video(row["video_path"], "auto", settings).mosaic
        else:
            mosaic = video_to_mosaic(row["video_path"], (row["speech_start"], row["speech_end"]), settings)
    except NoSpeechFound as error:
        return {**empty, "skip_reason": SkipReason.NO_SPEECH.value, "skip_detail": str(error)}
    except ClipRejected as rejected:
        return {**empty, "skip_reason": rejected.reason.value, "skip_detail": _without_folder(rejected.detail, row)}
    except cv2.error as error:
        return {
            **empty,
            "skip_reason": SkipReason.UNDECODABLE.value,
            "skip_detail": _without_folder(str(error).strip(), row),
        }
    return {
        "image": {"bytes": mosaic.jpeg, "path": None},
        "frame_indices": list(mosaic.frame_indices),
        "face_frames": mosaic.face_frames,
        "num_frames": mosaic.num_frames,
    }


@contextmanager
def workers_safe_from_landmarker() -> Iterator[None]:
    """Map workers that do not inherit this process's landmarker state.

    datasets' map forks its workers; a fork of a process that has made a landmarker hangs (see
    `lipagent.transform.mouth`), so such a process gets its workers from a clean, preloaded forkserver instead.
    """
    if not landmarker_created_here():
        yield
        return
    previous = multiprocess.get_start_method(allow_none=True)
    multiprocess.set_forkserver_preload(["lipagent.data.prepare"])
    multiprocess.set_start_method("forkserver", force=True)
    try:
        yield
    finally:
        multiprocess.set_start_method(previous, force=True)


def map_in_chunks(
    sources: datasets.Dataset, config: MosaicConfig, span: str, num_proc: int, chunk_size: int, desc: str
) -> datasets.Dataset:
    """`mosaic_row` over the rows, chunk by chunk, so that an interrupted run keeps every finished chunk
    (datasets caches a map per shard of `num_proc`, which alone would lose a whole run's work)."""
    chunks = []
    count = max(1, math.ceil(len(sources) / chunk_size))
    for index in range(count):
        chunk = sources.select(range(index * chunk_size, min(len(sources), (index + 1) * chunk_size)))
        workers = min(num_proc, len(chunk))  # never more than rows, else datasets warns
        with workers_safe_from_landmarker():
            chunks.append(
                chunk.map(
                    mosaic_row,
                    fn_kwargs={"config": config.to_dict(), "span": span},
                    features=MOSAIC_FEATURES,
                    num_proc=workers if workers > 1 else None,
                    desc=f"Mosaics {desc} {index + 1}/{count}",
                )
            )
    return datasets.concatenate_datasets(chunks) if chunks else sources


@dataclass(frozen=True)
class PrepareOptions:
    speakers: tuple[str, ...]
    out: Path
    grid_dir: Path | None = None
    limit: int | None = None
    split_scheme: str = "overlapped"
    num_proc: int | None = None
    cache_dir: Path | None = None
    zenodo_url: str = ZenodoRecord.base_url
    overwrite: bool = False
    chunk_size: int = 512
    config: MosaicConfig = DEFAULT_CONFIG
    speech_span: str = DEFAULT_SPEECH_SPAN
    """Which span each split samples (lipagent.data.recipe)."""

    def __post_init__(self) -> None:
        check_speech_span(self.speech_span)


def make_builder(options: PrepareOptions) -> GridMosaics:
    fingerprint = source_fingerprint(Path(options.grid_dir), options.speakers) if options.grid_dir else None
    return GridMosaics(
        cache_dir=str(options.cache_dir) if options.cache_dir else None,
        speakers=list(options.speakers),
        grid_dir=str(options.grid_dir) if options.grid_dir else None,
        limit=options.limit,
        split_scheme=options.split_scheme,
        zenodo_url=options.zenodo_url,
        source_fingerprint=fingerprint,
    )


def prepare(options: PrepareOptions) -> BuildSummary:
    """Build the mosaic dataset described by `options` into `options.out`."""
    out = Path(options.out)
    check_output(out, options.overwrite, is_kind("dataset"), "dataset")
    with output_lock(out):
        return _build(options, out)


def _build(options: PrepareOptions, out: Path) -> BuildSummary:
    started = time.perf_counter()
    num_proc = options.num_proc or default_num_proc()
    builder = make_builder(options)
    builder.download_and_prepare()
    sources = builder.as_dataset()
    kept: dict[str, datasets.Dataset] = {}
    skipped: dict[tuple, dict] = {}
    for split in [s for s in SPLITS if s in sources]:
        spans = spans_of_split(options.speech_span, split)
        parts = [
            map_in_chunks(
                sources[split],
                options.config,
                span,
                num_proc,
                options.chunk_size,
                f"{split}, {span} spans" if len(spans) > 1 else split,
            )
            for span in spans
        ]
        mapped = datasets.concatenate_datasets(parts)
        reasons = mapped["skip_reason"]
        kept[split] = mapped.select([i for i, r in enumerate(reasons) if r is None]).select_columns(
            list(OUTPUT_COLUMNS)
        )
        details = mapped.select_columns(["video_id", "speaker", "skip_reason", "skip_detail"])
        for row in (details[i] for i, r in enumerate(reasons) if r is not None):
            skipped.setdefault(tuple(row.values()), row)  # a clip with no face is skipped once, not once per span
    summary = BuildSummary(
        speakers=list(builder.config.speakers),
        # The folder's name, not its path: the card is published, and a local path means nothing elsewhere.
        source=f"local GRID files ({Path(options.grid_dir).name}/)"
        if options.grid_dir
        else ZenodoRecord(base_url=options.zenodo_url).api_url,
        split_scheme=options.split_scheme,
        limit=options.limit,
        mosaic=options.config.to_dict(),
        speech_span=options.speech_span,
        split_sizes={split: len(kept[split]) if split in kept else 0 for split in SPLITS},
        skipped=sorted(skipped.values(), key=lambda r: r["video_id"]),
        num_proc=num_proc,
        clips=sum(len(sources[split]) for split in sources),
    )
    if not summary.present_splits:
        raise ValueError(f"no clip became a mosaic, so nothing was written:\n{summary.text()}")
    write_folder(kept, summary, out, options.overwrite)
    summary.seconds = time.perf_counter() - started
    return summary


def write_folder(
    splits: dict[str, datasets.Dataset], summary: BuildSummary, out: Path, overwrite: bool = False
) -> None:
    """Parquet shards `data/<split>-NNNNN-of-NNNNN.parquet`, the card and `skipped.jsonl`, written beside
    `out` and moved into place at the end, so `out` is never half-written."""
    with staging_for(out) as staging:
        _write(splits, summary, out, staging)
        move_into_place(staging, out, overwrite, is_kind("dataset"), "dataset")


def _write(splits: dict[str, datasets.Dataset], summary: BuildSummary, out: Path, staging: Path) -> None:
    (staging / "data").mkdir()
    for split in summary.present_splits:
        dataset = splits[split].flatten_indices()  # after select(), nbytes would count the rows left out too
        summary.split_bytes[split] = dataset.data.nbytes
        shards = max(1, math.ceil(dataset.data.nbytes / MAX_SHARD_BYTES))
        for index in range(shards):
            shard = dataset.shard(num_shards=shards, index=index, contiguous=True)
            shard.to_parquet(str(staging / "data" / f"{split}-{index:05d}-of-{shards:05d}.parquet"))
    render_card(summary, OUTPUT_FEATURES, out.name).save(staging / "README.md")
    with open(staging / "skipped.jsonl", "w", encoding="utf-8") as handle:
        for row in summary.skipped:
            handle.write(json.dumps(row) + "\n")
