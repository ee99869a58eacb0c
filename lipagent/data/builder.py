"""Hugging Face `datasets` builder for GRID: one row per (video, alignment) pair, split by video id.

It yields the sources (video path, parsed alignment, or the reason a pair cannot be used); the
Face Mesh-to-mosaic transform then runs over these rows as `Dataset.map(num_proc=...)` (see
`lipagent.data.prepare`), so the expensive part is parallel and cached per chunk.
"""

from __future__ import annotations

import logging
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import datasets

from lipagent.config import ZenodoRecord
from lipagent.data.align import AlignmentError, parse_alignment
from lipagent.data.grid_files import (
    SOURCE_PATTERNS,
    AlignmentFile,
    Pair,
    VideoFile,
    check_speakers,
    check_zip,
    file_fingerprint,
    find_alignments,
    find_videos,
    locate_source,
    pair_files,
)
from lipagent.data.splits import SCHEMES, SPLITS, assign_split
from lipagent.data.zenodo import ChecksumError, fetch, load_record, select_files, verify, wanted_files
from lipagent.grammar import is_valid_sentence
from lipagent.outputs import staging_for
from lipagent.transform.skips import SkipReason

logger = logging.getLogger(__name__)

SOURCE_FEATURES = datasets.Features(
    {
        "video_id": datasets.Value("string"),
        "speaker": datasets.Value("string"),
        "video_path": datasets.Value("string"),
        "text": datasets.Value("string"),
        "speech_start": datasets.Value("int32"),
        "speech_end": datasets.Value("int32"),
        "skip_reason": datasets.Value("string"),
        "skip_detail": datasets.Value("string"),
    }
)


