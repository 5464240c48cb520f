"""``method.init``: bottleneck init schemes (AdapterHub's bert / mam / houlsby), LoRA's peft init, legacy artefacts."""

from __future__ import annotations

import json
import warnings

import pytest
import torch

from adaptermix.artefact import load_adapter, new_model
from adaptermix.data.schema import TaskInfo
from adaptermix.errors import ConfigError
from adaptermix.methods import MethodConfig
from adaptermix.methods.bottleneck import HOULSBY_STD
from adaptermix.model import HeadConfig
from adaptermix.pool import load_pool
from helpers import make_adapter
from tiny import tiny_encoder

INFO_A = TaskInfo("a", "single", "classification", ("neg", "pos"))
INFO_B = TaskInfo("b", "single", "classification", ("x", "y", "z"))


def _body(method: str = "pfeiffer", info: TaskInfo = INFO_A, **kw: object) -> dict[str, torch.Tensor]:
    model = new_model(tiny_encoder("bert"), MethodConfig(name=method, bottleneck_size=8, **kw), HeadConfig(), info)
    try:
        return {k: v.clone() for k, v in model.body.state_dict().items()}
    finally:
        model.detach_body()


def _of(body: dict[str, torch.Tensor], suffix: str) -> list[torch.Tensor]:
    return [v for k, v in body.items() if k.endswith(suffix)]


def test_bottleneck_default_is_bert_and_lora_keeps_peft() -> None:
    assert MethodConfig().init == "bert"
    assert MethodConfig(name="houlsby").init == "bert"
    assert MethodConfig(name="adamix").init == "bert"
    assert MethodConfig(name="lora").init == "peft"
    assert MethodConfig.model_validate({"preset": "lora-r4"}).init == "peft"


def test_lora_rejects_a_bottleneck_init_and_bottleneck_rejects_peft() -> None:
    with pytest.raises(ConfigError, match="LoRA keeps peft's init"):
        MethodConfig(name="lora", init="bert")
    with pytest.raises(ConfigError, match="is LoRA's"):
        MethodConfig(name="pfeiffer", init="peft")


@pytest.mark.parametrize("method", ["pfeiffer", "houlsby"])
def test_bert_init_draws_both_projections_from_the_shared_seed(method: str) -> None:
    a = _body(method, INFO_A, init="bert", init_seed=3)
    b = _body(method, INFO_B, init="bert", init_seed=3)  # another domain (other labels), same init seed
    c = _body(method, INFO_A, init="bert", init_seed=4)
    ups = _of(a, "up.weight")
    assert ups and all(bool((u != 0).all()) for u in ups)
    assert all(abs(float(u.std()) - 0.02) < 0.005 for u in ups + _of(a, "down.weight"))
    assert all(bool((t == 0).all()) for t in _of(a, ".bias"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), "two domains must start identical"
    assert not torch.equal(_of(a, "up.weight")[0], _of(c, "up.weight")[0])


def test_mam_init_has_zero_up_projection_and_the_old_down_draw() -> None:
    body = _body("pfeiffer", init="mam", init_seed=5)
    assert all(bool((u == 0).all()) for u in _of(body, "up.weight"))
    # Bit for bit the pre-`init` draw: one N(0, 0.02) down-projection per site, in layer order.
    gen = torch.Generator().manual_seed(5)
    for down in _of(body, "down.weight"):
        assert torch.equal(down, torch.randn(down.shape, generator=gen) * 0.02)


def test_houlsby_init_is_truncated_small_normal() -> None:
    body = _body("pfeiffer", init="houlsby")
    for w in _of(body, "up.weight") + _of(body, "down.weight"):
        assert bool((w != 0).any()) and float(w.abs().max()) <= 2 * HOULSBY_STD
    assert all(bool((t == 0).all()) for t in _of(body, ".bias"))


def test_adamix_honours_init_and_matches_the_plain_bottleneck() -> None:
    plain = _body("houlsby", init="bert", init_seed=2)
    mix = _body("adamix", init="bert", init_seed=2)
    for name, t in plain.items():
        if name.endswith("weight"):
            for expert in mix[name]:
                assert torch.equal(expert, t)
    assert all(bool((u == 0).all()) for u in _of(_body("adamix", init="mam"), "up.weight"))


def test_artefact_without_init_loads_as_mam(tmp_path) -> None:
    path = make_adapter(tmp_path / "old", tiny_encoder("bert"))
    meta = json.loads((path / "adapter.json").read_text())
    assert meta["method"]["init"] == "bert"  # written by today's code
    del meta["method"]["init"]
    (path / "adapter.json").write_text(json.dumps(meta))
    assert load_adapter(path).meta.method_config.init == "mam"
    lora = make_adapter(tmp_path / "lora", tiny_encoder("bert"), method="lora")
    meta = json.loads((lora / "adapter.json").read_text())
    del meta["method"]["init"]
    (lora / "adapter.json").write_text(json.dumps(meta))
    assert load_adapter(lora).meta.method_config.init == "peft"


def test_pool_of_different_inits_mixes_with_a_warning(tmp_path) -> None:
    enc = tiny_encoder("bert")
    a = make_adapter(tmp_path / "a", enc, init="bert")
    b = make_adapter(tmp_path / "b", enc, seed=1, init="mam")
    with pytest.warns(UserWarning, match="initialised differently"):
        pool = load_pool([a, b])
    assert pool.inits == {"a": "bert", "b": "mam"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_pool([a, make_adapter(tmp_path / "c", enc, seed=2)])
