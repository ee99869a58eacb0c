"""Counts and names on the command line: a user mistake is a usage error naming the flag, never a silent default."""

from __future__ import annotations

import pytest

from lipagent.cli import main


@pytest.mark.parametrize(
    "argv, flag",
    [
        (["prepare", "--grid-dir", "g", "--out", "o", "--num-proc", "-3"], "--num-proc"),
        (["prepare", "--grid-dir", "g", "--out", "o", "--limit", "0"], "--limit"),
        (["demo", "--num-proc", "0"], "--num-proc"),
        (["preview", "folder", "--per-split", "-1"], "--per-split"),
        (["baseline", "train", "data", "--out", "b", "--epochs", "0"], "--epochs"),
        (["baseline", "train", "data", "--out", "b", "--batch-size", "two"], "--batch-size"),
    ],
)
def test_counts_below_one_are_usage_errors(argv, flag, capsys):
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    assert stopped.value.code == 2
    assert f"argument {flag}" in capsys.readouterr().err


def test_run_eval_checks_its_counts_too(capsys):
    from eval.run_eval import main as run_eval_main

    with pytest.raises(SystemExit):
        run_eval_main(["--model", "m", "--dataset", "d", "--max-samples", "0"])
    err = capsys.readouterr().err
    assert "argument --max-samples: must be 1 or more" in err


def test_lipagent_eval_and_push_are_the_scripts_doors(baseline_dir, prepared, tmp_path, capsys):
    """`lipagent eval` scores like eval/run_eval.py; `lipagent push` stages like push_to_hub.py; mistakes are one
    line with the command's name."""
    import json

    out, _ = prepared
    assert (
        main(
            [
                "eval",
                "--model",
                str(baseline_dir),
                "--dataset",
                str(out),
                "--out",
                str(tmp_path / "eval"),
                "--max-samples",
                "3",
            ]
        )
        == 0
    )
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text())["num_samples"] == 3
    assert "WER" in capsys.readouterr().out
    assert (
        main(
            [
                "push",
                "dataset",
                str(out),
                "--repo",
                "team/grid-mosaics",
                "--dry-run",
                "--stage-dir",
                str(tmp_path / "stage"),
            ]
        )
        == 0
    )
    assert (tmp_path / "stage" / "README.md").is_file()
    assert main(["push", "dataset", str(out), "--repo", "team/grid-mosaics", "--dry-run"]) == 2
    assert "lipagent push: error: --dry-run needs --stage-dir" in capsys.readouterr().err


def test_preview_of_a_missing_folder_says_so_instead_of_asking_the_hub(tmp_path, capsys):
    assert main(["preview", str(tmp_path / "grid-mosaics"), "--out", str(tmp_path / "sheet.png")]) == 2
    err = capsys.readouterr().err
    assert "no such dataset folder" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "sheet.png").exists()


def test_more_workers_than_clips_is_not_a_warning(grid_dir, tmp_path, capfd):
    assert (
        main(
            [
                "prepare",
                "--grid-dir",
                str(grid_dir),
                "--speakers",
                "s2",
                "--num-proc",
                "4",
                "--out",
                str(tmp_path / "out"),
                "--cache-dir",
                str(tmp_path / "cache"),
            ]
        )
        == 0
    )
    assert "num_proc must be" not in capfd.readouterr().err


def test_preview_help_shows_its_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["preview", "--help"])
    out = capsys.readouterr().out
    assert "(default: sheet.png)" in out and "(default: 4)" in out


def test_the_mosaic_flags_are_every_mosaic_setting(capsys):
    """`prepare` has one flag per MosaicConfig field, typed and checked as the field is."""
    from dataclasses import fields

    from lipagent.cli.commands import parse_command_line
    from lipagent.cli.options import mosaic_config
    from lipagent.config import DEFAULT_CONFIG, MosaicConfig

    with pytest.raises(SystemExit):
        main(["prepare", "--help"])
    help_text = capsys.readouterr().out
    for setting in fields(MosaicConfig):
        assert "--" + setting.name.replace("_", "-") in help_text, setting.name
    args = parse_command_line(["prepare", "--out", "o", "--lip-padding", "0.2", "--landmarks", "static", "--rows", "4"])
    assert mosaic_config(args) == MosaicConfig(lip_padding=0.2, landmarks="static", rows=4) != DEFAULT_CONFIG
    with pytest.raises(SystemExit):
        parse_command_line(["prepare", "--out", "o", "--landmarks", "sometimes"])
    assert "invalid choice: 'sometimes'" in capsys.readouterr().err


def test_a_settle_rule_the_detector_cannot_run_is_one_line_before_any_work(tmp_path, capsys):
    assert main(["prepare", "--out", str(tmp_path / "o"), "--speech-settle", "12", "--limit", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "speech_settle) must be below still_frames=12" in err, err
    assert not (tmp_path / "o").exists()


def test_validate_of_a_missing_folder_says_so(tmp_path, capsys):
    assert main(["validate", str(tmp_path / "grid-mosaics")]) == 1
    out = capsys.readouterr().out
    assert f"{tmp_path / 'grid-mosaics'}: no such folder" in out and "dataset card" not in out
