"""`lipagent prepare --dry-run`: what a build would read or fetch, and how big it is, without building."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import datasets

from lipagent.config import ZenodoRecord
from lipagent.data.grid_files import locate_source
from lipagent.data.zenodo import fetch, load_record, select_files, wanted_files


@dataclass(frozen=True)
class PlannedFile:
    name: str
    size: int
    where: str


def downloads_dir(cache_dir: Path | None) -> str:
    """Where a build's downloads are cached: datasets' layout (`<cache>/downloads`), so the dry run looks where
    `prepare` will fetch to."""
    return str(Path(cache_dir or datasets.config.HF_DATASETS_CACHE) / datasets.config.DOWNLOADED_DATASETS_DIR)


def local_plan(grid_dir: Path, speakers: list[str]) -> list[PlannedFile]:
    """The zips or unpacked folders `--grid-dir` would be read from (missing ones are reported as such)."""
    plan = []
    for name in speakers + ["alignments"]:
        found = locate_source(grid_dir, name)
        if found is None:
            plan.append(PlannedFile(f"{name}.zip", 0, "MISSING"))
        elif found.is_dir():
            size = sum(p.stat().st_size for p in found.rglob("*") if p.is_file())
            plan.append(PlannedFile(f"{name}/", size, str(found)))
        else:
            plan.append(PlannedFile(found.name, found.stat().st_size, str(found)))
    return plan


def zenodo_plan(download_dir: str, speakers: list[str], base_url: str) -> list[PlannedFile]:
    """The Zenodo files a build would fetch, with the sizes the record lists (fetches only the record)."""
    record = ZenodoRecord(base_url=base_url)
    manager = datasets.DownloadManager(download_config=datasets.DownloadConfig(cache_dir=download_dir))
    files = select_files(load_record(fetch(manager.download, record.api_url, record), record), wanted_files(speakers))
    return [PlannedFile(f.name, f.size, f.url) for f in files]
