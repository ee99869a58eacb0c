"""Writing an output folder without losing anything: checks before the work, one writer at a time, a staging
sibling that never outlives a failure, and a rename into place.

`prepare`, `baseline train` and `export` write folders that take minutes to hours to make; a wrong `--out` must fail
in a second, and `--overwrite` must only ever replace what LipAgent itself wrote there (recognised by `is_ours`).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

_UNFINISHED: set[Path] = set()
"""Staging folders and locks of the runs in progress: what a forced end (lipagent.interrupt) must not leave behind."""


def remove_unfinished() -> None:
    """Remove every staging folder and lock this process holds (for an end that skips `finally` blocks)."""
    for path in list(_UNFINISHED):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    _UNFINISHED.clear()


class OutputError(FileExistsError):
    """An output folder that cannot be written as asked (exists, is a file, is not ours, is being written)."""


def never(_: Path) -> bool:
    """`is_ours` for outputs that are never replaced (no --overwrite)."""
    return False


def check_output(out: Path, overwrite: bool, is_ours: Callable[[Path], bool], what: str) -> None:
    """Refuse, before any work, an `out` that cannot or must not be replaced by a new `what`."""
    resolved = out.resolve()
    if resolved == Path.cwd().resolve() or resolved in Path.cwd().resolve().parents or resolved == resolved.parent:
        raise OutputError(f"--out {out} is the current folder or one above it; give the name of a new folder")
    if out.is_file() or (out.exists() and not out.is_dir()):
        raise OutputError(f"--out {out} is a file, not a folder; give the name of a new folder")
    if out.exists():
        if not overwrite:
            hint = "choose another folder" if is_ours is never else "pass --overwrite to replace it"
            raise OutputError(f"{out} already exists; {hint}")
        if not is_ours(out):
            raise OutputError(
                f"{out} is not a {what} written by LipAgent, so --overwrite will not delete it; choose another folder"
            )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def output_lock(out: Path) -> Iterator[None]:
    """Hold `.<out>.lock` beside `out` for the run: a second run into the same folder is refused instead of
    racing it; a lock left by a process that no longer exists (killed) is taken over."""
    lock = out.with_name(f".{out.name}.lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(2):
        try:
            handle = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            text = lock.read_text().strip() if lock.is_file() else ""
            pid = int(text) if text.isdigit() else None
            if pid is not None and _alive(pid):
                raise OutputError(
                    f"another run (process {pid}) is writing {out}; wait for it to finish, or choose another --out"
                ) from None
            lock.unlink(missing_ok=True)
            continue
        os.write(handle, str(os.getpid()).encode())
        os.close(handle)
        break
    else:
        raise OutputError(f"could not take the lock {lock}; remove it if no run is writing {out}")
    _UNFINISHED.add(lock)
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)
        _UNFINISHED.discard(lock)


@contextmanager
def staging_for(out: Path) -> Iterator[Path]:
    """An empty `.<out>.partial-<pid>` sibling to write into; removed if the block fails or is interrupted."""
    staging = out.with_name(f".{out.name}.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    _UNFINISHED.add(staging)
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        _UNFINISHED.discard(staging)


def move_into_place(staging: Path, out: Path, overwrite: bool, is_ours: Callable[[Path], bool], what: str) -> Path:
    """Rename the finished `staging` to `out`, replacing an earlier `what` only as `check_output` allows (checked
    again: something may have appeared at `out` during the run). On refusal the staging folder is removed."""
    try:
        check_output(out, overwrite, is_ours, what)
    except OutputError:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    previous = out.with_name(f".{out.name}.previous-{os.getpid()}")
    if out.exists():
        out.rename(previous)
    staging.rename(out)
    shutil.rmtree(previous, ignore_errors=True)
    return out


def write_file(path: Path, data: bytes) -> Path:
    """`data` at `path` (its folder made), written to a sibling first and renamed over it, so a reader finds the old
    file or the whole new one, never a part (cached files that several processes may make at once)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.{os.getpid()}")
    staging.write_bytes(data)
    staging.replace(path)
    return path
