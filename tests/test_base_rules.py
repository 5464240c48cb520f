"""mergekit's base-relative rules (model_stock, ram, ramplus_tl): hand-checked values, the base contract.

The invariants every registered rule gets are in test_merging.py (with a zero base for these rules);
agreement with mergekit itself is in tests/reference/ (``make test-reference``).
"""

from __future__ import annotations

import math

import pytest
import torch
import yaml

from adaptermix.deltas import AdapterDelta, stack
from adaptermix.errors import ConfigError
from adaptermix.merging import MERGE_RULES, merge, merge_flat
from adaptermix.mixture import mix_pool
from adaptermix.pool import load_pool
from adaptermix.sweep.runner import SweepContext, run_sweep
from adaptermix.sweep.spec import SweepSpec, load_spec
from adaptermix.sweep.store import ResultsStore
from helpers import TOY_SENTIMENT, make_adapter, toy_data
from tiny import tiny_encoder

BASE_RULES = ("model_stock", "ram", "ramplus_tl")


def _t(*values: float) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32)


def _mix(
    rule: str,
    taus: list[dict[str, torch.Tensor]],
    base: dict[str, torch.Tensor] | None = None,
    **params: object,
) -> dict[str, torch.Tensor]:
    """Merge task vectors given as {tensor: value} dicts (names a0, a1, ... keep the order); base 0 unless
    given."""
    stacked = stack([AdapterDelta(t) for t in taus], [f"a{i}" for i in range(len(taus))])
    flat_base = torch.zeros(stacked.layout.size) if base is None else AdapterDelta(base).flatten()
    return merge(rule, stacked, base=flat_base, **params).tensors


def _stock_t(cos: float, k: int) -> float:
    return k * cos / (1 + (k - 1) * cos)


# -- the base contract --------------------------------------------------------------------------------
@pytest.mark.parametrize("name", BASE_RULES)
def test_rules_declare_task_vectors_and_refuse_without_a_base(name: str) -> None:
    rule = MERGE_RULES.get(name)
    assert rule.needs_base and rule.space == "task vectors"
    x = torch.randn(3, 6)
    with pytest.raises(
        ConfigError,
        match=f"merge rule '{name}' is defined on task vectors: it needs the pool's shared init as base",
    ):
        merge_flat(name, x, [0, 1, 2])


def test_other_rules_do_not_need_a_base() -> None:
    assert not any(MERGE_RULES.get(n).needs_base for n in ("average", "ties", "emr", "tsv_m", "karcher"))


def test_model_stock_with_a_base_is_mergekits_weight_space_formula() -> None:
    """rows tau = w - b, base b: b + t * mean(tau) = t * mean(w) + (1 - t) * b (mergekit's return value)."""
    b = _t(3.0, -1.0)
    w = [b + _t(1.0, 0.0), b + _t(1.0, 1.0)]
    t = _stock_t(1 / math.sqrt(2), 2)
    expected = t * (w[0] + w[1]) / 2 + (1 - t) * b
    out = _mix("model_stock", [{"m": w[0] - b}, {"m": w[1] - b}], base={"m": b})["m"]
    assert torch.allclose(out, expected, atol=1e-6)


# -- model_stock ----------------------------------------------------------------------------------------
def test_model_stock_hand_values() -> None:
    # orthogonal offsets: cos 0, t 0 -> the base (task vector 0)
    assert torch.equal(_mix("model_stock", [{"m": _t(1, 0)}, {"m": _t(0, 2)}])["m"], _t(0, 0))
    # three parallel offsets: cos 1, t = 3 / 3 = 1 -> their mean
    out = _mix("model_stock", [{"m": _t(1, 2)}, {"m": _t(2, 4)}, {"m": _t(3, 6)}])["m"]
    assert torch.allclose(out, _t(2, 4), atol=1e-6)
    # opposite offsets: 1 + (k-1) cos = 0, the singularity -> t 0, mergekit keeps the base
    assert torch.equal(_mix("model_stock", [{"m": _t(1, -1)}, {"m": _t(-1, 1)}])["m"], _t(0, 0))
    # three offsets, pairwise cosines 0, 0, 1/sqrt(2): cos = mean, t = 3c / (1 + 2c)
    taus = [_t(1, 0, 0), _t(0, 1, 0), _t(0, 1, 1)]
    c = (0 + 0 + 1 / math.sqrt(2)) / 3
    out = _mix("model_stock", [{"m": v} for v in taus])["m"]
    assert torch.allclose(out, _stock_t(c, 3) * sum(taus) / 3, atol=1e-6)


def test_model_stock_angles_are_per_tensor_and_filter_wise_per_row() -> None:
    a = {"w": torch.tensor([[1.0, 0.0], [1.0, 1.0]]), "b": _t(1, 0)}
    b = {"w": torch.tensor([[0.0, 1.0], [2.0, 2.0]]), "b": _t(2, 0)}
    whole = _mix("model_stock", [a, b])
    # bias: parallel, t 1 -> mean; matrix as one vector: cos = <a, b> / (|a| |b|) = 4 / (sqrt(3) sqrt(9))
    assert torch.allclose(whole["b"], _t(1.5, 0), atol=1e-6)
    c = 4 / (math.sqrt(3) * 3)
    assert torch.allclose(whole["w"], _stock_t(c, 2) * (a["w"] + b["w"]) / 2, atol=1e-6)
    rows = _mix("model_stock", [a, b], filter_wise=True)
    # row 0 orthogonal (t 0), row 1 parallel (t 1); the 1-D bias is one row, as without filter_wise
    assert torch.allclose(rows["w"], torch.tensor([[0.0, 0.0], [1.5, 1.5]]), atol=1e-6)
    assert torch.allclose(rows["b"], whole["b"])
    with pytest.raises(ConfigError, match="filter_wise must be true or false, got 'yes'"):
        _mix("model_stock", [a, b], filter_wise="yes")


