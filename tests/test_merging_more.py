"""The mergekit and FusionBench ports: hand-checked cases, seeding, parameter errors, the sweep path.

The invariants every registered rule gets (identity, permutation invariance, ...) are in test_merging.py;
here each rule is checked on tiny tensors whose expected values are worked out independently (by hand,
or by a plain formula that does not call the rule's code).
"""

from __future__ import annotations

import math

import pytest
import torch

from adaptermix.deltas import AdapterDelta, bottleneck_shapes, lora_shapes, random_delta, stack
from adaptermix.errors import ConfigError
from adaptermix.merging import MERGE_RULES, merge, merge_flat
from adaptermix.merging.mergekit_rules import della_keep_probabilities, della_sparsify, outlier_mask
from adaptermix.merging.subspace_rules import iso_cts_split, tsv_matrix

NEW_RULES = (
    "breadcrumbs",
    "breadcrumbs_ties",
    "della",
    "della_linear",
    "sce",
    "karcher",
    "multislerp",
    "tsv_m",
    "iso_c",
    "iso_cts",
)


def _mix(rule: str, adapters: list[dict[str, torch.Tensor]], **params: object) -> dict[str, torch.Tensor]:
    """Merge adapters given as {tensor name: tensor} dicts (names a0, a1, ... keep the given order)."""
    stacked = stack([AdapterDelta(a) for a in adapters], [f"a{i}" for i in range(len(adapters))])
    return merge(rule, stacked, **params).tensors


def _t(*values: float) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32)


# -- registry and the sweep path --------------------------------------------------------------------
def test_every_new_rule_is_registered_with_reference_and_params() -> None:
    for name in NEW_RULES:
        rule = MERGE_RULES.get(name)
        assert rule.reference and rule.description and rule.space == "raw parameters"


@pytest.mark.parametrize("name", NEW_RULES)
def test_each_rule_runs_through_merge_flat_on_a_small_pool(name: str) -> None:
    shapes = bottleneck_shapes(n_layers=2, hidden=8, bottleneck=4)
    pool = stack([random_delta(shapes, i) for i in range(4)], ["d0", "d1", "d2", "d3"])
    out = merge_flat(name, pool.matrix, [3, 0, 2], layout=pool.layout, keys=pool.names)
    assert out.shape == (pool.layout.size,) and out.dtype == torch.float32 and bool(out.isfinite().all())
    assert torch.equal(out, merge_flat(name, pool.matrix, [3, 0, 2], layout=pool.layout, keys=pool.names))
    with pytest.raises(ConfigError, match=f"merge rule '{name}' needs the adapters' parameter layout"):
        merge_flat(name, pool.matrix, [0, 1])


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("breadcrumbs", {"density": 0.0}, r"density must be in \(0, 1\], got 0.0"),
        ("breadcrumbs_ties", {"density": 1.5}, r"density must be in \(0, 1\], got 1.5"),
        ("breadcrumbs", {"gamma": -0.1}, r"gamma must be in \[0, 1\], got -0.1"),
        ("breadcrumbs", {"normalize": "yes"}, "normalize must be true or false, got 'yes'"),
        ("della", {"density": 2}, r"density must be in \(0, 1\], got 2"),
        (
            "della",
            {"epsilon": 0.6},
            "epsilon must be >= 0 with density - epsilon > 0 and density \\+ epsilon < 1",
        ),
        ("della_linear", {"epsilon": -0.1}, "epsilon must be >= 0"),
        ("della_linear", {"rescale": "l3"}, "unknown DELLA rescale 'l3'; valid: inverse, l1, none"),
        ("della", {"consensus": "vote"}, "unknown sign consensus 'vote'"),
        ("sce", {"select_topk": 0.0}, r"select_topk must be in \(0, 1\], got 0.0"),
        ("karcher", {"max_iter": -1}, "max_iter must be an integer >= 0, got -1"),
        ("karcher", {"tol": 0.0}, "tol must be > 0, got 0.0"),
        ("multislerp", {"eps": -1.0}, "eps must be > 0, got -1.0"),
        ("multislerp", {"weights": [1.0, 2.0]}, "weights has 2 values for 3 adapters"),
        ("tsv_m", {"alpha": "big"}, "alpha must be a finite number, got 'big'"),
        ("iso_c", {"alpha": float("nan")}, "alpha must be a finite number, got nan"),
        ("iso_cts", {"common_space_fraction": 1.2}, r"common_space_fraction must be in \[0, 1\], got 1.2"),
        ("sce", {"density": 0.5}, "unknown parameter 'density' for merge rule 'sce'; valid: select_topk"),
    ],
)
def test_bad_parameters_are_one_line_config_errors(
    name: str, params: dict[str, object], message: str
) -> None:
    shapes = bottleneck_shapes(n_layers=1, hidden=4, bottleneck=2)
    pool = stack([random_delta(shapes, i) for i in range(3)], ["a", "b", "c"])
    with pytest.raises(ConfigError, match=message) as err:
        merge(name, pool, **params)
    assert "\n" not in str(err.value)


