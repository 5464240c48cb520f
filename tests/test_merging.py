"""Merge rules: invariants over every registered rule, plus rule-specific checks against the papers."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from adaptermix.deltas import (
    AdapterDelta,
    bottleneck_shapes,
    lora_shapes,
    mean_of,
    random_delta,
    stack,
    to_dw,
)
from adaptermix.diagnostics import fsd_matrix_flat
from adaptermix.errors import ConfigError, IncompatibleAdaptersError
from adaptermix.merging import (
    MERGE_RULES,
    average_lora_dw,
    check_mixable,
    greedy_selection,
    merge,
    merge_flat,
    mix_heads,
    rule_table,
)
from adaptermix.merging.steps import dare_drop, generalized_merge, magnitude_trim
from adaptermix.pruning import magnitude_prune
from adaptermix.registry import UnknownNameError

SHAPES = bottleneck_shapes(n_layers=3, hidden=6, bottleneck=3)
# LoRA-only rules (``needs_lora``: peft's svd family, cat, knots) get LoRA pools; every other rule the
# bottleneck pools (tests/test_merging_lora_rules.py checks that the LoRA rules refuse those).
LORA_SHAPES = lora_shapes(n_layers=2, hidden=6, rank=2)
RULES = MERGE_RULES.names()
# Parameters that make each rule *select* or *sparsify* on a pool of 5, so invariants exercise that code.
ACTIVE_PARAMS: dict[str, dict[str, Any]] = {
    "greedy_fsd": {"l": 3},
    "greedy_fsd_max": {"l": 3},
    "sparse_fsd": {"l": 3, "m": 1, "s": 0.5},
    "sce": {"select_topk": 0.5},
}


def _target(name: str, keys: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """``target=`` for a per-domain rule (``needs_target``): the smallest key, whatever the order given."""
    return {"target": min(keys)} if MERGE_RULES.get(name).needs_target else {}


def _base(name: str, size: int) -> dict[str, Any]:
    """``base=`` for a rule defined on task vectors (``needs_base``): a zero base, so the rows given are the
    task vectors themselves and the result is the merged task vector, comparable with the rows (x + 0 = x
    exactly). test_base_rules.py checks a nonzero base."""
    return {"base": torch.zeros(size)} if MERGE_RULES.get(name).needs_base else {}


def _shapes(name: str | None = None) -> dict[str, tuple[int, ...]]:
    """The adapter shapes a rule is tested on: LoRA pairs for a LoRA-only rule, a bottleneck otherwise."""
    return LORA_SHAPES if name is not None and MERGE_RULES.get(name).needs_lora else SHAPES


def _pool(n: int = 5, seed: int = 0, name: str | None = None) -> list[AdapterDelta]:
    return [random_delta(_shapes(name), seed + i) for i in range(n)]


def _stacked(n: int = 5, name: str | None = None):
    return stack(_pool(n, name=name), [f"d{i}" for i in range(n)])


def _is_zero_adapter(name: str, out: torch.Tensor, layout) -> bool:
    """Zero as an adapter: every entry, or for a rank-growing LoRA rule (cat, knots, whose concatenated
    factors stay non-zero while their product cancels) every update B A."""
    if not MERGE_RULES.get(name).rank_sum:
        return int(torch.count_nonzero(out)) == 0
    delta = AdapterDelta.unflatten(out, MERGE_RULES.get(name).output_layout(layout, 2))
    return all(float(t.abs().max()) < 1e-6 for t in to_dw(delta, 1.0).tensors.values())


def test_every_rule_is_documented() -> None:
    assert {"average", "task_arithmetic", "ties", "dare_linear", "dare_ties"} <= set(RULES)
    assert {"greedy_fsd", "greedy_fsd_max", "sparse_fsd"} <= set(RULES)
    for row in rule_table():
        # rules defined on task vectors only (needs_base) say so; every other rule merges raw parameters
        space = "task vectors" if row["needs_base"] else "raw parameters"
        assert row["reference"] and row["description"] and row["space"] == space


@pytest.mark.parametrize("name", RULES)
def test_single_adapter_is_identity(name: str) -> None:
    rule = MERGE_RULES.get(name)
    if rule.identity_params is None:
        pytest.skip(f"{name} declares no identity setting")
    a = random_delta(_shapes(name), 7)
    extra = {**_target(name, ["a"]), **_base(name, a.layout.size)}
    out = merge(name, stack([a], ["a"]), **extra, **rule.identity_params)
    assert out.allclose(a, atol=0, rtol=0)


@pytest.mark.parametrize("name", RULES)
def test_mixing_copies_returns_the_adapter(name: str) -> None:
    """average of [A, A] is A, for every idempotent rule (exact under its identity parameters)."""
    rule = MERGE_RULES.get(name)
    if not rule.idempotent or rule.identity_params is None:
        pytest.skip(f"{name} is not idempotent (e.g. a sum)")
    a = random_delta(_shapes(name), 3)
    extra = {**_target(name, ["a", "b"]), **_base(name, a.layout.size)}
    out = merge(name, stack([a, a * 1.0], ["a", "b"]), **extra, **rule.identity_params)
    assert out.allclose(a, atol=1e-7, rtol=0)


@pytest.mark.parametrize("name", [n for n in RULES if "weights" in MERGE_RULES.get(n).params])
def test_opposite_weights_of_one_adapter_cancel(name: str) -> None:
    """Weights [1, -1] of the same adapter give zero, at the rule's default (possibly random) parameters."""
    a = random_delta(_shapes(name), 4)  # the layout, which every caller passes, serves the per-tensor rules
    out = merge_flat(name, a.flatten()[None], [0, 0], layout=a.layout, weights=[1.0, -1.0])
    assert _is_zero_adapter(name, out, a.layout)


