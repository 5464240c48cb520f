"""Invariants over every registered data source: the same data gives the same TaskData, and the caps and
split selection of :func:`load_task` behave the same whatever the source."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from adaptermix.data import DATA_SOURCES, SPLITS, DataConfig, TaskData, load_task
from adaptermix.errors import DataError

PACK = Path(__file__).parent / "data" / "pack"


class _JsonlDataset:
    """A Hub-like dataset over a JSONL file: column_names and column access."""

    def __init__(self, path: Path) -> None:
        self.rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
        self.column_names = list(self.rows[0])

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
    hub = {split: _JsonlDataset(PACK / name / f"{split}.jsonl") for split in SPLITS}
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