# -- Model Breadcrumbs --------------------------------------------------------------------------------
def test_outlier_mask_drops_the_top_gamma_then_the_smallest() -> None:
    mags = _t(5, 1, 9, 3, 7, 2, 10, 4, 8, 6)[None]  # ranks 1..10 scrambled
    # density 0.7, gamma 0.1, n 10: keep 7, drop the largest 1 (10) and the smallest 2 (1, 2)
    kept = mags[outlier_mask(mags, 0.7, 0.1)]
    assert sorted(kept.tolist()) == [3, 4, 5, 6, 7, 8, 9]
    # gamma * n < 1: mergekit's indices[n_bot:-0] would keep nothing; here the 9 largest stay
    assert sorted(mags[outlier_mask(mags, 0.9, 0.01)].tolist()) == [2, 3, 4, 5, 6, 7, 8, 9, 10]
    # density + gamma > 1: fewer large entries go (n_top = 10 - 9 = 1), none of the small ones
    assert sorted(mags[outlier_mask(mags, 0.9, 0.5)].tolist()) == [1, 2, 3, 4, 5, 6, 7, 8, 9]


def test_breadcrumbs_is_per_tensor_then_mean_or_sum() -> None:
    a = {"w": _t(1, -2, 3, -4, 5), "b": _t(100, 200, -300, 400, 500)}
    b = {"w": _t(-5, 4, -3, 2, -1), "b": _t(0.1, 0.2, 0.3, 0.4, 0.5)}
    # density 0.6 (keep 3 of 5), gamma 0.2 (drop the largest 1, then the smallest 1), each tensor alone
    sa = {"w": _t(0, -2, 3, -4, 0), "b": _t(0, 200, -300, 400, 0)}
    sb = {"w": _t(0, 4, -3, 2, 0), "b": _t(0, 0.2, 0.3, 0.4, 0)}
    out = _mix("breadcrumbs", [a, b], density=0.6, gamma=0.2)
    for n in ("w", "b"):
        assert torch.allclose(out[n], (sa[n] + sb[n]) / 2)
    summed = _mix("breadcrumbs", [a, b], density=0.6, gamma=0.2, normalize=False, weights=[1.0, 3.0])
    for n in ("w", "b"):  # mergekit's default: the weighted sum
        assert torch.allclose(summed[n], sa[n] + 3 * sb[n])


