"""Finding GRID videos and alignments in Zenodo's zips or unpacked trees, and pairing them.

Zenodo's `alignments.zip` files many speakers under another speaker's folder, so videos and
alignments are paired by video id (unique across the corpus), whatever the folder.
"""

from __future__ import annotations

import hashlib
import re
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

SPEAKER_PATTERN = re.compile(r"^s([1-9]|[12][0-9]|3[0-4])$")


class GridArchiveError(ValueError):
    """A GRID zip that is corrupt, truncated or unsafe to unpack."""


def check_speakers(speakers: Sequence[str]) -> list[str]:
    """Speaker names normalised (`1` or `S1` -> `s1`), refused when outside s1..s34."""
    names = []
    for raw in speakers:
        name = raw.strip().lower()
        name = name if name.startswith("s") else f"s{name}"
        if not SPEAKER_PATTERN.match(name):
            raise ValueError(f"unknown GRID speaker {raw!r}: speakers are s1 ... s34")
        if name == "s21":
            raise ValueError("GRID speaker s21 has no video")
        if name not in names:
            names.append(name)
    if not names:
        raise ValueError("no speakers chosen")
    return names


def _unsafe(name: str) -> bool:
    path = PurePosixPath(name.replace("\\", "/"))
    return path.is_absolute() or ".." in path.parts or re.match(r"^[A-Za-z]:", name) is not None


def check_zip(path: str | Path) -> list[str]:
    """The member names of a zip after checking it whole: a truncated or corrupt file, a bad CRC and
    a member that would land outside the extraction folder (absolute path, `..`) are errors naming
    the file, raised before anything is unpacked."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            unsafe = [n for n in names if _unsafe(n)]
            if unsafe:
                raise GridArchiveError(
                    f"{path}: refusing to unpack member {unsafe[0]!r}: it would be written outside the "
                    "extraction folder (absolute path or '..')"
                )
            bad = archive.testzip()
    except (zipfile.BadZipFile, EOFError, OSError) as error:
        raise GridArchiveError(f"{path}: not a readable zip (corrupt or truncated download?): {error}") from None
    if bad is not None:
        raise GridArchiveError(f"{path}: member {bad!r} is corrupt (CRC mismatch); delete the file and fetch it again")
    return names


@dataclass(frozen=True)
class VideoFile:
    video_id: str
    speaker: str
    path: Path


@dataclass(frozen=True)
class AlignmentFile:
    video_id: str
    folder: str
    path: Path


SOURCE_PATTERNS = {"alignments": "*.align"}
"""What an unpacked tree must hold to be used instead of its zip (a speaker's tree: `*.mpg`)."""


def locate_source(grid_dir: Path, name: str) -> Path | None:
    """Where `--grid-dir` holds `name` (a speaker or "alignments"): its unpacked tree when that holds files of
    its kind, else its zip, else None. The one rule the builder, the dry run and the cache key all follow (an
    empty `s1/` beside `s1.zip` means the zip)."""
    folder, archive = grid_dir / name, grid_dir / f"{name}.zip"
    if folder.is_dir() and any(folder.rglob(SOURCE_PATTERNS.get(name, "*.mpg"))):
        return folder
    return archive if archive.is_file() else None


def source_files(grid_dir: Path, speakers: Sequence[str]) -> list[Path]:
    """Every file under `grid_dir` a build of `speakers` reads."""
    files: list[Path] = []
    for name in [*speakers, "alignments"]:
        found = locate_source(grid_dir, name)
        if found is not None:
            files += sorted(p for p in found.rglob("*") if p.is_file()) if found.is_dir() else [found]
    return files


def source_fingerprint(grid_dir: Path, speakers: Sequence[str]) -> str:
    """What the sources are, cheaply: every source file's path, size and modification time, hashed. A fixed
    alignment, an added clip or a replaced zip changes it, so the build cache keyed on it cannot go stale."""
    digest = hashlib.sha256()
    for path in source_files(grid_dir, speakers):
        digest.update(f"{path.relative_to(grid_dir)}\0{file_fingerprint(path)}\n".encode())
    return digest.hexdigest()[:16]


def file_fingerprint(path: Path) -> str:
    """A short key for one file's version (size and modification time)."""
    stat = path.stat()
    return hashlib.sha256(f"{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:12]


def _visible(paths: Iterable[Path]) -> list[Path]:
    return sorted(p for p in paths if "__MACOSX" not in p.parts and not p.name.startswith("._"))


def find_videos(root: Path, speaker: str) -> list[VideoFile]:
    """Every `.mpg` under a speaker's unpacked tree."""
    return [VideoFile(p.stem, speaker, p) for p in _visible(root.rglob("*.mpg"))]


def find_alignments(root: Path) -> list[AlignmentFile]:
    """Every `.align` under an unpacked alignments tree, with the folder it was filed in."""
    return [AlignmentFile(p.stem, p.parent.name, p) for p in _visible(root.rglob("*.align"))]


@dataclass(frozen=True)
class Pair:
    """One clip to process: a video, its alignment, or both. One of the two may be missing."""

    video_id: str
    speaker: str
    video: Path | None
    alignment: Path | None


def pair_files(
    videos: Sequence[VideoFile], alignments: Sequence[AlignmentFile], limit: int | None = None
) -> list[Pair]:
    """Videos paired with alignments by id, plus the alignments of the chosen speakers that have no video.

    An alignment folder belongs to the speakers whose videos were paired in it (or, when none of a
    speaker's videos paired, to the folder of its own name), so misfiled folders are attributed right
    without a fix-up map. `limit` keeps the first N videos by id and then reports no orphans.
    """
    by_id: dict[str, AlignmentFile] = {}
    for alignment in alignments:
        by_id.setdefault(alignment.video_id, alignment)
    chosen = sorted(videos, key=lambda v: v.video_id)
    if limit is not None:
        chosen = chosen[:limit]
    pairs = []
    claimed: set[str] = set()
    paired_speakers: set[str] = set()
    for video in chosen:
        alignment = by_id.get(video.video_id)
        if alignment is not None:
            claimed.add(alignment.folder)
            paired_speakers.add(video.speaker)
        pairs.append(Pair(video.video_id, video.speaker, video.path, alignment.path if alignment else None))
    if limit is None:
        claimed |= {v.speaker for v in videos} - paired_speakers
        video_ids = {v.video_id for v in videos}
        folder_owner = {a.folder: v.speaker for v in videos if (a := by_id.get(v.video_id))}
        for alignment in by_id.values():
            if alignment.folder in claimed and alignment.video_id not in video_ids:
                speaker = folder_owner.get(alignment.folder, alignment.folder)
                pairs.append(Pair(alignment.video_id, speaker, None, alignment.path))
    return sorted(pairs, key=lambda p: p.video_id)
