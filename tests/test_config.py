"""YAML configs: unknown keys, wrong types, malformed YAML, overrides; all one-line ConfigErrors."""

from __future__ import annotations

import pytest

from adaptermix.config import apply_overrides, load_config
from adaptermix.errors import ConfigError
from adaptermix.training.config import TrainRunConfig


def _write(tmp_path, text):
    p = tmp_path / "c.yaml"
    p.write_text(text, encoding="utf-8")
    return p


def test_valid_config_with_overrides(tmp_path):
    p = _write(tmp_path, "data: {name: sst2}\ntrain: {epochs: 1}\n")
    cfg = load_config(TrainRunConfig, p, ["train.epochs=2.5", "method.name=lora", "train.patience=3"])
    assert cfg.train.epochs == 2.5 and cfg.method.name == "lora" and cfg.train.patience == 3
    assert cfg.data.name == "sst2"


def test_unknown_key(tmp_path):
    p = _write(tmp_path, "data: {name: sst2}\ntrain: {epoch: 1}\n")
    with pytest.raises(ConfigError, match=r"^.*c\.yaml: unknown key 'train\.epoch'$"):
        load_config(TrainRunConfig, p)


def test_wrong_type(tmp_path):
    p = _write(tmp_path, "data: {name: sst2}\ntrain: {batch_size: many}\n")
    with pytest.raises(ConfigError, match=r"train\.batch_size: Input should be a valid integer"):
        load_config(TrainRunConfig, p)


def test_malformed_yaml(tmp_path):
    p = _write(tmp_path, "data: {name: sst2\ntrain: [\n")
    with pytest.raises(ConfigError, match=r"^malformed YAML in .*c\.yaml \(line \d+, column \d+\)$"):
        load_config(TrainRunConfig, p)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match=r"^config file not found: .*missing\.yaml$"):
        load_config(TrainRunConfig, tmp_path / "missing.yaml")


def test_missing_required_key(tmp_path):
    p = _write(tmp_path, "train: {epochs: 1}\n")
    with pytest.raises(ConfigError, match=r"missing required key 'data'"):
        load_config(TrainRunConfig, p)


def test_bad_override_syntax():
    with pytest.raises(ConfigError, match=r"must look like key\.path=value"):
        apply_overrides({}, ["train.epochs"])


def test_override_through_a_scalar_is_an_error():
    with pytest.raises(ConfigError, match=r"'epochs' is not a mapping"):
        apply_overrides({"train": {"epochs": 1}}, ["train.epochs.x=1"])


def test_unknown_method_preset(tmp_path):
    p = _write(tmp_path, "data: {name: sst2}\nmethod: {preset: nope}\n")
    with pytest.raises(ConfigError, match=r"unknown method preset 'nope'; valid: "):
        load_config(TrainRunConfig, p)
