"""Device selection: ``auto`` / ``cpu`` / ``cuda[:N]``, from an argument or ``$ADAPTERMIX_DEVICE``."""

from __future__ import annotations

import pytest
import torch

from adaptermix.artefact import load_adapter, model_from_adapter
from adaptermix.device import resolve_device
from adaptermix.errors import ResourceError
from helpers import TOY_SENTIMENT, make_adapter, toy_data
from tiny import tiny_encoder


def test_explicit_and_env(monkeypatch):
    monkeypatch.delenv("ADAPTERMIX_DEVICE", raising=False)
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device() == torch.device("cuda" if torch.cuda.is_available() else "cpu")
    monkeypatch.setenv("ADAPTERMIX_DEVICE", "CPU")
    assert resolve_device() == torch.device("cpu")


def test_bad_device_is_one_line():
    with pytest.raises(ResourceError, match=r"^unknown device 'gpu0'; valid: auto, cpu, cuda, cuda:N$"):
        resolve_device("gpu0")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without a GPU")
def test_cuda_without_gpu_is_one_line():
    with pytest.raises(ResourceError, match=r"^device 'cuda:1' requested but no CUDA GPU is visible"):
        resolve_device("cuda:1")


def test_model_parts_follow_the_encoder(tmp_path):
    enc = tiny_encoder("bert")
    make_adapter(tmp_path / "a", enc, seed=0, info=TOY_SENTIMENT, data=toy_data())
    model = model_from_adapter(load_adapter(tmp_path / "a"), enc)
    assert model.device == enc.device == torch.device("cpu")
    assert {p.device for p in model.parameters()} == {enc.device}
    model.detach_body()
