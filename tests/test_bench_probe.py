"""bench/bench_probe.py: its linear probe reads what features hold and no more, its pooling keeps each cell apart, and
it runs end to end on real mosaics through a Gemma 3n tower."""

from __future__ import annotations

import json

import bench_probe
import numpy as np
import pytest
import torch

from lipagent.grammar import SLOT_NAMES


def test_probe_reads_a_word_the_features_hold_and_not_one_they_do_not():
    rng = np.random.default_rng(0)
    words = ["bin", "lay", "place", "set"]
    train_y = [words[i % 4] for i in range(80)]
    test_y = [words[i % 4] for i in range(40)]

    mixing = rng.normal(size=(4, 64))  # a word shows in many features at once, as a mouth shape in many pixels

    def holding(labels: list[str]) -> np.ndarray:
        return np.eye(4)[[words.index(w) for w in labels]] @ mixing + rng.normal(size=(len(labels), 64))

    assert bench_probe.linear_probe(holding(train_y), train_y, holding(test_y), test_y, components=16) == 1.0
    noise = bench_probe.linear_probe(
        rng.normal(size=(80, 64)), train_y, rng.normal(size=(40, 64)), test_y, components=16
    )
    assert noise < 0.5
    unseen = bench_probe.linear_probe(holding(train_y), train_y, holding(test_y[:8]), ["again"] * 8, components=16)
    assert unseen == 0.0  # a word the train split never had is a miss


def test_cells_are_pooled_apart_in_reading_order():
    rows, cols = 2, 3
    values = torch.arange(rows * cols, dtype=torch.float32).reshape(1, 1, rows, cols)
    features = torch.nn.functional.interpolate(values, size=(12, 12), mode="nearest")  # the square the tower sees
    pooled = bench_probe.cell_pooled(features, rows, cols, positions=2)
    assert pooled.shape == (1, rows * cols * 4)
    assert pooled.reshape(rows * 2, cols * 2)[::2, ::2].flatten().tolist() == [0, 1, 2, 3, 4, 5]


def test_smoke_run_probes_every_stage_of_the_tower(few_prepared, tiny_dir, tmp_path):
    table_file = tmp_path / "probe.json"
    argv = ["--dataset", str(few_prepared), "--model", str(tiny_dir), "--test-split", "validation"]
    assert bench_probe.main([*argv, "--components", "4", "--json", str(table_file)]) == 0
    table = json.loads(table_file.read_text())
    stages = list(table["accuracy"])
    assert stages[:3] == ["majority", "pixels", "stem"]
    assert stages[-1] == "fusion (image tokens)" and len(stages) == 3 + 4 + 1  # four block stages in the tiny tower
    for accuracy in table["accuracy"].values():
        assert set(accuracy) == set(SLOT_NAMES) and all(0 <= a <= 1 for a in accuracy.values())
    rows, cols = map(int, table["grid"].split("x"))
    assert table["feature_sizes"]["pixels"] == rows * cols * 16
    assert table["feature_sizes"]["fusion (image tokens)"] == rows * cols * 16 * 2048
    assert bench_probe.main([*argv, "--test-split", "nope"]) == 2


def test_bad_arguments_are_one_line(capsys):
    with pytest.raises(SystemExit):
        bench_probe.parse_args(["--dataset", "x", "--positions", "0"])
    assert "--positions and --components must be at least 1" in capsys.readouterr().err