@pytest.mark.parametrize("name", RULES)
def test_permutation_invariance(name: str) -> None:
    """Exactly invariant: rules see a canonical order, DARE masks are seeded by adapter name."""
    stacked = _stacked(name=name)
    params = {
        **ACTIVE_PARAMS.get(name, {}), **_target(name, stacked.names), **_base(name, stacked.layout.size),
    }
    reference = merge(name, stacked, **params).flatten()
    for perm in ([4, 2, 0, 1, 3], [1, 0, 3, 4, 2]):
        assert torch.equal(merge(name, stacked.select(perm), **params).flatten(), reference)


@pytest.mark.parametrize("name", [n for n in RULES if "weights" in MERGE_RULES.get(n).params])
def test_weights_follow_their_adapters_under_permutation(name: str) -> None:
    stacked, weights = _stacked(name=name), [0.5, 2.0, 1.0, -1.0, 3.0]
    reference = merge(name, stacked, weights=weights).flatten()
    perm = [3, 0, 4, 2, 1]
    permuted = merge(name, stacked.select(perm), weights=[weights[i] for i in perm]).flatten()
    assert torch.equal(permuted, reference)


@pytest.mark.parametrize("name", RULES)
def test_merge_flat_matches_merge_and_uses_pool_fsd(name: str) -> None:
    stacked = _stacked(name=name)
    idx = [4, 1, 2]
    params = {
        **ACTIVE_PARAMS.get(name, {}), **_target(name, [stacked.names[i] for i in idx]),
        **_base(name, stacked.layout.size),
    }
    expected = merge(name, stacked.select(idx), **params).flatten()
    fsd = fsd_matrix_flat(stacked.matrix)
    got = merge_flat(name, stacked.matrix, idx, layout=stacked.layout, keys=stacked.names, fsd=fsd, **params)
    assert torch.equal(got, expected)


