"""The offline data-pack source: layout, row checks with one-line errors, caps, and the real pack."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections import Counter
from pathlib import Path

import pytest

from adaptermix.data import DATA_ENV, DataConfig, list_datapack, load_task
from adaptermix.errors import DataError

FIXTURE_PACK = Path(__file__).parent / "data" / "pack"
_env_pack = os.environ.get(DATA_ENV)
REAL_PACK = Path(_env_pack) if _env_pack else Path(__file__).parents[1].parent / "shared" / "data"


@pytest.fixture
def pack(tmp_path: Path) -> Path:
    """A writable copy of the tiny fixture pack (tests corrupt files in it)."""
    return Path(shutil.copytree(FIXTURE_PACK, tmp_path / "pack"))


def _cfg(pack: Path, name: str = "toy_sentiment", **kw: object) -> DataConfig:
    return DataConfig(name=name, data_dir=str(pack), **kw)


def _rewrite_line(path: Path, lineno: int, content: bytes) -> None:
    lines = path.read_bytes().split(b"\n")
    lines[lineno - 1] = content
    path.write_bytes(b"\n".join(lines))


def _data_error(cfg: DataConfig, splits: tuple[str, ...] = ("train", "validation", "test")) -> str:
    with pytest.raises(DataError) as info:
        load_task(cfg, splits)
    message = str(info.value)
    assert "\n" not in message
    return message


# ---------------------------------------------------------------------------------------------------
# Loading


def test_loads_single_text_classification(pack: Path) -> None:
    data = load_task(_cfg(pack))
    assert {k: len(v) for k, v in data.splits.items()} == {"train": 40, "validation": 12, "test": 12}
    assert data.info.name == "toy_sentiment" and data.info.task == "single"
    assert data.info.label_names == ("negative", "positive") and data.info.num_labels == 2
    assert data.info.metric == "accuracy" and data.info.domain == "toy movie reviews (test fixture)"
    first = data.split("train")[0]
    assert first.text == "a tedious film , awful score" and first.label == 0 and first.text_pair is None
    assert all(type(e.label) is int for e in data.split("train"))


def test_loads_pair_classification_and_regression(pack: Path) -> None:
    nli = load_task(_cfg(pack, "toy_nli"))
    assert nli.info.is_pair and nli.info.num_labels == 3 and nli.info.secondary_metrics == ("f1_macro",)
    assert all(isinstance(e.text_pair, str) and e.text_pair for e in nli.split("train"))
    sts = load_task(_cfg(pack, "toy_sts"))
    assert sts.info.problem == "regression" and sts.info.num_labels == 1 and sts.info.metric == "pearson"
    assert sts.info.label_names == ()
    assert all(type(e.label) is float and 0.0 <= e.label <= 5.0 for e in sts.split("train"))


def test_loads_only_the_requested_splits(pack: Path) -> None:
    (pack / "toy_sentiment" / "train.jsonl").unlink()  # not needed for an evaluation-only load
    data = load_task(_cfg(pack), ("test",))
    assert list(data.splits) == ["test"]


def test_list_datapack_skips_folders_without_a_task(pack: Path) -> None:
    infos = list_datapack(pack)
    assert [i.name for i in infos] == ["toy_nli", "toy_sentiment", "toy_sts"]
    assert [i.task for i in infos] == ["pair", "single", "pair"]


def test_root_comes_from_the_environment(pack: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DATA_ENV, str(pack))
    assert len(load_task(DataConfig(name="toy_nli"), ("test",)).split("test")) == 9
    assert [i.name for i in list_datapack()][:1] == ["toy_nli"]


def test_metric_override(pack: Path) -> None:
    assert load_task(_cfg(pack, metric="f1"), ("test",)).info.metric == "f1"


# ---------------------------------------------------------------------------------------------------
# Caps


def test_caps_are_stratified_reproducible_and_in_order(pack: Path) -> None:
    full = load_task(_cfg(pack)).split("train")
    capped = load_task(_cfg(pack, max_train=10, max_test=4)).splits
    assert len(capped["train"]) == 10 and len(capped["test"]) == 4 and len(capped["validation"]) == 12
    assert Counter(e.label for e in capped["train"]) == {0: 4, 1: 6}  # 16:24 in the full split
    assert Counter(e.label for e in capped["test"]) == {0: 1, 1: 3}  # 3:9 in the full split
    positions = [full.index(e) for e in capped["train"]]
    assert positions == sorted(positions)
    again = load_task(_cfg(pack, max_train=10, max_test=4)).splits
    assert again == capped
    other_seed = load_task(_cfg(pack, max_train=10, sample_seed=1)).split("train")
    assert other_seed != capped["train"]


def test_regression_cap(pack: Path) -> None:
    rows = load_task(_cfg(pack, "toy_sts", max_train=7), ("train",)).split("train")
    assert len(rows) == 7 and all(type(e.label) is float for e in rows)
    assert rows == load_task(_cfg(pack, "toy_sts", max_train=7), ("train",)).split("train")


# ---------------------------------------------------------------------------------------------------
# Bad input: one line, naming file:line and the problem


@pytest.mark.parametrize(
    ("name", "split", "line", "content", "expected"),
    [
        ("toy_sentiment", "train", 2, b'{"text": "ok", "label": 5}', "label 5 not in 0..1"),
        ("toy_sentiment", "train", 2, b'{"text": "ok", "label": -1}', "label -1 not in 0..1"),
        (
            "toy_sentiment",
            "train",
            2,
            b'{"text": "ok", "label": 1.0}',
            "label 1.0 is not an integer class index",
        ),
        (
            "toy_sentiment",
            "train",
            2,
            b'{"text": "ok", "label": "positive"}',
            "label 'positive' is not an integer class index",
        ),
        (
            "toy_sentiment",
            "train",
            2,
            b'{"text": "ok", "label": true}',
            "label True is not an integer class index",
        ),
        ("toy_sentiment", "train", 2, b'{"text": "ok", "label": null}', "missing label"),
        ("toy_sentiment", "train", 2, b'{"text": "ok"}', "missing field 'label'"),
        ("toy_sentiment", "train", 2, b'{"label": 1}', "missing field 'text'"),
        ("toy_sentiment", "train", 2, b'{"text": "  ", "label": 1}', "field 'text' is empty"),
        ("toy_sentiment", "train", 2, b'{"text": 7, "label": 1}', "field 'text' must be a string, got int"),
        (
            "toy_sentiment",
            "validation",
            3,
            b'{"text": "a" "label": 1}',
            "malformed JSON (Expecting ',' delimiter)",
        ),
        ("toy_sentiment", "validation", 3, b"[1, 2]", "expected a JSON object, got list"),
        ("toy_sentiment", "test", 3, b'{"text": "caf\xe9", "label": 1}', "not valid UTF-8 (byte 0xe9)"),
        ("toy_nli", "train", 4, b'{"text": "a", "label": 0}', "missing field 'text_pair'"),
        ("toy_nli", "train", 4, b'{"text": "a", "text_pair": "", "label": 0}', "field 'text_pair' is empty"),
        (
            "toy_sts",
            "train",
            1,
            b'{"text": "a", "text_pair": "b", "label": "3.5"}',
            "label '3.5' is not a number",
        ),
        ("toy_sts", "train", 1, b'{"text": "a", "text_pair": "b", "label": NaN}', "label nan is not finite"),
    ],
)
def test_bad_row(pack: Path, name: str, split: str, line: int, content: bytes, expected: str) -> None:
    _rewrite_line(pack / name / f"{split}.jsonl", line, content)
    assert _data_error(_cfg(pack, name)) == f"{name}/{split}.jsonl:{line}: {expected}"


def test_missing_split(pack: Path) -> None:
    path = pack / "toy_sentiment" / "validation.jsonl"
    path.unlink()
    assert _data_error(_cfg(pack)) == f"dataset 'toy_sentiment' has no 'validation' split ({path} not found)"


def test_empty_split(pack: Path) -> None:
    (pack / "toy_sentiment" / "test.jsonl").write_text("\n\n")
    assert _data_error(_cfg(pack)) == "toy_sentiment/test.jsonl: no rows (empty split)"


@pytest.mark.parametrize("name", ["nope", "wordlists", "../pack/toy_nli"])
def test_unknown_dataset(pack: Path, name: str) -> None:
    expected = f"unknown dataset {name!r} in data pack {pack}; available: toy_nli, toy_sentiment, toy_sts"
    assert _data_error(_cfg(pack, name)) == expected


def test_missing_data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(DATA_ENV, raising=False)
    monkeypatch.setattr("adaptermix.data.config.EMBEDDED_DATA_DIR", tmp_path / "no-embedded")
    assert _data_error(DataConfig(name="sst2")).startswith(
        "no data pack location: set ADAPTERMIX_DATA or data.data_dir (the embedded data is missing"
    )
    with pytest.raises(DataError, match="^no data pack location"):
        list_datapack()
    gone = tmp_path / "gone"
    expected = f"data pack folder not found: {gone} (set ADAPTERMIX_DATA or data.data_dir)"
    assert _data_error(DataConfig(name="sst2", data_dir=str(gone))) == expected


@pytest.mark.parametrize(
    ("manifest", "expected"),
    [
        ({"task": "triple"}, "field 'task' must be 'single' or 'pair', got 'triple'"),
        (
            {"task": "single", "problem": "ranking"},
            "field 'problem' must be 'classification' or 'regression', got 'ranking'",
        ),
        (
            {"task": "single", "problem": "classification"},
            "field 'label_names' must be a non-empty list of strings",
        ),
        ({"task": "single", "label_names": ["a", "b"], "metric": 3}, "field 'metric' must be a str"),
    ],
)
def test_bad_manifest(pack: Path, manifest: dict[str, object], expected: str) -> None:
    (pack / "toy_sentiment" / "dataset.json").write_text(json.dumps(manifest))
    assert _data_error(_cfg(pack)) == f"toy_sentiment/dataset.json: {expected}"


def test_malformed_manifest(pack: Path) -> None:
    (pack / "toy_sentiment" / "dataset.json").write_text('{"task": "single",\n  oops}')
    assert (
        _data_error(_cfg(pack))
        == "toy_sentiment/dataset.json:2: malformed JSON (Expecting property name enclosed in double quotes)"
    )


# ---------------------------------------------------------------------------------------------------
# The real data pack (skipped where it is absent)

needs_real_pack = pytest.mark.skipif(
    not (REAL_PACK / "sst2" / "dataset.json").is_file(), reason="no data pack"
)


@needs_real_pack
def test_real_pack_lists_its_datasets() -> None:
    names = [i.name for i in list_datapack(REAL_PACK)]
    assert {"sst2", "mrpc", "stsb", "imdb", "mnli", "tweets_hate"} <= set(names)
    assert "lexical" not in names


@needs_real_pack
@pytest.mark.parametrize("name", ["rte", "mrpc", "stsb", "mnli", "financial_phrasebank", "chemprot"])
def test_real_pack_split_sizes_match_manifest(name: str) -> None:
    manifest = json.loads((REAL_PACK / name / "dataset.json").read_text(encoding="utf-8"))
    data = load_task(DataConfig(name=name, data_dir=str(REAL_PACK)))
    assert {k: len(v) for k, v in data.splits.items()} == manifest["splits"]
    assert data.info.label_names == tuple(manifest.get("label_names", ()))
    if data.info.problem == "classification":
        for split, rows in data.splits.items():
            counts = {str(k): v for k, v in Counter(e.label for e in rows).items()}
            assert counts == manifest["label_distribution"][split]


@needs_real_pack
def test_real_pack_capped_sst2_is_fast_and_stratified() -> None:
    start = time.perf_counter()
    data = load_task(DataConfig(name="sst2", data_dir=str(REAL_PACK), max_train=2000), ("train",))
    elapsed = time.perf_counter() - start
    print(f"sst2 train (60,614 rows) capped to 2000: {elapsed:.3f} s")  # reported, not asserted
    counts = Counter(e.label for e in data.split("train"))
    assert counts == {0: 884, 1: 1116}  # 26,802 : 33,812 of 60,614, largest-remainder rounding
