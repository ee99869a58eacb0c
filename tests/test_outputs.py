"""Output folders: wrong `--out` fails before any work, `--overwrite` replaces only LipAgent's own folders, one
run writes a folder at a time, and nothing half-written or `.partial` is left behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lipagent.cli import main
from lipagent.outputs import OutputError, move_into_place, output_lock, staging_for

REPO = Path(__file__).resolve().parents[1]


def _stderr_of(run: subprocess.Popen) -> str:
    """The interrupted run's stderr; one still running after a minute is hung: killed, with its group, and failed."""
    try:
        return run.communicate(timeout=60)[1]
    except subprocess.TimeoutExpired:
        os.killpg(run.pid, signal.SIGKILL)
        run.communicate()
        raise AssertionError("the run was still going a minute after one Ctrl-C") from None


def _prepare_in_background(*args: str) -> subprocess.Popen:
    """`python -m lipagent prepare ARGS` in a session of its own, as a terminal runs it (Ctrl-C reaches the group)."""
    return subprocess.Popen(
        [sys.executable, "-m", "lipagent", "prepare", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _interrupted_lines(err: str) -> list[str]:
    return [line for line in err.replace("\r", "\n").splitlines() if "interrupted" in line]


def _siblings(folder: Path) -> list[str]:
    """What a run may leave beside its --out: staging folders and locks (pytest keeps its own `.lock` above)."""
    return sorted(
        p.name for p in folder.iterdir() if ".partial" in p.name or (p.name.endswith(".lock") and p.name != ".lock")
    )


@pytest.mark.parametrize(
    "command", [["prepare", "--grid-dir", "{grid}", "--limit", "2"], ["baseline", "train", "{grid}"]]
)
def test_overwrite_never_deletes_a_folder_lipagent_did_not_write(command, grid_dir, tmp_path, capsys):
    precious = tmp_path / "thesis"
    precious.mkdir()
    (precious / "chapter1.tex").write_text("months of work")
    argv = [part.format(grid=grid_dir) for part in command] + ["--out", str(precious), "--overwrite"]
    assert main(argv) == 2
    assert "written by LipAgent, so --overwrite will not delete it" in capsys.readouterr().err
    assert (precious / "chapter1.tex").read_text() == "months of work"
    assert _siblings(tmp_path) == []


@pytest.mark.parametrize("out", [".", "..", "file"])
def test_the_current_folder_a_parent_or_a_file_fail_before_any_work(out, grid_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "file").write_text("x")
    started = time.perf_counter()
    assert main(["prepare", "--grid-dir", str(grid_dir), "--out", out, "--overwrite"]) == 2
    assert time.perf_counter() - started < 5
    err = capsys.readouterr().err
    assert ("current folder" in err) if out != "file" else ("is a file" in err), err
    assert _siblings(tmp_path) == [] and _siblings(tmp_path.parent) == []


def test_export_refuses_an_existing_folder_before_loading_anything(tmp_path, capsys):
    (tmp_path / "merged").mkdir()
    assert main(["export", str(tmp_path / "adapter"), "--merged", str(tmp_path / "merged")]) == 2
    assert "already exists; choose another folder" in capsys.readouterr().err


def test_a_folder_that_appears_during_the_run_is_kept_and_the_staging_removed(tmp_path):
    out = tmp_path / "out"
    with staging_for(out) as staging:
        (staging / "new.txt").write_text("new")
        out.mkdir()
        (out / "theirs.txt").write_text("theirs")
        with pytest.raises(OutputError, match="already exists"):
            move_into_place(staging, out, False, lambda _: True, "dataset")
    assert (out / "theirs.txt").is_file() and _siblings(tmp_path) == []


def test_an_interrupted_block_leaves_no_staging(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with staging_for(tmp_path / "out") as staging:
            (staging / "half.parquet").write_bytes(b"half")
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_a_lock_left_by_a_dead_process_is_taken_over(tmp_path):
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (tmp_path / ".out.lock").write_text(finished.stdout.strip())
    with output_lock(tmp_path / "out"):
        assert (tmp_path / ".out.lock").read_text() == str(os.getpid())
    assert not (tmp_path / ".out.lock").exists()


def test_a_lock_held_by_a_running_process_is_respected_and_only_asked_about(tmp_path, monkeypatch):
    """Whether the holder runs is asked with signal 0, which delivers nothing."""
    (tmp_path / ".out.lock").write_text(str(os.getpid()))
    sent = []
    monkeypatch.setattr(os, "kill", lambda pid, signal: sent.append((pid, signal)))
    with pytest.raises(OutputError, match=rf"another run \(process {os.getpid()}\) is writing"):
        with output_lock(tmp_path / "out"):
            pass
    assert sent == [(os.getpid(), 0)]


def test_a_lock_held_by_another_users_process_is_respected(tmp_path, monkeypatch):
    """A process this user may not signal (os.kill raises PermissionError) is alive: its lock stands."""
    (tmp_path / ".out.lock").write_text("1")

    def not_yours(pid: int, signal: int) -> None:
        raise PermissionError

    monkeypatch.setattr(os, "kill", not_yours)
    with pytest.raises(OutputError, match=r"another run \(process 1\) is writing"):
        with output_lock(tmp_path / "out"):
            pass
    assert (tmp_path / ".out.lock").read_text() == "1"


def test_a_second_run_into_the_same_folder_is_refused_while_the_first_runs(grid_dir, tmp_path):
    out = tmp_path / "grid-mosaics"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\nfrom pathlib import Path\n"
            "from lipagent.outputs import output_lock\n"
            "with output_lock(Path(sys.argv[1])):\n    print('held', flush=True)\n"
            "    time.sleep(60)",
            str(out),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        second = subprocess.run(
            [
                sys.executable,
                "-m",
                "lipagent",
                "prepare",
                "--grid-dir",
                str(grid_dir),
                "--limit",
                "2",
                "--out",
                str(out),
                "--overwrite",
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        holder.kill()
        holder.wait()
    assert second.returncode == 2 and f"another run (process {holder.pid}) is writing" in second.stderr, second.stderr
    assert "Traceback" not in second.stderr and not out.exists()


@pytest.mark.parametrize("after", [0.1, 0.25])
def test_ctrl_c_while_the_command_starts_is_one_line_too(after, grid_dir, tmp_path):
    """The first 0.3 s of a command are imports: a Ctrl-C there is one line too, never a traceback."""
    out = tmp_path / "grid-mosaics"
    run = _prepare_in_background("--grid-dir", str(grid_dir), "--limit", "20", "--out", str(out))
    time.sleep(after)
    os.killpg(run.pid, signal.SIGINT)
    err = _stderr_of(run)
    said = _interrupted_lines(err)
    assert run.returncode == 130 and len(said) == 1 and "Traceback" not in err, (run.returncode, err[-2000:])
    assert not out.exists() and _siblings(tmp_path) == []


@pytest.mark.parametrize("after", [1.0, 2.5])
def test_one_ctrl_c_stops_prepare_in_seconds_with_one_line(after, grid_dir, tmp_path):
    """Moments into the map: the main process and its map workers all get the Ctrl-C, as from a terminal."""
    out, cache = tmp_path / "grid-mosaics", tmp_path / "cache"
    args = ("--grid-dir", str(grid_dir), "--limit", "150", "--num-proc", "2", "--cache-dir", str(cache))
    run = _prepare_in_background(*args, "--out", str(out))
    deadline = time.monotonic() + 60
    while not cache.exists() and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(after)
    sent = time.monotonic()
    os.killpg(run.pid, signal.SIGINT)
    err = _stderr_of(run)
    stopped = time.monotonic() - sent
    said = _interrupted_lines(err)
    assert run.returncode == 130 and stopped < 5, (run.returncode, stopped, err[-2000:])
    assert len(said) == 1 and "the same command resumes" in said[0] and "Traceback" not in err, err[-2000:]
    assert not out.exists() and _siblings(tmp_path) == []


NOT_LIPAGENTS = {
    "notes": "# My thesis\n\nChapter 1 is in chapter1.tex.\n",
    "another dataset's card": "---\nlicense: mit\npretty_name: Bird songs\n---\n# Birds\n",
    "an empty lipagent key": "---\nlipagent: {}\n---\n",
}


@pytest.mark.parametrize("readme", NOT_LIPAGENTS.values(), ids=list(NOT_LIPAGENTS))
def test_a_readme_does_not_make_a_folder_a_lipagent_dataset(readme, grid_dir, tmp_path, capsys):
    precious = tmp_path / "theirs"
    precious.mkdir()
    (precious / "README.md").write_text(readme)
    (precious / "songs.csv").write_text("months of recordings")
    assert main(["prepare", "--grid-dir", str(grid_dir), "--limit", "2", "--out", str(precious), "--overwrite"]) == 2
    assert "written by LipAgent, so --overwrite will not delete it" in capsys.readouterr().err
    assert sorted(p.name for p in precious.iterdir()) == ["README.md", "songs.csv"]


def test_a_model_folder_with_the_baselines_file_names_is_not_a_baseline(prepared, tmp_path, capsys):
    out, _ = prepared
    model = tmp_path / "gemma"
    model.mkdir()
    (model / "config.json").write_text('{"model_type": "gemma3n"}')
    (model / "model.safetensors").write_bytes(b"weights")
    assert main(["baseline", "train", str(out), "--out", str(model), "--overwrite", "--epochs", "1"]) == 2
    assert "not a baseline written by LipAgent" in capsys.readouterr().err
    assert (model / "model.safetensors").read_bytes() == b"weights"


def test_what_lipagent_wrote_is_recognised_as_its_own(prepared, baseline_dir):
    from lipagent.records import record_kind

    out, _ = prepared
    assert record_kind(out) == "dataset" and record_kind(baseline_dir) == "baseline"


def test_a_forced_end_removes_the_staging_folders_and_locks_of_runs_in_progress(tmp_path):
    """What `lipagent.interrupt` calls when it ends a process without its `finally` blocks."""
    from lipagent.outputs import remove_unfinished

    out = tmp_path / "out"
    with output_lock(out), staging_for(out) as staging:
        (staging / "half.parquet").write_bytes(b"half")
        (tmp_path / "kept.txt").write_text("not a run's")
        remove_unfinished()
        assert sorted(p.name for p in tmp_path.iterdir()) == ["kept.txt"]
    remove_unfinished()  # nothing left to remove: no error
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept.txt"]


def test_outputs_that_are_never_replaced_say_so(tmp_path):
    from lipagent.outputs import check_output, never

    (tmp_path / "merged").mkdir()
    assert never(tmp_path / "merged") is False
    with pytest.raises(OutputError, match="already exists; choose another folder$"):
        check_output(tmp_path / "merged", False, never, "merged model")
    with pytest.raises(OutputError, match="is not a merged model written by LipAgent"):
        check_output(tmp_path / "merged", True, never, "merged model")
    with pytest.raises(OutputError, match="already exists; pass --overwrite to replace it$"):
        check_output(tmp_path / "merged", False, lambda _: True, "dataset")


def test_a_forced_end_after_the_lock_was_already_removed_is_quiet(tmp_path):
    from lipagent.outputs import remove_unfinished

    out = tmp_path / "out"
    with output_lock(out):
        (tmp_path / ".out.lock").unlink()
        remove_unfinished()
    assert list(tmp_path.iterdir()) == []