def test_breadcrumbs_ties_elects_signs_after_sparsifying() -> None:
    a = {"w": _t(1, -2, 3, -4, 5)}
    b = {"w": _t(-5, 4, -3, 2, -1)}
    c = {"w": _t(2, 2, 2, 2, 2)}
    # sparsified (density 0.6, gamma 0.2): a [0,-2,3,-4,0], b [0,4,-3,2,0], c keeps 3 equal entries:
    # stable order puts the lower index first, so the "largest" is index 4 and the "smallest" index 0
    # -> c [0,2,2,2,0]. Column sums: [0, 4, 2, 0, 0] -> signs [0, +, +, 0, 0].
    out = _mix("breadcrumbs_ties", [a, b, c], density=0.6, gamma=0.2)["w"]
    assert torch.allclose(out, _t(0, (4 + 2) / 2, (3 + 2) / 2, 0, 0))


# -- DELLA --------------------------------------------------------------------------------------------
def test_della_keep_probabilities_follow_magnitude_rank_per_row() -> None:
    # one row [3, -1, 2]: ranks by |x| 3, 1, 2 -> normalised 1, 0, 0.5 -> p = 0.4 + r * 0.2
    p = della_keep_probabilities(_t(3, -1, 2)[None], density=0.5, epsilon=0.1)
    assert torch.allclose(p, _t(0.6, 0.4, 0.5)[None])
    # a matrix is ranked row by row (mergekit dim=1); a one-entry row gets the density
    m = torch.tensor([[[1.0, 4.0], [9.0, -2.0]]])
    assert torch.allclose(della_keep_probabilities(m, 0.5, 0.1), torch.tensor([[[0.4, 0.6], [0.6, 0.4]]]))
    assert torch.allclose(
        della_keep_probabilities(torch.tensor([[[7.0], [1.0]]]), 0.3, 0.1), torch.full((1, 2, 1), 0.3)
    )


def test_della_drops_rescales_and_is_seeded_per_adapter() -> None:
    shapes = {"b": (40,), "w": (50, 40)}  # layout order: b (a 1-D row), then w (50 rows of 40)
    x = torch.stack([random_delta(shapes, i).flatten() for i in range(3)])
    layout = random_delta(shapes).layout
    keys = ("a", "b", "c")
    out = della_sparsify(x, keys, layout, density=0.4, epsilon=0.1, rescale="inverse", seed=3)
    kept = out != 0
    assert abs(kept.float().mean().item() - 0.4) < 0.02
    probs = torch.cat(
        [
            della_keep_probabilities(x[:, :40], 0.4, 0.1),
            della_keep_probabilities(x[:, 40:].reshape(3, 50, 40), 0.4, 0.1).reshape(3, -1),
        ],
        dim=1,
    )
    assert torch.allclose(out[kept], (x / probs)[kept])  # survivors divided by their keep probability
    big = x.abs() > x.abs().median()
    assert kept[big].float().mean() > kept[~big].float().mean() + 0.05  # large entries survive more often
    assert torch.equal(out, della_sparsify(x, keys, layout, 0.4, 0.1, "inverse", seed=3))
    assert not torch.equal(out, della_sparsify(x, keys, layout, 0.4, 0.1, "inverse", seed=4))
    assert not torch.equal(kept[0], kept[1])  # each adapter draws its own mask
    # adapter a's mask depends on (seed, "a") only, not on its row or its companions
    alone = della_sparsify(x[[0]], ("a",), layout, 0.4, 0.1, "inverse", seed=3)
    assert torch.equal(alone[0], out[0])
    # l1 keeps every tensor's L1 norm (mergekit's current rescale); none leaves survivors as they were
    l1 = della_sparsify(x, keys, layout, 0.4, 0.1, "l1", seed=3)
    for part in (slice(0, 40), slice(40, None)):
        assert torch.allclose(l1[:, part].abs().sum(1), x[:, part].abs().sum(1), rtol=1e-5)
    plain = della_sparsify(x, keys, layout, 0.4, 0.1, "none", seed=3)
    assert torch.equal(plain[kept], x[kept]) and torch.equal(plain != 0, kept)