@pytest.mark.parametrize("weights", [None, [0.5, -2.0, 1.0]])
def test_fused_linear_rules_equal_the_generalized_pipeline(weights: list[float] | None) -> None:
    x = _stacked(3).matrix
    for name, aggregate in (("average", "mean"), ("task_arithmetic", "sum")):
        fused = merge_flat(name, x, [0, 1, 2], weights=weights)
        assert torch.allclose(
            fused, generalized_merge(x, ("0", "1", "2"), aggregate=aggregate, weights=weights)
        )


def test_average_is_eq1_mean_and_weighted_mean() -> None:
    pool = _pool(3)
    stacked = stack(pool, ["a", "b", "c"])
    assert merge("average", stacked).allclose(sum(pool) / 3)
    assert merge("average", stacked, weights=[1, 2, 1]).allclose(mean_of(pool, [1, 2, 1]))
    assert merge("task_arithmetic", stacked, lam=0.5).allclose(sum(pool) * 0.5)


def test_unknown_rule_and_parameter_are_one_line_errors() -> None:
    with pytest.raises(UnknownNameError, match="unknown merge rule 'soup'; valid: average"):
        merge("soup", _stacked())
    with pytest.raises(
        ConfigError, match="unknown parameter 'density' for merge rule 'average'; valid: weights"
    ):
        merge("average", _stacked(), density=0.5)
    with pytest.raises(ConfigError, match="weights has 2 values for 5 adapters"):
        merge("average", _stacked(), weights=[1, 2])
    with pytest.raises(ConfigError, match=r"l must be an integer in \[1, 5\]"):
        merge("greedy_fsd", _stacked(), l=6)
    with pytest.raises(ConfigError, match="unknown sign consensus 'vote'"):
        merge("ties", _stacked(), consensus="vote")


def test_ties_with_agreeing_signs_and_full_density_is_the_mean() -> None:
    signs = torch.sign(torch.randn(40))
    x = signs * (torch.rand(4, 40) + 0.1)
    assert torch.allclose(merge_flat("ties", x, range(4), density=1.0), x.mean(0))


def test_ties_matches_hand_computation() -> None:
    # Yadav et al. 2023: trim (density 1 here), elect sign by summed mass, mean over agreeing entries.
    x = torch.tensor([[1.0, -2.0, 3.0, 0.0], [2.0, 1.0, -1.0, 0.0], [-4.0, 2.0, -1.0, 5.0]])
    out = merge_flat("ties", x, range(3), density=1.0)
    # column 0: sum -1 -> "-": only -4; column 1: sum 1 -> "+": (1 + 2) / 2; column 2: sum 1 -> "+": 3;
    # column 3: only 5.
    assert torch.allclose(out, torch.tensor([-4.0, 1.5, 3.0, 5.0]))
    trimmed = magnitude_trim(x, ("a", "b", "c"), density=0.5, p=0.0, seed=0)
    assert torch.equal(torch.count_nonzero(trimmed, dim=1), torch.tensor([2, 2, 2]))


def test_dare_drops_rescales_and_is_seeded() -> None:
    x = torch.randn(2, 20000)
    out = dare_drop(x, ("a", "b"), density=1.0, p=0.75, seed=1)
    kept = out != 0
    assert abs(kept.float().mean().item() - 0.25) < 0.02
    assert torch.allclose(out[kept], (x * 4)[kept])
    assert torch.equal(out, dare_drop(x, ("a", "b"), density=1.0, p=0.75, seed=1))
    assert not torch.equal(out, dare_drop(x, ("a", "b"), density=1.0, p=0.75, seed=2))
    assert not torch.equal(kept[0], kept[1])  # each adapter gets its own mask
    # unbiased: the mean over seeds approaches x
    mean = torch.stack([dare_drop(x[:, :200], ("a", "b"), 1.0, 0.5, s) for s in range(400)]).mean(0)
    assert (mean - x[:, :200]).abs().mean() < 0.1
    with pytest.raises(ConfigError, match=r"drop probability p must be in \[0, 1\), got 1.0"):
        dare_drop(x, ("a", "b"), density=1.0, p=1.0, seed=0)


