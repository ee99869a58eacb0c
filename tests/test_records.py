"""What an artifact recorded (lipagent/records.py): one reader for a dataset card, an adapter's and a GGUF export's
lipagent.json and a baseline's config.json; old records read as what they were made with; folder or Hub id."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from huggingface_hub import DatasetCard, DatasetCardData

from lipagent.config import DEFAULT_CONFIG, LEGACY_SETTINGS, MosaicConfig
from lipagent.records import (
    BASELINE_MODEL_TYPE,
    GGUF_FORMAT,
    READING_RECORD,
    RecordError,
    hub_id_shaped,
    is_kind,
    mosaic_and_span,
    read_dataset_record,
    read_record,
    record_kind,
    resolve,
)

TRACKED = MosaicConfig(landmarks="static", resampling="area")


def dataset(folder: Path, lipagent: dict) -> Path:
    folder.mkdir()
    DatasetCard(f"---\n{DatasetCardData(lipagent=lipagent).to_yaml()}\n---\n# A dataset\n").save(folder / "README.md")
    return folder


def adapter(folder: Path, record: dict | None) -> Path:
    folder.mkdir()
    (folder / "adapter_config.json").write_text("{}")
    if record is not None:
        (folder / READING_RECORD).write_text(json.dumps(record))
    return folder


def baseline(folder: Path, mosaic: dict, **values) -> Path:
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": BASELINE_MODEL_TYPE, "mosaic": mosaic, **values}))
    return folder


def gguf(folder: Path, mosaic: dict) -> Path:
    folder.mkdir()
    (folder / READING_RECORD).write_text(json.dumps({"format": GGUF_FORMAT, "mosaic": mosaic, "prompt": "Read."}))
    return folder


def test_each_kind_is_told_apart_and_read_alike(tmp_path):
    made = {
        "dataset": dataset(tmp_path / "d", {"mosaic": TRACKED.to_dict(), "speech_span": "both"}),
        "adapter": adapter(tmp_path / "a", {"mosaic": TRACKED.to_dict(), "speech_span": "both", "prompt": "Read."}),
        "baseline": baseline(tmp_path / "b", TRACKED.to_dict(), speech_span="both"),
        "gguf": gguf(tmp_path / "g", {**TRACKED.to_dict(), "speech_span": "both"}),
    }
    for kind, folder in made.items():
        record = read_record(folder)
        assert (record.kind, record.mosaic, record.speech_span) == (kind, TRACKED, "both"), kind
        assert record_kind(folder) == kind and is_kind(kind)(folder)
        assert not any(is_kind(other)(folder) for other in made if other != kind)
    assert read_record(made["adapter"]).prompt == read_record(made["gguf"]).prompt == "Read."
    assert read_record(made["baseline"]).prompt is None


def test_old_records_read_as_what_they_were_made_with(tmp_path, caplog):
    old_mosaic = {k: v for k, v in DEFAULT_CONFIG.to_dict().items() if k not in LEGACY_SETTINGS}
    record = read_record(baseline(tmp_path / "b", old_mosaic))
    assert record.mosaic == MosaicConfig(**{**old_mosaic, **LEGACY_SETTINGS}) and record.speech_span == "aligned"
    assert read_record(
        baseline(tmp_path / "span", {**DEFAULT_CONFIG.to_dict(), "speech_span": "detected"})
    ).speech_span == ("detected"), "the span was recorded inside the mosaic settings before it became a dataset option"
    with caplog.at_level(logging.WARNING):
        legacy = read_record(adapter(tmp_path / "a", None))
    assert {k: getattr(legacy.mosaic, k) for k in LEGACY_SETTINGS} == LEGACY_SETTINGS
    assert READING_RECORD in caplog.text and "LipAgent 0.1" in caplog.text, "an adapter without a record says so"
    assert mosaic_and_span({**TRACKED.to_dict(), "speech_span": "both"}) == (TRACKED, "both")


@pytest.mark.parametrize(
    "make",
    [
        lambda folder: folder.mkdir(),
        lambda folder: (folder.mkdir(), (folder / "README.md").write_text("# My notes\n")),
        lambda folder: (folder.mkdir(), (folder / "config.json").write_text('{"model_type": "gemma3n"}')),
        lambda folder: (folder.mkdir(), (folder / READING_RECORD).write_text('{"format": "something else"}')),
        lambda folder: (folder.mkdir(), (folder / "config.json").write_text("not json")),
    ],
    ids=["empty", "notes", "a transformers model", "another lipagent.json", "broken json"],
)
def test_folders_lipagent_did_not_write_are_none_of_its_kinds(make, tmp_path):
    folder = tmp_path / "theirs"
    make(folder)
    assert record_kind(folder) is None and not any(is_kind(k)(folder) for k in ("dataset", "adapter", "baseline"))
    with pytest.raises(RecordError, match="none of what LipAgent writes"):
        read_record(folder)
    with pytest.raises(RecordError, match="mosaic settings are unknown"):
        read_dataset_record(folder)


def test_a_dataset_card_without_mosaic_settings_is_refused(tmp_path):
    with pytest.raises(RecordError, match="no `lipagent.mosaic` settings"):
        read_record(dataset(tmp_path / "d", {"speakers": ["s1"]}))
    with pytest.raises(RecordError, match="mosaic settings are unknown"):
        read_dataset_record(baseline(tmp_path / "b", DEFAULT_CONFIG.to_dict()))


def test_folder_or_hub_id(tmp_path, monkeypatch):
    assert resolve(tmp_path) == tmp_path
    assert hub_id_shaped("team/grid-mosaics") and not hub_id_shaped("./team/x") and not hub_id_shaped("a/b/c")
    assert not hub_id_shaped("/abs/path") and not hub_id_shaped("~/x/y")
    (tmp_path / "file").write_text("x")
    with pytest.raises(RecordError, match="is a file; pass a model folder"):
        resolve(tmp_path / "file")
    with pytest.raises(RecordError, match="no such dataset folder .*lipagent prepare.*not an owner/name Hub id"):
        resolve(tmp_path / "gone", "dataset")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    with pytest.raises(RecordError, match="the Hub did not give it .*HF_HUB_OFFLINE=1"):
        resolve("team/no-such-model")
