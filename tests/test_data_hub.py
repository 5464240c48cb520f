"""The Hugging Face source, tested offline: the dataset table, split policy and row mapping, with a fake
``load_dataset`` injected into :class:`HubLoader` (no network, ``datasets`` not needed)."""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Mapping
from typing import Any

import pytest

from adaptermix.data import HUB_DATASETS, DataConfig, load_task
from adaptermix.data.hub import HOLDOUT_FRACTION, HubLoader, HubSpec, hf_load_dataset
from adaptermix.errors import DataError, ResourceError

PAPER_DATASETS = ["mnli", "qnli", "rte", "mrpc", "qqp", "sst2", "rct", "ag_news", "authorship", "financial",
                  "imdb", "tweets", "wiki_toxic"]  # fmt: skip
PAPER_811 = {"ag_news", "authorship", "financial", "imdb", "tweets", "wiki_toxic"}


class FakeClassLabel:
    def __init__(self, names: list[str]) -> None:
        self.names = names


class FakeDataset:
    """The slice of ``datasets.Dataset`` the loader uses: column_names, ds[column], features."""

    def __init__(self, rows: list[dict[str, Any]], features: Mapping[str, Any] | None = None) -> None:
        self.rows = rows
        self.column_names = list(rows[0]) if rows else []
        self.features = dict(features or {})

    def __getitem__(self, column: str) -> list[Any]:
        return [row[column] for row in self.rows]


class FakeHub:
    """A ``load_dataset`` that serves in-memory splits and records what was asked for."""

    def __init__(self, splits: Mapping[str, FakeDataset]) -> None:
        self.splits = dict(splits)
        self.calls: list[tuple[str, str | None]] = []

    def __call__(self, path: str, name: str | None = None) -> Mapping[str, FakeDataset]:
        self.calls.append((path, name))
        return self.splits


def _rows(spec: HubSpec, n: int, tag: str, label_of: Any = None) -> list[dict[str, Any]]:
    """``n`` rows with the spec's columns; labels cycle through the classes (or are floats)."""
    k = max(len(spec.label_names), 1)
    rows = []
    for i in range(n):
        row: dict[str, Any] = {spec.text: f"{tag} text {i}"}
        if spec.text_pair:
            row[spec.text_pair] = f"{tag} pair {i}"
        if spec.problem == "regression":
            row[spec.label] = (i % 11) / 2
        else:
            row[spec.label] = label_of(i % k) if label_of else i % k
        rows.append(row)
    return rows


def _fake_for(spec: HubSpec, n: int = 60) -> FakeHub:
    """Every Hub split the spec reads, ``n`` rows each (rct gets upper-case string labels)."""
    label_of = (lambda i: spec.label_names[i].upper()) if spec.fold_case else None
    names = {hf for hfs in spec.splits.values() for hf in hfs}
    return FakeHub({hf: FakeDataset(_rows(spec, n, hf, label_of)) for hf in sorted(names)})


def _round_half_up(x: float) -> int:
    return int(x + 0.5)


# ---------------------------------------------------------------------------------------------------
# The table


def test_the_papers_13_datasets_are_mapped() -> None:
    assert set(PAPER_DATASETS) <= set(HUB_DATASETS)
    assert HUB_DATASETS["mnli"].splits == {"train": ("train",), "test": ("validation_matched",)}
    assert HUB_DATASETS["ag_news"].label_names == ("World", "Sports", "Business", "Sci/Tech")
    assert HUB_DATASETS["authorship"].hf_config == "cross_topic_1"
    assert HUB_DATASETS["financial"].hf_config == "sentences_50agree"
    assert HUB_DATASETS["stsb"].problem == "regression"


@pytest.mark.parametrize("name", sorted(HUB_DATASETS))
def test_table_entry_is_consistent(name: str) -> None:
    spec = HUB_DATASETS[name]
    assert "train" in spec.splits and set(spec.splits) <= {"train", "validation", "test"}
    if spec.problem == "classification":
        assert len(spec.label_names) >= 2 and len(set(spec.label_names)) == len(spec.label_names)
    else:
        assert spec.label_names == () and spec.metric == "pearson"
    if name in PAPER_811:  # paper App. A.3: partition the training data 8:1:1
        assert set(spec.splits) == {"train"}
    elif spec.hf_name == "nyu-mll/glue":  # paper Sec. 4.1: public train and evaluation splits
        assert set(spec.splits) == {"train", "test"}


@pytest.mark.parametrize("name", sorted(HUB_DATASETS))
def test_every_entry_loads_with_the_split_policy(name: str) -> None:
    spec = HUB_DATASETS[name]
    hub = _fake_for(spec)
    data = HubLoader(hub)(DataConfig(source="hf", name=name), ("train", "validation", "test"))
    assert hub.calls == [(spec.hf_name, spec.hf_config)]
    assert data.info.task == spec.task and data.info.problem == spec.problem
    assert data.info.label_names == spec.label_names and data.info.domain == spec.domain
    sizes = {split: len(rows) for split, rows in data.splits.items()}
    pooled = {split: 60 * len(hfs) for split, hfs in spec.splits.items()}
    assert sum(sizes.values()) == sum(pooled.values())  # nothing lost, nothing duplicated
    texts = [e.text for rows in data.splits.values() for e in rows]
    assert len(set(texts)) == len(texts)
    for split in ("validation", "test"):
        if split in spec.splits:
            assert sizes[split] == pooled[split]
        elif spec.problem == "classification":  # carved per class, 10% each, round half up
            k = len(spec.label_names)
            per_class = Counter(i % k for _ in spec.splits["train"] for i in range(60))
            assert sizes[split] == sum(_round_half_up(c * HOLDOUT_FRACTION) for c in per_class.values())
        else:
            assert sizes[split] == _round_half_up(pooled["train"] * HOLDOUT_FRACTION)