def test_della_inverse_rescale_is_unbiased() -> None:
    x = torch.randn(1, 300)
    layout = AdapterDelta({"v": torch.zeros(300)}).layout
    mean = torch.stack([della_sparsify(x, ("a",), layout, 0.5, 0.2, "inverse", s) for s in range(400)]).mean(
        0
    )
    assert (mean - x).abs().mean() < 0.1


def test_della_and_della_linear_aggregate_like_ties_and_mean() -> None:
    a, b = {"w": _t(1, -2, 3, 4)}, {"w": _t(3, 2, -1, 4)}
    # density 1: no drop (mergekit returns the tensors) -> della is TIES' disjoint mean, della_linear the mean
    assert torch.allclose(_mix("della", [a, b], density=1.0)["w"], _t(2, 0, 3, 4))
    assert torch.allclose(_mix("della_linear", [a, b], density=1.0)["w"], _t(2, 0, 1, 4))
    assert torch.allclose(
        _mix("della_linear", [a, b], density=1.0, normalize=False, lam=0.5)["w"], _t(2, 0, 1, 4)
    )


# -- SCE ----------------------------------------------------------------------------------------------
def test_sce_matches_hand_computation() -> None:
    a, b = {"w": _t(1, 2)}, {"w": _t(3, -2)}
    # weights: mean squares 2.5 and 6.5 -> 2.5/9, 6.5/9. Column 0 agrees: (1*2.5 + 3*6.5) / 9 = 22/9.
    # Column 1 sums to 0: mergekit elects "+", so only a's 2 remains.
    assert torch.allclose(_mix("sce", [a, b])["w"], _t(22 / 9, 2))
    # select_topk 0.5: variances 1 and 4 -> only column 1 is kept; weights 0.5 / 0.5; column 0 is 0
    assert torch.allclose(_mix("sce", [a, b], select_topk=0.5)["w"], _t(0, 2))


def test_sce_weights_each_tensor_on_its_own() -> None:
    a = {"u": _t(1, 1), "v": _t(10, 10)}
    b = {"u": _t(3, 3), "v": _t(20, 20)}
    out = _mix("sce", [a, b])
    # u: weights 1/10, 9/10 -> 0.1 * 1 + 0.9 * 3 = 2.8; v: 100/500, 400/500 -> 0.2 * 10 + 0.8 * 20 = 18
    assert torch.allclose(out["u"], _t(2.8, 2.8)) and torch.allclose(out["v"], _t(18, 18))


# -- karcher and multislerp ------------------------------------------------------------------------
def test_karcher_is_the_arc_length_mean_on_the_circle() -> None:
    # directions 0, 0 and 90 degrees: the Karcher mean is 30 degrees (the normalised linear mean would be
    # atan(1/2) = 26.6 degrees); norms 1, 2, 3 -> mean norm 2
    adapters = [{"v": _t(1, 0)}, {"v": _t(2, 0)}, {"v": _t(0, 3)}]
    out = _mix("karcher", adapters)["v"]
    assert torch.allclose(out, _t(2 * math.cos(math.pi / 6), 2 * math.sin(math.pi / 6)), atol=1e-6)
    # a zero adapter leaves the direction alone but counts in the mean norm (mergekit: all norms)
    with_zero = _mix("karcher", [{"v": _t(1, 0)}, {"v": _t(0, 3)}, {"v": _t(0, 0)}])["v"]
    assert torch.allclose(with_zero, (4 / 3) * _t(1, 1) / math.sqrt(2), atol=1e-6)
    # tensor by tensor: each tensor has its own direction and norm
    two = _mix("karcher", [{"p": _t(1, 0), "q": _t(0, 0, 5)}, {"p": _t(0, 1), "q": _t(0, 0, 1)}])
    assert torch.allclose(two["p"], _t(1, 1) / math.sqrt(2), atol=1e-6)
    assert torch.allclose(two["q"], _t(0, 0, 3), atol=1e-6)