def _pool_with_outlier() -> tuple[torch.Tensor, list[str]]:
    base = torch.sign(torch.randn(60))
    agree = base * (torch.rand(3, 60) + 0.1)
    flip = agree[0] * torch.where(torch.arange(60) % 3 == 0, -1.0, 1.0)  # one third of the signs flipped
    opposite = -base * (torch.rand(60) + 0.1)
    return torch.cat([agree, flip[None], opposite[None]]), ["a", "b", "c", "d", "e"]


def test_greedy_fsd_selects_smallest_and_max_selects_largest_mean_fsd() -> None:
    x, names = _pool_with_outlier()
    assert torch.allclose(merge_flat("greedy_fsd", x, range(5), keys=names, l=3), x[:3].mean(0))
    assert torch.equal(merge_flat("greedy_fsd_max", x, range(5), keys=names, l=1), x[4])
    assert torch.allclose(merge_flat("greedy_fsd", x, range(5), keys=names), x.mean(0))  # l=None: all


def test_greedy_selection_names() -> None:
    from adaptermix.deltas import ParamLayout, StackedDeltas

    x, names = _pool_with_outlier()
    stacked = StackedDeltas(x, ParamLayout(("layers.0.attn.up.bias",), ((60,),)), tuple(names))
    assert greedy_selection(stacked, 3) == ("a", "b", "c")
    assert greedy_selection(stacked, 2, largest=True) == ("d", "e")


def test_rule_selection_keeps_the_target() -> None:
    from adaptermix.deltas import ParamLayout, StackedDeltas
    from adaptermix.merging import rule_selection

    x, names = _pool_with_outlier()
    stacked = StackedDeltas(x, ParamLayout(("layers.0.attn.up.bias",), ((60,),)), tuple(names))
    assert rule_selection("greedy_fsd", stacked, 2) == ("a", "b")  # Alg. 1 alone drops the outlier e
    assert rule_selection("greedy_fsd", stacked, 2, keep="e") == ("a", "e")  # e plus its best partner
    assert rule_selection("greedy_fsd_max", stacked, 2, keep="a") == ("a", "e")
    assert rule_selection("average", stacked, 2, keep="e") == tuple(names)  # not a selecting rule
    with pytest.raises(ConfigError, match="target 'z' is not one of"):
        rule_selection("greedy_fsd", stacked, 2, keep="z")


def test_sparse_fsd_prunes_the_most_conflicting_layer() -> None:
    shapes = bottleneck_shapes(n_layers=2, hidden=4, bottleneck=2, sites=("attn",))
    a = random_delta(shapes, 0)
    b = AdapterDelta({n: (t if n.startswith("layers.0") else -t) * 0.5 for n, t in a.tensors.items()})
    stacked = stack([a, b], ["a", "b"])
    out = merge("sparse_fsd", stacked, m=1, s=1.0)
    layer0 = [n for n in a.tensors if n.startswith("layers.0")]
    layer1 = [n for n in a.tensors if n.startswith("layers.1")]
    assert all(torch.allclose(out.tensors[n], (a.tensors[n] + b.tensors[n]) / 2) for n in layer0)
    assert all(torch.count_nonzero(out.tensors[n]) == 0 for n in layer1)  # conflicting layer pruned away


def test_sparse_fsd_pruning_everything_equals_mean_of_per_layer_pruned() -> None:
    pool = _pool(3)
    out = merge("sparse_fsd", stack(pool, ["a", "b", "c"]), s=0.6)
    expected = sum(magnitude_prune(d, 0.6, scope="per_layer") for d in pool) / 3
    assert out.allclose(expected)


