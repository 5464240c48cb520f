"""A user's own data: the shipped example config trains, a ``dataset.json`` beside the files is honoured
(config fields win), CRLF / BOM files load, and the help and listing point to the documentation."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from adaptermix.cli.main import build_parser, main
from adaptermix.config import load_config
from adaptermix.data import DataConfig, load_task
from adaptermix.errors import DataError
from adaptermix.training.config import TrainRunConfig
from conftest import REPO
from tiny import tiny_encoder

EXAMPLE = REPO / "configs" / "own-data.yaml"


@pytest.fixture
def in_repo():
    """The example's paths are relative to the repository root, where the docs say to run it."""
    cwd = os.getcwd()
    os.chdir(REPO)
    yield REPO
    os.chdir(cwd)


def _files(tmp_path: Path, manifest: dict | None, **kw: object) -> DataConfig:
    (tmp_path / "train.csv").write_text("text,label\ngood,pos\nbad,neg\nfine,pos\n")
    (tmp_path / "test.csv").write_text("text,label\nnice,pos\nawful,neg\n")
    if manifest is not None:
        (tmp_path / "dataset.json").write_text(json.dumps(manifest))
    files = {"train": str(tmp_path / "train.csv"), "test": str(tmp_path / "test.csv")}
    return DataConfig(source="files", name="mine", files=files, **kw)


def test_example_config_validates_and_loads(in_repo):
    cfg = load_config(TrainRunConfig, str(EXAMPLE), [])
    data = load_task(cfg.data)
    assert {s: len(r) for s, r in data.splits.items()} == {"train": 30, "validation": 10, "test": 10}
    # label names, metric and domain come from examples/own-data/dataset.json
    assert data.info.label_names == ("negative", "positive") and data.info.metric == "accuracy"
    assert data.info.secondary_metrics == ("f1_macro",) and "product reviews" in data.info.domain
    for rows in data.splits.values():
        assert {e.label for e in rows} == {0, 1}


def test_example_config_trains_end_to_end_on_a_tiny_encoder(in_repo, tmp_path):
    from adaptermix.artefact import load_adapter
    from adaptermix.training.run import train_adapter

    cfg = load_config(
        TrainRunConfig, str(EXAMPLE), ["train.epochs=1", "train.progress=false", f"output_dir={tmp_path / 'a'}"]
    )
    out = train_adapter(cfg, encoder=tiny_encoder("bert"))
    assert set(out.metrics) == {"validation", "test"} and 0 <= out.metrics["test"]["accuracy"] <= 1
    meta = load_adapter(out.path).meta
    assert meta.task["label_names"] == ["negative", "positive"] and meta.task["name"] == "product_reviews"


def test_manifest_beside_the_files_is_honoured(tmp_path):
    manifest = {"label_names": ["pos", "neg"], "metric": "f1_macro", "domain": "toys", "license": "x"}
    data = load_task(_files(tmp_path, manifest), ("train", "test"))
    assert data.info.label_names == ("pos", "neg")  # the manifest's order, not the sorted labels
    assert [e.label for e in data.split("train")] == [0, 1, 0]
    assert data.info.metric == "f1_macro" and data.info.domain == "toys"


def test_config_fields_win_over_the_manifest(tmp_path):
    manifest = {"label_names": ["pos", "neg"], "metric": "f1_macro"}
    data = load_task(_files(tmp_path, manifest, label_names=["neg", "pos"], metric="accuracy"), ("train",))
    assert data.info.label_names == ("neg", "pos") and data.info.metric == "accuracy"
    assert [e.label for e in data.split("train")] == [1, 0, 1]


def test_manifest_regression_and_pair(tmp_path):
    (tmp_path / "train.jsonl").write_text(
        '{"text": "a", "text_pair": "b", "label": 0.5}\n{"text": "c", "text_pair": "d", "label": "4"}\n'
    )
    (tmp_path / "dataset.json").write_text(json.dumps({"task": "pair", "problem": "regression"}))
    cfg = DataConfig(source="files", name="sts", files={"train": str(tmp_path / "train.jsonl")})
    data = load_task(cfg, ("train",))
    assert data.info.problem == "regression" and data.info.metric == "pearson" and data.info.is_pair
    assert [(e.text_pair, e.label) for e in data.split("train")] == [("b", 0.5), ("d", 4.0)]


def test_bad_manifest_is_one_line(tmp_path):
    with pytest.raises(DataError) as info:
        load_task(_files(tmp_path, {"problem": "ranking"}), ("train",))
    assert str(info.value) == (
        f"{tmp_path / 'dataset.json'}: field 'problem' must be 'classification' or 'regression', got 'ranking'"
    )
    (tmp_path / "dataset.json").write_text("{oops")
    with pytest.raises(DataError, match=r"dataset\.json:1: malformed JSON"):
        load_task(_files(tmp_path, None), ("train",))


def test_crlf_and_bom_files_load(tmp_path):
    bom = "\ufeff"
    (tmp_path / "train.csv").write_text(bom + 'text,label\r\n"a, b",pos\r\nc,neg\r\n', newline="")
    (tmp_path / "test.tsv").write_text(bom + "text\tlabel\r\nd\tneg\r\n", newline="")
    (tmp_path / "validation.jsonl").write_text(bom + '{"text": "e", "label": "pos"}\r\n', newline="")
    files = {"train": "train.csv", "test": "test.tsv", "validation": "validation.jsonl"}
    cfg = DataConfig(source="files", name="w", files={k: str(tmp_path / v) for k, v in files.items()})
    data = load_task(cfg)
    assert [(e.text, e.label) for e in data.split("train")] == [("a, b", 1), ("c", 0)]
    assert [(e.text, e.label) for e in data.split("test")] == [("d", 0)]
    assert [(e.text, e.label) for e in data.split("validation")] == [("e", 1)]


def test_train_help_and_list_point_to_the_docs(capsys):
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices["train"]
    text = sub.format_help()
    assert "docs/own-data.md" in text and "configs/own-data.yaml" in text
    assert main(["list"]) == 0
    assert "docs/own-data.md" in capsys.readouterr().out
    for path in ("docs/own-data.md", "configs/own-data.yaml", "examples/own-data/train.csv"):
        assert (REPO / path).is_file(), path
