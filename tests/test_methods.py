"""Invariants of every adapter method on every supported architecture (tiny random-init models)."""

from __future__ import annotations

import pytest
import torch

from adaptermix.artefact import (
    AdapterMeta,
    load_adapter,
    model_from_adapter,
    new_model,
    save_adapter,
    task_to_dict,
)
from adaptermix.data.schema import Example, TaskInfo
from adaptermix.methods import METHODS, MethodConfig
from adaptermix.model import HeadConfig
from adaptermix.training.batching import collate, tokenize
from adaptermix.training.loop import task_loss
from tiny import ARCHS, tiny_encoder

INFO = TaskInfo("toy", "single", "classification", ("neg", "pos"))
EXAMPLES = [Example("the movie was good", 1), Example("bad plot and awful acting", 0), Example("fun", 1)]
# every registered method except those with their own test module (AdaMix has extra routing state)
METHOD_NAMES = [m for m in METHODS.names() if METHODS.get(m).family in ("bottleneck", "lora")]


def _batch(arch: str) -> dict[str, torch.Tensor]:
    enc = tiny_encoder(arch)
    tset = tokenize(enc.tokenizer, EXAMPLES, 32, regression=False)
    return collate(tset, list(range(len(EXAMPLES))))


def _model(arch: str, method: str, **kw):
    return new_model(
        tiny_encoder(arch), MethodConfig(name=method, bottleneck_size=8, rank=2, **kw), HeadConfig(), INFO
    )


@pytest.fixture(params=ARCHS)
def arch(request):
    return request.param


@pytest.mark.parametrize("method", METHOD_NAMES)
def test_only_adapter_and_head_require_grad(arch, method):
    model = _model(arch, method)
    try:
        trainable = {n for n, p in model.named_parameters() if p.requires_grad}
        assert trainable, "nothing to train"
        assert all(n.startswith(("body.", "head.")) for n in trainable), trainable
        model.assert_frozen()
    finally:
        model.detach_body()


@pytest.mark.parametrize("method", METHOD_NAMES)
def test_zero_initialised_output_leaves_hidden_states_unchanged(arch, method):
    enc = tiny_encoder(arch)
    batch = _batch(arch)
    before = enc.model(**batch).last_hidden_state
    # Bottleneck adapters start as the identity only under init "mam" (zero up-projection); LoRA always does.
    model = _model(arch, method, **({"init": "mam"} if METHODS.get(method).family == "bottleneck" else {}))
    try:
        after = enc.model(**batch).last_hidden_state
        assert torch.equal(before, after)
        # ... and a non-zero output projection does change them (the hooks are live)
        with torch.no_grad():
            for _i, _s, mod in model.body.site_modules():
                for name, p in mod.named_parameters():
                    if name.startswith(("up.", "lora_B")):
                        p.normal_(0, 0.5)
        assert not torch.allclose(before, enc.model(**batch).last_hidden_state)
    finally:
        model.detach_body()
    assert torch.equal(before, enc.model(**batch).last_hidden_state), "detach must restore the encoder"


@pytest.mark.parametrize("method", METHOD_NAMES)
def test_save_load_gives_identical_logits(arch, method, tmp_path):
    enc = tiny_encoder(arch)
    batch = _batch(arch)
    model = _model(arch, method)
    with torch.no_grad():
        for p in model.body.parameters():
            p.normal_(0, 0.1)
    model.eval()
    logits = model(**batch)
    meta = AdapterMeta(
        method=MethodConfig(name=method, bottleneck_size=8, rank=2).model_dump(mode="json"),
        head=HeadConfig().model_dump(),
        base_model=AdapterMeta.describe_base(enc),
        task=task_to_dict(INFO),
    )
    save_adapter(tmp_path / "a", model.trainable_state(), meta)
    model.detach_body()
    loaded = model_from_adapter(load_adapter(tmp_path / "a"), enc)
    try:
        assert torch.equal(loaded(**batch), logits)
    finally:
        loaded.detach_body()


@pytest.mark.parametrize("method", METHOD_NAMES)
def test_one_step_changes_only_adapter_and_head(arch, method):
    enc = tiny_encoder(arch)
    batch = _batch(arch)
    labels = torch.tensor([e.label for e in EXAMPLES])
    model = _model(arch, method)
    try:
        before = {n: p.detach().clone() for n, p in model.named_parameters()}
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
        model.train()
        task_loss(model(**batch), labels, regression=False).backward()
        opt.step()
        changed = {n for n, p in model.named_parameters() if not torch.equal(before[n], p)}
        assert changed and all(n.startswith(("body.", "head.")) for n in changed), changed
        assert any(n.startswith("body.") for n in changed)
        assert not any(n.startswith("encoder_model.") for n in changed)
        # the encoder's own weights are untouched
        assert enc.fingerprint == __import__("adaptermix").backbone.fingerprint_model(enc.model)
    finally:
        model.detach_body()


def test_shared_init_seed_gives_identical_initial_adapters():
    a, b = _model("bert", "houlsby", init_seed=7), _model("bert", "houlsby", init_seed=7)
    c = _model("bert", "houlsby", init_seed=8)
    try:
        sa, sb, sc = a.body.state_dict(), b.body.state_dict(), c.body.state_dict()
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
        assert not all(torch.equal(sa[k], sc[k]) for k in sa)
    finally:
        for m in (a, b, c):
            m.detach_body()


def test_presets_fill_fields_and_explicit_values_win():
    cfg = MethodConfig.model_validate({"preset": "houlsby-64"})
    assert (cfg.name, cfg.bottleneck_size) == ("houlsby", 64)
    cfg = MethodConfig.model_validate({"preset": "pfeiffer-256", "bottleneck_size": 32})
    assert (cfg.name, cfg.bottleneck_size) == ("pfeiffer", 32)
    assert MethodConfig.model_validate({"preset": "lora-r4"}).rank == 4
