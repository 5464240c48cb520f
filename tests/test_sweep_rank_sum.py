"""Rank-growing LoRA rules (``cat``, ``knots``) in sweeps: a live LoRA of rank N r, mixtures zero-padded.

Exactness is checked at the model level: the sweep's live model after a trial gives the logits of the
same mixture written as an artefact by ``mix_pool`` (a LoRA of rank k r); padded ordinary mixtures give
the logits of the unpadded live model.
"""

from __future__ import annotations

import pytest
import torch
import yaml

from adaptermix.deltas import AdapterDelta
from adaptermix.errors import ConfigError
from adaptermix.evaluations.registry import EVALUATION_KINDS
from adaptermix.merging import MERGE_RULES
from adaptermix.merging.lora import pad_lora_rank, rank_padding_index, summed_rank_layout
from adaptermix.methods.lora import LoRA
from adaptermix.mixture import mix_pool
from adaptermix.pool import load_pool
from adaptermix.sweep.live import LiveModel
from adaptermix.sweep.runner import SweepContext, evaluate_group, run_sweep
from adaptermix.sweep.spec import RuleSpec, SweepSpec, load_spec
from adaptermix.sweep.store import ResultsStore
from adaptermix.training.batching import collate
from helpers import TOY_SENTIMENT, make_adapter, toy_data
from tiny import tiny_encoder

NAMES = ["alpha", "beta", "gamma"]
RULES = {"cat": {"normalize": True}, "knots": {"inner": "ties", "density": 0.5}}


@pytest.fixture(scope="module")
def enc():
    return tiny_encoder("bert")


@pytest.fixture(scope="module")
def pool(tmp_path_factory, enc):
    root = tmp_path_factory.mktemp("pool")
    return [str(make_adapter(root / n, enc, method="lora", seed=i, scale=0.3, info=TOY_SENTIMENT, data=toy_data()))
            for i, n in enumerate(NAMES)]


def _spec(pool, rules, **extra):
    return SweepSpec(pool=tuple(pool), rules=rules, subsets={"generator": "all"}, **extra)


def _logits(model, es, n=6):
    batch = collate(es.tokens, list(range(min(n, len(es.examples)))))
    with torch.inference_mode():
        return model(**batch).float()


def _trial(ctx, target, subset, rule, params=None):
    return ctx.spec.trial(target, tuple(subset), RuleSpec(name=rule, params=params or {}), "clean")


# -- padding ---------------------------------------------------------------------------------------------
def test_padding_keeps_the_update_and_the_other_tensors(pool):
    layout = load_pool(pool).stacked.layout
    big = summed_rank_layout(layout, 3)
    vec = torch.randn(layout.size)
    padded = pad_lora_rank(vec, layout, big)
    assert padded.shape == (big.size,) and int(torch.count_nonzero(padded)) == int(torch.count_nonzero(vec))
    small, large = AdapterDelta.unflatten(vec, layout), AdapterDelta.unflatten(padded, big)
    site = "layers.0.query"
    torch.testing.assert_close(large.tensors[f"{site}.lora_B"] @ large.tensors[f"{site}.lora_A"],
                               small.tensors[f"{site}.lora_B"] @ small.tensors[f"{site}.lora_A"])
    r = layout.shapes[layout.names.index(f"{site}.lora_A")][0]
    torch.testing.assert_close(large.tensors[f"{site}.lora_A"][:r], small.tensors[f"{site}.lora_A"])
    assert torch.all(large.tensors[f"{site}.lora_A"][r:] == 0) and torch.all(large.tensors[f"{site}.lora_B"][:, r:] == 0)
    assert torch.equal(rank_padding_index(layout, layout), torch.arange(layout.size))
    with pytest.raises(ConfigError, match="cannot pad tensor .* into"):
        rank_padding_index(big, layout)


# -- sweeps ----------------------------------------------------------------------------------------------
def test_a_sweep_runs_cat_and_knots(pool, enc, tmp_path):
    spec = _spec(pool, [{"name": "average"}, {"name": "cat", "params": RULES["cat"]},
                        {"name": "knots", "params": RULES["knots"]}])
    store = tmp_path / "r.sqlite"
    summary = run_sweep(spec, store, encoder=enc, progress=False)
    with ResultsStore(store, readonly=True) as s:
        rows = s.rows()
    assert summary.ran == len(rows) == 3 * 3 * 4  # 3 rules x 3 targets x 4 subsets holding the target
    assert all(r["metric"] is not None for r in rows)
    for r in rows:  # a rank-growing mixture has no sign change against the target's rank-r factors
        if r["rule"] in RULES:
            assert r["target_sign_change"] is None
        elif r["k"] > 1:
            assert r["target_sign_change"] is not None


