"""The GRID corpus on Zenodo (record 3625687): which files to fetch, how big, and their md5 sums."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lipagent.config import ZenodoRecord


class ChecksumError(ValueError):
    """A downloaded file whose md5 is not the one Zenodo publishes."""


@dataclass(frozen=True)
class ZenodoFile:
    name: str
    size: int
    md5: str | None
    url: str


def parse_record(record: dict, base: ZenodoRecord) -> dict[str, ZenodoFile]:
    """The files of a Zenodo record, from its REST API JSON (`/api/records/<id>`)."""
    entries = record.get("files", [])
    if isinstance(entries, dict):
        entries = entries.get("entries", [])
    files = {}
    for entry in entries:
        name = entry["key"]
        checksum = entry.get("checksum") or ""
        algorithm, _, digest = checksum.partition(":")
        url = entry.get("links", {}).get("self") or entry.get("links", {}).get("content")
        files[name] = ZenodoFile(
            name=name,
            size=int(entry.get("size", 0)),
            md5=digest if algorithm == "md5" and digest else None,
            url=url or f"{base.api_url}/files/{name}/content",
        )
    return files


def load_record(path: str | Path, base: ZenodoRecord) -> dict[str, ZenodoFile]:
    with open(path, encoding="utf-8") as handle:
        return parse_record(json.load(handle), base)


def fetch(download: Callable[[Any], Any], what: Any, base: ZenodoRecord) -> Any:
    """`download(what)` (a datasets DownloadManager's), with a server that cannot be reached said in one sentence:
    datasets raises FileNotFoundError(url) for it, which alone reads as a bare URL."""
    try:
        return download(what)
    except (OSError, ConnectionError) as error:
        raise ConnectionError(
            f"Zenodo could not be reached at {base.base_url} ({type(error).__name__}: {error}); "
            "check the network, or build from local GRID zips with --grid-dir"
        ) from None


def wanted_files(speakers: Sequence[str]) -> list[str]:
    """The Zenodo file names a build of these speakers needs."""
    return [f"{speaker}.zip" for speaker in speakers] + ["alignments.zip"]


def select_files(available: dict[str, ZenodoFile], names: Sequence[str]) -> list[ZenodoFile]:
    missing = [n for n in names if n not in available]
    if missing:
        raise ValueError(f"Zenodo record does not list {', '.join(missing)} (it has {len(available)} files)")
    return [available[n] for n in names]


def verify(path: str | Path, file: ZenodoFile) -> None:
    """Raise ChecksumError unless the file at `path` has the size and md5 Zenodo lists."""
    size = Path(path).stat().st_size
    if file.size and size != file.size:
        raise ChecksumError(f"{file.name}: downloaded {size} bytes, Zenodo lists {file.size}")
    import pooch

    if file.md5 is not None and (actual := pooch.file_hash(str(path), alg="md5")) != file.md5:
        raise ChecksumError(f"{file.name}: md5 {actual} does not match Zenodo's {file.md5}")


def human_size(size: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")