def test_multislerp_matches_hand_computation() -> None:
    adapters = [{"v": _t(1, 0)}, {"v": _t(2, 0)}, {"v": _t(0, 3)}]
    # the tangent average at the weighted mean direction vanishes, so the result is that direction,
    # (2, 1) / sqrt(5), times the weighted mean norm 2
    assert torch.allclose(_mix("multislerp", adapters)["v"], 2 * _t(2, 1) / math.sqrt(5), atol=1e-6)
    # weights [1, 1, 2] (normalised to 1/4, 1/4, 1/2): direction (1, 1) / sqrt(2), norm (1 + 2 + 6) / 4
    weighted = _mix("multislerp", adapters, weights=[1, 1, 2])["v"]
    assert torch.allclose(weighted, 2.25 * _t(1, 1) / math.sqrt(2), atol=1e-6)


def test_multislerp_antipodal_inputs() -> None:
    # two antipodal tensors: mergekit falls back to the linear mix (here zero)
    assert torch.count_nonzero(_mix("multislerp", [{"v": _t(1, 2)}, {"v": _t(-1, -2)}])["v"]) == 0
    # three zero tensors: zero (mergekit raises for more than two inputs)
    zeros = _mix("multislerp", [{"v": _t(0, 0)}] * 3)["v"]
    assert torch.count_nonzero(zeros) == 0
    with pytest.raises(ConfigError, match="weighted mean direction of tensor 'v' is zero"):
        _mix("multislerp", [{"v": _t(1, 0)}, {"v": _t(-1, 0)}, {"v": _t(0, 1)}], weights=[1, 1, 0])


# -- TSV-M, Iso-C, Iso-CTS ----------------------------------------------------------------------------
def _polar_by_eigh(m: torch.Tensor) -> torch.Tensor:
    """M (M^T M)^(-1/2), computed without an SVD (full column rank)."""
    evals, evecs = torch.linalg.eigh(m.T @ m)
    return m @ evecs @ torch.diag(evals.rsqrt()) @ evecs.T


def test_tsv_m_keeps_each_adapters_top_direction() -> None:
    # k = 2, 2x2: each adapter keeps 1 singular triplet; A's (3, e1, e1) and B's (2, e2, e2) are already
    # orthogonal, so the result is diag(3, 2) (the sum would be diag(3, 3), the mean diag(1.5, 1.5))
    a = {"w": torch.diag(_t(3, 1)), "b": _t(1, 2)}
    b = {"w": torch.diag(_t(0, 2)), "b": _t(3, 4)}
    out = _mix("tsv_m", [a, b])
    assert torch.allclose(out["w"], torch.diag(_t(3, 2)), atol=1e-6)
    assert torch.allclose(out["b"], _t(2, 3))  # 1-D tensors: the mean
    assert torch.allclose(_mix("tsv_m", [a, b], alpha=0.5)["w"], torch.diag(_t(1.5, 1)), atol=1e-6)


def test_tsv_m_orthogonalises_overlapping_directions() -> None:
    # A = 2 e1 e1^T, B = u e2^T with u = (1, 1) / sqrt(2): U blocks [e1, u] overlap; V blocks [e1, e2] do not
    u = _t(1, 1) / math.sqrt(2)
    a = {"w": 2 * torch.outer(_t(1, 0), _t(1, 0))}
    b = {"w": torch.outer(u, _t(0, 1))}
    expected = (
        _polar_by_eigh(torch.stack([_t(1, 0), u], dim=1).double())
        @ torch.diag(torch.tensor([2.0, 1.0])).double()
    )
    assert torch.allclose(_mix("tsv_m", [a, b])["w"].double(), expected, atol=1e-6)


