"""Invariants over every registered data source: the same data gives the same TaskData, and the caps and
split selection of :func:`load_task` behave the same whatever the source."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from adaptermix.config import validate
from adaptermix.data import DATA_SOURCES, SPLITS, DataConfig, TaskData, load_task
from adaptermix.errors import DataError

PACK = Path(__file__).parent / "data" / "pack"


class _Rows:
    """A Hub-like dataset over in-memory rows: column_names and column access."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows
        self.column_names = list(rows[0])

    @classmethod
    def from_jsonl(cls, path: Path) -> _Rows:
        return cls([json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line])

    def __getitem__(self, column: str) -> list[Any]:
        return [row[column] for row in self.rows]


def _config(source: str, name: str, monkeypatch: pytest.MonkeyPatch, **kw: Any) -> DataConfig:
    """A config that reads fixture dataset ``name`` through ``source``."""
    manifest = json.loads((PACK / name / "dataset.json").read_text(encoding="utf-8"))
    pair = "text_pair" if manifest["task"] == "pair" else None
    described = {
        "columns": {"text": "text", "text_pair": pair, "label": "label"},
        "problem": manifest["problem"],
        "metric": manifest["metric"],
        **({"label_names": manifest["label_names"]} if "label_names" in manifest else {}),
    }
    if source == "datapack":
        return DataConfig(name=name, data_dir=str(PACK), **kw)
    if source == "files":
        files = {split: str(PACK / name / f"{split}.jsonl") for split in SPLITS}
        return DataConfig(source="files", name=name, files=files, **described, **kw)
    hub = {split: _Rows.from_jsonl(PACK / name / f"{split}.jsonl") for split in SPLITS}
    monkeypatch.setattr(DATA_SOURCES.get("hf"), "load_dataset", lambda path, config=None: hub)
    return DataConfig(source="hf", name=name, hf_name=f"fixture/{name}", **described, **kw)


def _same_rows(a: TaskData, b: TaskData) -> None:
    assert a.splits == b.splits
    assert (a.info.task, a.info.problem, a.info.label_names, a.info.metric) == (
        b.info.task,
        b.info.problem,
        b.info.label_names,
        b.info.metric,
    )


@pytest.mark.parametrize("source", DATA_SOURCES.names())
@pytest.mark.parametrize("name", ["toy_sentiment", "toy_nli", "toy_sts"])
def test_every_source_reads_the_same_data_the_same_way(
    source: str, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    reference = load_task(_config("datapack", name, monkeypatch))
    _same_rows(load_task(_config(source, name, monkeypatch)), reference)
    capped = load_task(_config(source, name, monkeypatch, max_train=9, max_test=5))
    _same_rows(capped, load_task(_config("datapack", name, monkeypatch, max_train=9, max_test=5)))
    assert len(capped.split("train")) == 9 and len(capped.split("test")) == 5


@pytest.mark.parametrize("source", DATA_SOURCES.names())
def test_every_source_loads_only_the_requested_splits(source: str, monkeypatch: pytest.MonkeyPatch) -> None:
    data = load_task(_config(source, "toy_nli", monkeypatch), ("validation",))
    assert list(data.splits) == ["validation"] and len(data.split("validation")) == 9


def test_unknown_split_name() -> None:
    with pytest.raises(DataError) as info:
        load_task(DataConfig(name="toy_nli", data_dir=str(PACK)), ("dev",))
    assert str(info.value) == "unknown split 'dev' (valid: train, validation, test)"


@pytest.mark.parametrize("source", DATA_SOURCES.names())
def test_a_dumped_config_reloads_to_the_same_data(source: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Artefacts save ``model_dump`` of the data config (every field written out); reloading that dump
    must validate and load exactly the same rows."""
    cfg = _config(source, "toy_nli", monkeypatch, max_train=6)
    again = validate(DataConfig, cfg.model_dump(mode="json"), "data")
    assert again == cfg
    _same_rows(load_task(again), load_task(cfg))


def test_a_dumped_builtin_hub_config_keeps_the_table_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [{"sentence": f"s{i}", "label": i % 2} for i in range(20)]
    hub = {"train": _Rows(rows), "validation": _Rows(rows[:4])}
    monkeypatch.setattr(DATA_SOURCES.get("hf"), "load_dataset", lambda path, config=None: hub)
    cfg = validate(DataConfig, DataConfig(source="hf", name="sst2").model_dump(mode="json"), "data")
    assert [e.text for e in load_task(cfg, ("test",)).split("test")] == ["s0", "s1", "s2", "s3"]