def test_model_stock_single_adapter_and_zero_offsets() -> None:
    assert torch.equal(
        _mix("model_stock", [{"m": _t(1, -2)}])["m"], _t(1, -2)
    )  # t = 1 (deviation: mergekit refuses)
    # zero offsets: norms clamped, cos 0, t 0
    assert torch.equal(_mix("model_stock", [{"m": _t(0, 0)}, {"m": _t(0, 0)}])["m"], _t(0, 0))


# -- ram / ramplus_tl -----------------------------------------------------------------------------------
def test_ram_keeps_unique_and_averages_overlapping_entries() -> None:
    taus = [{"m": _t(1, 0, 2e-6, 3, 0)}, {"m": _t(0, 4, 0, 5, 0)}, {"m": _t(0, 0, 0, 7, -8)}]
    # entry 2: |2e-6| <= epsilon counts as unchanged (dropped); entry 3: three contributors
    assert torch.allclose(_mix("ram", taus)["m"], _t(1, 4, 0, 5, -8))
    # epsilon 0: entry 2 is kept
    assert torch.allclose(_mix("ram", taus, epsilon=0.0)["m"], _t(1, 4, 2e-6, 5, -8))
    # epsilon 3.5: entries with |x| <= 3.5 are dropped before counting
    assert torch.allclose(_mix("ram", taus, epsilon=3.5)["m"], _t(0, 4, 0, 6, -8))
    with pytest.raises(ConfigError, match="epsilon must be >= 0, got -1"):
        _mix("ram", taus, epsilon=-1)


def test_ramplus_tl_scales_unique_entries_by_the_tensor_local_overlap() -> None:
    # a0 changes entries 0, 1, 2; a1 changes 2, 3: overlap {2}. a0: 1 shared / 2 unique -> rho 0.5, clamped
    # to alpha 0.2 -> lambda 1.02; a1: 1 shared / 1 unique -> rho 1 -> 1.02 as well. With alpha 1: 1.05, 1.1.
    taus = [{"m": _t(1, 2, 3, 0)}, {"m": _t(0, 0, 5, 7)}]
    assert torch.allclose(_mix("ramplus_tl", taus)["m"], _t(1.02, 2.04, 4, 7 * 1.02))
    out = _mix("ramplus_tl", taus, alpha=1.0)["m"]
    assert torch.allclose(out, _t(1.05, 2.1, 4, 7.7))
    # r 0: plain RAM
    assert torch.allclose(_mix("ramplus_tl", taus, r=0.0)["m"], _mix("ram", taus)["m"])
    # a tensor where an adapter has no unique entry: lambda unused, no NaN even at epsilon 0
    same = [{"m": _t(1, 2)}, {"m": _t(3, 4)}]
    assert torch.allclose(_mix("ramplus_tl", same, epsilon=0.0)["m"], _t(2, 3))


# -- the callers enforce the task-vector space ----------------------------------------------------------
NAMES = ["alpha", "beta", "gamma"]


@pytest.fixture
def pool_dirs(tmp_path):
    enc = tiny_encoder("bert")
    return [
        str(make_adapter(tmp_path / "pool" / n, enc, seed=i, scale=0.3, info=TOY_SENTIMENT, data=toy_data()))
        for i, n in enumerate(NAMES)
    ]


def test_sweep_spec_needs_merge_space_tv_before_anything_loads() -> None:
    spec = SweepSpec(pool=["/nonexistent/a", "/nonexistent/b"], rules=[{"name": "model_stock"}])
    with pytest.raises(
        ConfigError, match="rule 'model_stock' is defined on task vectors: set merge_space: tv"
    ):
        SweepContext.prepare(spec)


def test_mix_pool_needs_space_tv_and_adds_the_init_back(pool_dirs) -> None:
    pool = load_pool({n: d for n, d in zip(NAMES, pool_dirs, strict=True)})
    with pytest.raises(ConfigError, match="rule 'ram' is defined on task vectors: use space 'tv'"):
        mix_pool(pool, "ram", target="alpha")
    from adaptermix.task_vectors import task_vectors

    tau, base = task_vectors(pool)
    mixed = mix_pool(pool, "model_stock", target="alpha", space="tv")
    expected = merge_flat(
        "model_stock", tau, [0, 1, 2], layout=pool.stacked.layout, keys=pool.names, base=base
    )
    want = AdapterDelta.unflatten(expected, pool.stacked.layout, pool.stacked.space).to_state_dict()
    assert want and all(torch.allclose(mixed.tensors[k], v) for k, v in want.items())


def test_base_rules_run_in_a_tv_sweep(pool_dirs, tmp_path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "pool": pool_dirs,
                "merge_space": "tv",
                "subsets": {"generator": "all", "ks": [3]},
                "rules": [{"name": "model_stock"}, {"name": "ram"}],
            }
        )
    )
    store = tmp_path / "r.sqlite"
    run_sweep(load_spec(path), store, encoder=tiny_encoder("bert"), progress=False)
    with ResultsStore(store, readonly=True) as s:
        rows = s.rows()
    assert len(rows) == 2 * 3 and all(r["metric"] is not None for r in rows)