def test_tsv_m_component_budget() -> None:
    # k > min(m, n): no component per adapter, the matrix merges to zero (FusionBench's int(r / k))
    t = torch.randn(3, 2, 5, dtype=torch.float64)
    assert torch.count_nonzero(tsv_matrix(t)) == 0
    # 49 adapters, r = 49: one component each (FusionBench's int(49 * (1 / 49)) would give 0)
    many = torch.randn(49, 49, 49, dtype=torch.float64)
    assert torch.linalg.matrix_rank(tsv_matrix(many)) == 49


def test_iso_c_flattens_the_spectrum_of_the_sum() -> None:
    rot = torch.tensor([[0.6, -0.8], [0.8, 0.6]])
    q = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    a = {"w": rot @ torch.diag(_t(3, 0)) @ q.T, "b": _t(1, 1)}
    b = {"w": rot @ torch.diag(_t(1, 2)) @ q.T, "b": _t(3, 5)}
    # sum = rot diag(4, 2) q^T -> mean singular value 3 -> 3 rot q^T; biases averaged
    out = _mix("iso_c", [a, b])
    assert torch.allclose(out["w"], 3 * rot @ q.T, atol=1e-6)
    assert torch.allclose(out["b"], _t(2, 3))
    assert torch.allclose(_mix("iso_c", [a, b], alpha=0.5)["w"], 1.5 * rot @ q.T, atol=1e-6)


def test_iso_cts_adds_task_specific_directions() -> None:
    # 3x3, k = 2, fraction 0.34: common int(3 * 0.34) = 1, one direction per adapter.
    # Sum diag(5, 1, 2): common direction e1. A minus its e1 part: diag(0, 1, 0) -> e2 (s = 1);
    # B = diag(0, 0, 2) -> e3 (s = 2). Blocks [e2, e3, e1] are orthonormal; spectrum mean (1 + 2 + 5) / 3.
    a = {"w": torch.diag(_t(5, 1, 0))}
    b = {"w": torch.diag(_t(0, 0, 2))}
    out = _mix("iso_cts", [a, b], common_space_fraction=0.34)["w"]
    assert torch.allclose(out, (8 / 3) * torch.eye(3), atol=1e-6)
    # Iso-C on the same pair sees only the sum's spectrum: mean (5 + 2 + 1) / 3 on its own basis
    assert torch.allclose(_mix("iso_c", [a, b])["w"], (8 / 3) * torch.eye(3), atol=1e-6)
    # fraction 1: the whole space is common, so Iso-CTS is Iso-C
    c = {"w": torch.randn(4, 3)}
    d = {"w": torch.randn(4, 3)}
    assert torch.allclose(
        _mix("iso_cts", [c, d], common_space_fraction=1.0)["w"], _mix("iso_c", [c, d])["w"], atol=1e-5
    )


def test_iso_cts_split_sizes() -> None:
    assert iso_cts_split(64, 13, 0.8) == (51, 1)  # int(51.2) common, round(13 / 13) = 1 per adapter
    assert iso_cts_split(3, 2, 0.34) == (1, 1)
    assert iso_cts_split(3, 5, 0.8) == (3, 0)  # round(1 / 5) = 0: all common
    assert iso_cts_split(3, 2, 0.0) == (1, 1)  # round(1.5) * 2 = 4 > 3: rounded down instead


def test_subspace_rules_on_lora_factors_and_one_adapter() -> None:
    lora = [random_delta(lora_shapes(1, 6, 2), i) for i in range(3)]
    stacked = stack(lora, ["a", "b", "c"])
    out = merge("tsv_m", stacked)
    # rank-2 factors with 3 adapters: int(2 / 3) = 0 components each, every factor merges to zero
    assert all(torch.count_nonzero(t) == 0 for t in out.tensors.values())
    assert merge("tsv_m", stack(lora[:1], ["a"]), alpha=2.0).allclose(lora[0] * 2.0, atol=0, rtol=0)
    iso = merge("iso_c", stack(lora[:1], ["a"]))
    assert not iso.allclose(lora[0], atol=1e-3)  # Iso-C flattens even one adapter's spectrum