def test_alg4_with_m_prunes_exactly_the_chosen_layers_and_records_them() -> None:
    from adaptermix.merging.fsd_rules import sparse_fsd_record

    shapes = bottleneck_shapes(n_layers=3, hidden=6, bottleneck=3, sites=("attn",))
    a = random_delta(shapes, 0)
    # b and c disagree in sign with a on layer 2 only: for every adapter, layer 2 is the most conflicting.
    b = AdapterDelta({n: (-t if n.startswith("layers.2") else t) * 0.7 for n, t in a.tensors.items()})
    c = AdapterDelta({n: (-t if n.startswith("layers.2") else t) * 1.3 for n, t in a.tensors.items()})
    stacked = stack([a, b, c], ["a", "b", "c"])
    out = merge("sparse_fsd", stacked, m=1, s=0.5)
    mean = merge("average", stacked)
    pruned = {n for n in out.tensors if not torch.equal(out.tensors[n], mean.tensors[n])}
    assert pruned and all(n.startswith("layers.2") for n in pruned), "only the chosen layer is pruned"
    record = sparse_fsd_record(stacked.matrix, [0, 1, 2], ["a", "b", "c"], stacked.layout, None, {"m": 1, "s": 0.5})
    assert record == {"mixed_adapters": ["a", "b", "c"], "pruned_groups": {n: ["layers.2"] for n in "abc"}}
    every = sparse_fsd_record(stacked.matrix, [0, 1, 2], ["a", "b", "c"], stacked.layout, None, {"s": 0.5})
    assert every["pruned_groups"]["a"] == ["layers.0", "layers.1", "layers.2"]


def test_sparse_fsd_adapter_scope_keeps_exactly_the_top_fraction_overall() -> None:
    shapes = bottleneck_shapes(n_layers=2, hidden=6, bottleneck=3, sites=("attn",))
    d = random_delta(shapes, 3)
    d = AdapterDelta({n: t * (10.0 if n.startswith("layers.1") else 1.0) for n, t in d.tensors.items()})
    flat = d.flatten()
    out = merge("sparse_fsd", stack([d], ["a"]), s=0.75, scope="adapter").flatten()
    n_keep = round(0.25 * flat.numel())
    assert int(torch.count_nonzero(out)) == n_keep
    top = torch.topk(flat.abs(), n_keep).indices
    assert torch.equal(out[top], flat[top]), "the kept parameters are the largest |w| of the whole adapter"
    assert torch.equal(out, magnitude_prune(flat, 0.75, scope="global"))
    per_layer = merge("sparse_fsd", stack([d], ["a"]), s=0.75).flatten()
    assert not torch.equal(per_layer, out)  # per-layer keeps 25 % of the small layer 0 as well
    with pytest.raises(ConfigError, match="unknown pruning scope 'model'"):
        merge("sparse_fsd", stack([d], ["a"]), s=0.75, scope="model")


def test_merge_keeps_space_and_needs_layout_for_sparse_fsd() -> None:
    lora = [random_delta(lora_shapes(2, 4, 2), i) for i in range(3)]
    dw_stack = stack([to_dw(d, 2.0) for d in lora], ["a", "b", "c"])
    assert merge("average", dw_stack).space == "dw"
    with pytest.raises(ConfigError, match="needs the adapters' parameter layout"):
        merge_flat("sparse_fsd", dw_stack.matrix, [0, 1])


def test_average_lora_dw_is_exact_mean_of_effective_updates() -> None:
    lora = [random_delta(lora_shapes(2, 5, 2), i) for i in range(3)]
    mixed = average_lora_dw(lora, alpha_over_r=2.0)
    assert mixed.tensors["layers.0.query.lora_A"].shape == (6, 5)  # rank k * r
    assert mixed.tensors["layers.0.query.lora_B"].shape == (5, 6)
    dense = merge("average", stack([to_dw(d, 2.0) for d in lora], ["a", "b", "c"]))
    assert to_dw(mixed, 2.0).allclose(dense, atol=1e-6)
    for site in ("layers.1.value", "layers.0.query"):
        products = [2.0 * d.tensors[f"{site}.lora_B"] @ d.tensors[f"{site}.lora_A"] for d in lora]
        assert torch.allclose(to_dw(mixed, 2.0).tensors[f"{site}.dW"], sum(products) / 3, atol=1e-6)
    # averaging the factors (Eq. 1 on raw parameters) is a different adapter
    raw = merge("average", stack(lora, ["a", "b", "c"]))
    assert not to_dw(raw, 2.0).allclose(dense, atol=1e-3)