# ---------------------------------------------------------------------------------------------------
# Split and label details


def test_glue_keeps_dev_as_test_and_carves_validation_from_train() -> None:
    spec = HUB_DATASETS["sst2"]
    hub = _fake_for(spec, n=100)
    loader = HubLoader(hub)
    data = loader(DataConfig(source="hf", name="sst2"), ("train", "validation", "test"))
    assert [e.text for e in data.split("test")] == [f"validation text {i}" for i in range(100)]
    assert len(data.split("validation")) == 10 and len(data.split("train")) == 90
    assert Counter(e.label for e in data.split("validation")) == {0: 5, 1: 5}
    # train alone is the same remainder: validation never leaks back into train
    train_only = loader(DataConfig(source="hf", name="sst2"), ("train",))
    assert train_only.split("train") == data.split("train") and list(train_only.splits) == ["train"]


def test_dataset_class_label_names_take_precedence() -> None:
    spec = HUB_DATASETS["imdb"]
    train = FakeDataset(
        _rows(spec, 20, "train"), features={"label": FakeClassLabel(["negative", "positive"])}
    )
    data = HubLoader(FakeHub({"train": train}))(DataConfig(source="hf", name="imdb"), ("test",))
    assert data.info.label_names == ("negative", "positive")


def test_rct_string_labels_match_case_insensitively() -> None:
    spec = HUB_DATASETS["rct"]
    data = HubLoader(_fake_for(spec, n=10))(DataConfig(source="hf", name="rct"), ("train",))
    assert [e.label for e in data.split("train")][:6] == [0, 1, 2, 3, 4, 0]


def test_any_hub_dataset_by_hf_name_with_inferred_labels() -> None:
    rows = [{"q": f"q{i}", "a": f"a{i}", "y": "yes" if i % 3 else "no"} for i in range(30)]
    hub = FakeHub({"train": FakeDataset(rows), "test": FakeDataset(rows[:6])})
    cfg = DataConfig(
        source="hf", name="myqa", hf_name="me/qa", columns={"text": "q", "text_pair": "a", "label": "y"}
    )
    data = HubLoader(hub)(cfg, ("train", "validation", "test"))
    assert hub.calls == [("me/qa", None)]
    assert (
        data.info.label_names == ("no", "yes") and data.info.task == "pair" and data.info.metric == "accuracy"
    )
    assert len(data.split("test")) == 6 and len(data.split("validation")) == 3  # 10 no -> 1, 20 yes -> 2
    assert data.split("test")[0].text_pair == "a0" and data.split("test")[0].label == 0


def test_explicit_fields_override_a_builtin_entry() -> None:
    hub = _fake_for(HUB_DATASETS["financial"])
    HubLoader(hub)(
        DataConfig(source="hf", name="financial", hf_name="mirror/fpb", hf_config="all"), ("test",)
    )
    assert hub.calls == [("mirror/fpb", "all")]
    # a mirror whose text column is called "text": only the column that was set changes
    rows = [{"text": f"t{i}", "label": i % 3} for i in range(20)]
    mirror = FakeHub({"train": FakeDataset(rows)})
    cfg = DataConfig(source="hf", name="financial", hf_name="mirror/fpb", columns={"text": "text"})
    data = HubLoader(mirror)(cfg, ("train",))
    assert (
        data.info.label_names == ("negative", "neutral", "positive") and len(data.split("train")) == 14
    )  # 7,7,6 rows - 1+1 each


# ---------------------------------------------------------------------------------------------------
# Errors


def test_unknown_hub_dataset() -> None:
    with pytest.raises(DataError) as info:
        HubLoader(FakeHub({}))(DataConfig(source="hf", name="nope"), ("train",))
    known = ", ".join(sorted(HUB_DATASETS))
    assert str(info.value) == f"unknown Hugging Face dataset 'nope'; built-in: {known} (or set data.hf_name)"


def test_missing_column_and_missing_train_split() -> None:
    spec = HUB_DATASETS["sst2"]
    bad = FakeHub(
        {"train": FakeDataset([{"text": "x", "label": 0}]), "validation": FakeDataset(_rows(spec, 3, "v"))}
    )
    with pytest.raises(DataError) as info:
        HubLoader(bad)(DataConfig(source="hf", name="sst2"), ("train",))
    assert str(info.value) == "nyu-mll/glue/sst2[train]: missing column 'sentence' (columns: text, label)"
    with pytest.raises(DataError) as info:
        HubLoader(FakeHub({"test": FakeDataset(_rows(spec, 3, "t"))}))(
            DataConfig(source="hf", name="sst2"), ("test",)
        )
    assert str(info.value) == "nyu-mll/glue/sst2: no train split (has: test)"


def test_bad_label_names_the_row() -> None:
    spec = HUB_DATASETS["sst2"]
    rows = _rows(spec, 4, "train")
    rows[2]["label"] = 7
    hub = FakeHub({"train": FakeDataset(rows), "validation": FakeDataset(_rows(spec, 3, "v"))})
    with pytest.raises(DataError) as info:
        HubLoader(hub)(DataConfig(source="hf", name="sst2"), ("train",))
    assert str(info.value) == "nyu-mll/glue/sst2[train] row 2: label 7 not in 0..1"


def test_without_the_datasets_library_the_error_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "datasets", None)  # makes `import datasets` fail, never downloads
    expected = "the 'hf' data source needs the Hugging Face datasets library: pip install adaptermix[hub]"
    with pytest.raises(ResourceError) as info:
        hf_load_dataset("nyu-mll/glue", "sst2")
    assert str(info.value) == expected
    with pytest.raises(ResourceError):
        load_task(DataConfig(source="hf", name="sst2"), ("test",))