class GridMosaicsConfig(datasets.BuilderConfig):
    """Which speakers, from where (a local folder or Zenodo), how many videos and which split scheme."""

    def __init__(
        self,
        speakers: Sequence[str] = ("s1",),
        grid_dir: str | None = None,
        limit: int | None = None,
        split_scheme: str = "overlapped",
        zenodo_url: str = ZenodoRecord.base_url,
        source_fingerprint: str | None = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        # Part of the config, so of the cache's key: changed source files make a new cache, never a stale one.
        self.source_fingerprint = source_fingerprint
        self.speakers = check_speakers(speakers)
        self.grid_dir = str(Path(grid_dir).resolve()) if grid_dir else None
        if limit is not None and limit < 1:
            raise ValueError(f"--limit must be at least 1, got {limit}")
        self.limit = limit
        if split_scheme not in SCHEMES:
            raise ValueError(f"unknown split scheme {split_scheme!r}; choose one of {', '.join(SCHEMES)}")
        self.split_scheme = split_scheme
        self.zenodo_url = zenodo_url


def source_row(pair: Pair) -> dict:
    """The row for one pair: its transcription and spoken frames, or why it cannot be used."""
    row = {
        "video_id": pair.video_id,
        "speaker": pair.speaker,
        "video_path": str(pair.video) if pair.video else None,
        "text": None,
        "speech_start": None,
        "speech_end": None,
        "skip_reason": None,
        "skip_detail": None,
    }
    if pair.alignment is None:
        return {**row, "skip_reason": SkipReason.NO_ALIGNMENT.value, "skip_detail": "no .align file has this id"}
    try:
        alignment = parse_alignment(pair.alignment.read_text(encoding="utf-8", errors="replace"))
    except AlignmentError as error:
        return {**row, "skip_reason": SkipReason.BAD_ALIGNMENT.value, "skip_detail": f"{pair.alignment.name}: {error}"}
    row.update(text=alignment.text, speech_start=alignment.speech_start_frame, speech_end=alignment.speech_end_frame)
    if pair.video is None:
        return {**row, "skip_reason": SkipReason.NO_VIDEO.value, "skip_detail": f"no .mpg for {pair.alignment.name}"}
    if not is_valid_sentence(alignment.text):
        return {**row, "skip_reason": SkipReason.NOT_IN_GRAMMAR.value, "skip_detail": repr(alignment.text)}
    return row


class GridMosaics(datasets.GeneratorBasedBuilder):
    """GRID audio-visual corpus sources, ready for the mosaic transform."""

    BUILDER_CONFIG_CLASS = GridMosaicsConfig
    VERSION = datasets.Version("1.0.0")
    config: GridMosaicsConfig

    def _info(self) -> datasets.DatasetInfo:
        return datasets.DatasetInfo(
            description="GRID corpus videos paired with their word alignments.",
            features=SOURCE_FEATURES,
            homepage="https://doi.org/10.5281/zenodo.3625687",
            license="cc-by-4.0",
        )

    def _split_generators(self, dl_manager: datasets.DownloadManager) -> list[datasets.SplitGenerator]:
        if self.config.grid_dir:
            video_roots, alignment_root = self._local_sources(dl_manager, Path(self.config.grid_dir))
        else:
            video_roots, alignment_root = self._zenodo_sources(dl_manager)
        videos: list[VideoFile] = []
        for speaker, root in video_roots.items():
            found = find_videos(root, speaker)
            if not found:
                logger.warning("no .mpg videos found for %s under %s", speaker, root)
            videos += found
        alignments: list[AlignmentFile] = find_alignments(alignment_root)
        pairs = pair_files(videos, alignments, limit=self.config.limit)
        rows: dict[str, list[dict]] = {split: [] for split in SPLITS}
        for pair in pairs:
            rows[assign_split(pair.video_id, pair.speaker, self.config.split_scheme)].append(source_row(pair))
        if not pairs:
            raise FileNotFoundError(f"no GRID videos or alignments found for {', '.join(self.config.speakers)}")
        # datasets cannot read back a split with no rows, so empty splits are left out here.
        return [datasets.SplitGenerator(name=s, gen_kwargs={"rows": rows[s]}) for s in SPLITS if rows[s]]

    def _generate_examples(self, rows: list[dict]) -> Iterator[tuple[str, dict]]:
        for row in rows:
            yield row["video_id"], row

    def _unpack(self, dl_manager: datasets.DownloadManager, archive: Path) -> Path:
        """The archive unpacked in the cache, under a name that changes with the archive's size and time:
        `dl_manager.extract` keys its cache on the path alone, so it would keep serving a replaced zip's files."""
        check_zip(archive)
        target = Path(self._cache_downloaded_dir) / "unpacked" / f"{archive.stem}-{file_fingerprint(archive)}"
        if not target.is_dir():
            with staging_for(target) as partial, zipfile.ZipFile(archive) as zipped:
                zipped.extractall(partial)  # safe: check_zip refused absolute and parent-relative members
                partial.rename(target)
        return target

    def _local_sources(self, dl_manager: datasets.DownloadManager, grid_dir: Path) -> tuple[dict[str, Path], Path]:
        """Speaker trees and the alignment tree from a folder of Zenodo zips or their unpacked trees."""
        if not grid_dir.is_dir():
            raise FileNotFoundError(f"--grid-dir {grid_dir} is not a folder")

        def locate(name: str) -> Path:
            found = locate_source(grid_dir, name)
            if found is None:
                raise FileNotFoundError(
                    f"{grid_dir} holds neither {name}.zip nor an unpacked {name}/ with "
                    f"{SOURCE_PATTERNS.get(name, '*.mpg')} files"
                )
            return found if found.is_dir() else self._unpack(dl_manager, found)

        roots = {speaker: locate(speaker) for speaker in self.config.speakers}
        return roots, locate("alignments")

    def _zenodo_sources(self, dl_manager: datasets.DownloadManager) -> tuple[dict[str, Path], Path]:
        """Fetch (or reuse from the cache) the chosen speakers' zips and alignments.zip, md5-checked."""
        record = ZenodoRecord(base_url=self.config.zenodo_url)
        files = select_files(
            load_record(fetch(dl_manager.download, record.api_url, record), record), wanted_files(self.config.speakers)
        )
        paths = fetch(dl_manager.download, {f.name: f.url for f in files}, record)
        for file in files:
            try:
                verify(paths[file.name], file)
            except ChecksumError as error:
                Path(paths[file.name]).unlink(missing_ok=True)
                raise ChecksumError(f"{error}; the bad download was deleted, run again to fetch it anew") from None
        roots = {s: self._unpack(dl_manager, Path(paths[f"{s}.zip"])) for s in self.config.speakers}
        return roots, self._unpack(dl_manager, Path(paths["alignments.zip"]))
