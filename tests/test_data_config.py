"""The ``data:`` config: defaults, per-source fields, and one-line validation errors."""

from __future__ import annotations

import pytest

from adaptermix.config import validate
from adaptermix.data import DATA_SOURCES, DataConfig
from adaptermix.errors import ConfigError


def test_defaults() -> None:
    cfg = DataConfig(name="sst2")
    assert cfg.source == "datapack" and cfg.sample_seed == 13 and cfg.format == "auto"
    assert cfg.columns.keys() == ("text", None, "label")
    assert cfg.caps() == {"train": None, "validation": None, "test": None}
    assert cfg.resolved_task == "single" and cfg.resolved_problem == "classification"


def test_task_follows_the_pair_column() -> None:
    cfg = DataConfig(source="files", name="x", files={"train": "a.csv"}, columns={"text_pair": "s2"})
    assert cfg.resolved_task == "pair"


def test_every_source_is_registered() -> None:
    assert DATA_SOURCES.names() == ["datapack", "files", "hf"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"name": "x", "files": {"train": "a.csv"}}, "data.files applies to source 'files', not 'datapack'"),
        ({"name": "x", "columns": {"text": "t"}}, "data.columns applies to source 'files', not 'datapack'"),
        (
            {"source": "hf", "name": "x", "data_dir": "/d"},
            "data.data_dir applies to source 'datapack', not 'hf'",
        ),
        ({"source": "files", "name": "x"}, "data.files (split -> path) is required for source 'files'"),
        (
            {"source": "files", "name": "x", "files": {"dev": "a"}},
            "data.files: unknown split 'dev' (valid: train, validation, test)",
        ),
        (
            {"source": "files", "name": "x", "files": {"train": "a"}, "task": "pair"},
            "data.task is 'pair' but data.columns.text_pair is not set",
        ),
        (
            {
                "source": "files",
                "name": "x",
                "files": {"train": "a"},
                "problem": "regression",
                "label_names": ["a"],
            },
            "data.label_names does not apply to a regression task",
        ),
        (
            {"source": "files", "name": "x", "files": {"train": "a"}, "label_names": ["a", "a"]},
            "data.label_names has duplicates",
        ),
    ],
)
def test_source_specific_fields_are_checked(raw: dict[str, object], expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        validate(DataConfig, raw, "data")
    assert str(info.value) == f"data: (top level): Value error, {expected}"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"name": "x", "max_train": 0}, "data: max_train: Input should be greater than 0"),
        ({"name": "x", "source": "web"}, "data: source: Input should be 'datapack', 'files' or 'hf'"),
        ({}, "data: missing required key 'name'"),
        ({"name": "x", "shuffle": True}, "data: unknown key 'shuffle'"),
    ],
)
def test_plain_validation_errors(raw: dict[str, object], expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        validate(DataConfig, raw, "data")
    assert str(info.value) == expected