def test_average_lora_dw_weights_and_different_scales_and_ranks() -> None:
    small = random_delta(lora_shapes(1, 4, 1), 0)
    big = random_delta(lora_shapes(1, 4, 3), 1)
    mixed = average_lora_dw([small, big], alpha_over_r=[1.0, 0.5], weights=[3, 1], out_alpha_over_r=2.0)
    expected = (to_dw(small, 1.0) * 0.75) + (to_dw(big, 0.5) * 0.25)
    assert to_dw(mixed, 2.0).allclose(expected, atol=1e-6)
    with pytest.raises(ConfigError, match="different alpha/r"):
        average_lora_dw([small, big], alpha_over_r=[1.0, 0.5])
    wrong = random_delta(lora_shapes(1, 5, 1), 2)
    with pytest.raises(IncompatibleAdaptersError, match="incompatible"):
        average_lora_dw([small, wrong], 1.0)


def test_mix_heads() -> None:
    heads = [{"head.weight": torch.full((2, 3), float(i))} for i in range(3)]
    same = [("neg", "pos")] * 3
    assert torch.equal(mix_heads(heads, same, "target", target=2)["head.weight"], heads[2]["head.weight"])
    assert torch.equal(mix_heads(heads, same, "average")["head.weight"], torch.ones(2, 3))
    with pytest.raises(IncompatibleAdaptersError, match="label sets differ"):
        mix_heads(heads, [("neg", "pos"), ("pos", "neg"), ("neg", "pos")], "average")
    with pytest.raises(ConfigError, match="unknown head mode 'vote'"):
        mix_heads(heads, same, "vote")


def test_check_mixable_names_the_difference() -> None:
    pool = _pool(2)
    check_mixable(["a", "b"], pool, [{"method": "houlsby"}, {"method": "houlsby"}])
    with pytest.raises(IncompatibleAdaptersError) as err:
        check_mixable(["a", "b"], pool, [{"method": "houlsby"}, {"method": "lora"}])
    assert str(err.value) == "adapters 'a' and 'b' have different method: 'houlsby' vs 'lora'"


def test_merge_steps_declare_their_parameters_and_get_only_those(monkeypatch: pytest.MonkeyPatch) -> None:
    """A step's parameters are its keyword-only arguments; a new one is an edit of that step alone."""
    from adaptermix.merging import steps

    assert steps.step_parameters(steps.trim_magnitude) == ("density",)
    assert steps.step_parameters(steps.drop_random) == ("p", "seed")
    assert steps.step_parameters(steps.keep_all) == ()
    seen: dict[str, object] = {}

    def clip(x: torch.Tensor, keys: object, *, bound: float = 1.0) -> torch.Tensor:
        seen["bound"] = bound
        return x.clamp(-bound, bound)

    monkeypatch.setitem(steps.SPARSIFIERS, "clip", clip)
    x = torch.tensor([[3.0, -0.5], [1.0, -4.0]])
    out = generalized_merge(x, ("a", "b"), sparsify="clip", bound=2.0, density=0.5, p=0.1)
    assert seen == {"bound": 2.0} and torch.equal(out, torch.tensor([1.5, -1.25]))
    with pytest.raises(ConfigError, match="unknown merge step parameter 'nope'"):
        generalized_merge(x, ("a", "b"), nope=1)
