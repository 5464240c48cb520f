"""Bad adapter artefacts: each is a one-line ArtefactError, never a traceback or an unpickle."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from adaptermix.artefact import WEIGHTS, load_adapter, model_from_adapter
from adaptermix.errors import ArtefactError, IncompatibleAdaptersError
from helpers import make_adapter
from tiny import tiny_encoder


def test_missing_directory(tmp_path):
    with pytest.raises(ArtefactError, match=r"^adapter not found: .*nope \(expected a directory"):
        load_adapter(tmp_path / "nope")


def test_truncated_weights(tmp_path):
    p = make_adapter(tmp_path / "a", tiny_encoder("bert"))
    data = (p / WEIGHTS).read_bytes()
    (p / WEIGHTS).write_bytes(data[: len(data) // 2])
    with pytest.raises(ArtefactError, match=r"adapter\.safetensors is corrupted or truncated"):
        load_adapter(p)


def test_garbage_weights(tmp_path):
    p = make_adapter(tmp_path / "a", tiny_encoder("bert"))
    (p / WEIGHTS).write_bytes(b"\x80\x04not a safetensors file at all")
    with pytest.raises(ArtefactError, match=r"corrupted or truncated"):
        load_adapter(p)


def test_nan_weights(tmp_path):
    p = make_adapter(tmp_path / "a", tiny_encoder("bert"))
    tensors = dict(load_adapter(p).tensors)
    tensors["layers.0.ffn.up.weight"] = torch.full_like(tensors["layers.0.ffn.up.weight"], float("nan"))
    save_file(tensors, str(p / WEIGHTS))
    with pytest.raises(ArtefactError, match=r"tensor 'layers.0.ffn.up.weight' contains NaN or Inf"):
        load_adapter(p)


def test_corrupted_metadata(tmp_path):
    p = make_adapter(tmp_path / "a", tiny_encoder("bert"))
    (p / "adapter.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ArtefactError, match=r"adapter\.json is corrupted"):
        load_adapter(p)


def test_adapter_for_another_base_model(tmp_path):
    p = make_adapter(tmp_path / "a", tiny_encoder("bert"))
    with pytest.raises(
        IncompatibleAdaptersError, match=r"was trained on base model 'tiny-bert'.*not on 'tiny-roberta'"
    ):
        model_from_adapter(load_adapter(p), tiny_encoder("roberta"))


def test_shape_mismatch_with_method_config(tmp_path):
    p = make_adapter(tmp_path / "a", tiny_encoder("bert"))
    meta = json.loads((p / "adapter.json").read_text())
    meta["method"]["bottleneck_size"] = 4
    (p / "adapter.json").write_text(json.dumps(meta))
    with pytest.raises(
        ArtefactError, match=r"does not match its method config: layers\.0\.ffn\.down\.bias has shape"
    ):
        model_from_adapter(load_adapter(p), tiny_encoder("bert"))


def test_atomic_save_leaves_no_partial_directory(tmp_path, monkeypatch):
    import adaptermix.artefact as art

    def boom(*a, **k):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(art, "save_file", boom)
    with pytest.raises(RuntimeError):
        make_adapter(tmp_path / "a", tiny_encoder("bert"))
    assert list(tmp_path.iterdir()) == []