def test_the_live_model_has_rank_n_r_at_the_pools_scale(pool, enc):
    meta = load_pool(pool).adapters[0].meta.method
    ctx = SweepContext.prepare(_spec(pool, [{"name": "cat"}]), enc)
    try:
        mods = [m for m in ctx.live.model.body.modules() if isinstance(m, LoRA)]
        assert mods and all(m.lora_A.shape[0] == 3 * meta["rank"] for m in mods)
        assert all(m.scale == pytest.approx(meta["alpha"] / meta["rank"]) for m in mods)
    finally:
        ctx.close()
    plain = SweepContext.prepare(_spec(pool, [{"name": "average"}]), enc)  # no rank_sum rule: the pool's rank
    try:
        assert plain.live.layout is plain.pool.stacked.layout
    finally:
        plain.close()


@pytest.mark.parametrize("rule", ["cat", "knots"])
@pytest.mark.parametrize("subset", [("alpha", "beta"), ("alpha", "beta", "gamma")])
def test_a_sweep_mixture_is_the_mix_pool_artefact(pool, enc, rule, subset):
    """The live model after the trial gives the artefact's logits and metric (k = 2 pads, k = N fills)."""
    ctx = SweepContext.prepare(_spec(pool, [{"name": rule, "params": RULES[rule]}]), enc)
    try:
        [result] = evaluate_group(ctx, [_trial(ctx, "alpha", subset, rule, RULES[rule])])
        es = ctx.eval_set("alpha")
        swept = _logits(ctx.live.model, es)
    finally:
        ctx.close()
    sub = load_pool([p for p, n in zip(pool, NAMES, strict=True) if n in subset])
    art = mix_pool(sub, rule, target="alpha", **RULES[rule])
    assert art.meta.method["rank"] == len(subset) * sub.adapters[0].meta.method["rank"]
    live = LiveModel.of_adapter(enc, art)
    try:
        torch.testing.assert_close(swept, _logits(live.model, es), atol=1e-5, rtol=1e-4)
        metric = EVALUATION_KINDS.get("clean").run(live.model, es, {}, "artefact", 32).metric
    finally:
        live.close()
    assert result.metric == pytest.approx(metric, abs=1e-9)
    single = LiveModel.of_adapter(enc, sub.adapters[sub.index("alpha")])
    try:  # not a trivial agreement: the mixture's logits are not the target adapter's
        assert (swept - _logits(single.model, es)).abs().max() > 1e-3
    finally:
        single.close()


@pytest.mark.parametrize("rule", ["average", "ties", "svd"])
def test_padded_ordinary_rules_give_the_unpadded_logits(pool, enc, rule):
    logits, metrics = [], []
    for rules in ([{"name": rule}], [{"name": rule}, {"name": "cat"}]):
        ctx = SweepContext.prepare(_spec(pool, rules), enc)
        try:
            [res] = evaluate_group(ctx, [_trial(ctx, "beta", ("alpha", "beta", "gamma"), rule)])
            logits.append(_logits(ctx.live.model, ctx.eval_set("beta")))
            metrics.append(res.metric)
        finally:
            ctx.close()
    assert MERGE_RULES.get("cat").rank_sum
    torch.testing.assert_close(logits[1], logits[0], atol=1e-5, rtol=1e-4)
    assert metrics[1] == pytest.approx(metrics[0], abs=1e-9)


def test_fgsm_and_adaptive_run_on_the_padded_live_model(pool, enc, tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump({"pool": pool, "evaluations": ["clean", "fgsm"], "rules": [
        {"name": "average"}, {"name": "cat"}], "subsets": {"generator": "adaptive", "budget": 3}}))
    store = tmp_path / "a.sqlite"
    run_sweep(load_spec(path), store, encoder=enc, progress=False)
    with ResultsStore(store, readonly=True) as s:
        rows = s.rows()
    assert rows and all(r["metric"] is not None for r in rows)
    assert {r["evaluation"] for r in rows} == {"clean", "fgsm"}


def test_sweeps_refuse_rank_growing_rules_on_non_lora_pools(enc, tmp_path):
    dirs = [str(make_adapter(tmp_path / n, enc, seed=i)) for i, n in enumerate(["a", "b"])]
    with pytest.raises(ConfigError, match="merge rule 'cat' merges LoRA adapters, but these have no") as err:
        SweepContext.prepare(SweepSpec(pool=tuple(dirs), rules=[{"name": "cat"}]), enc)
    assert "\n" not in str(err.value)


def test_a_bf16_live_buffer_takes_padded_mixtures_rounded_once(pool, enc):
    p = load_pool(pool)
    live = LiveModel.build(enc, p.adapters[0], p.stacked.layout, dtype=torch.bfloat16, rank_slots=3)
    try:
        vec = p.flat[1]
        live.write(torch.ones(live.layout.size))  # a full-rank mixture first: the next write leaves no residue
        live.write(vec, p.stacked.layout)
        want = pad_lora_rank(vec, p.stacked.layout, live.layout).to(torch.bfloat16)
        assert live.buffer.dtype == torch.bfloat16 and torch.equal(live.buffer, want)
        with pytest.raises(Exception, match="pass its layout"):
            live.write(vec)
    finally:
        live.close()
