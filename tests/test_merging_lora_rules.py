"""peft's LoRA merge rules, KnOTS and magnitude_prune: against peft itself, and their own invariants.

The invariants every registered rule gets (identity, permutation, weights, merge_flat) run in
test_merging.py on LoRA pools for these rules; here: agreement with ``peft``'s ``add_weighted_adapter`` on
a tiny random-init BERT, the update-level properties (the SVD rules keep the update, cat is exact, KnOTS
with a plain sum is exact), factor-space merging, errors, and the rank-growing rules in ``mix``.
"""

from __future__ import annotations

import math

import pytest
import torch

from adaptermix.deltas import AdapterDelta, bottleneck_shapes, lora_shapes, random_delta, stack, to_dw
from adaptermix.errors import ConfigError
from adaptermix.merging import MERGE_RULES, average_lora_dw, merge, merge_flat

peft = pytest.importorskip("peft")

LORA_RULES = ("svd", "ties_svd", "dare_linear_svd", "dare_ties_svd", "magnitude_prune_svd", "cat", "knots")
NAMES = ("a", "b", "c")
RANK = 2


# -- peft: three LoRA adapters on a tiny random BERT ---------------------------------------------------
def _peft_model(alpha: float):
    """A tiny random BERT with LoRA adapters a, b, c (r=2 on query and value), random A and B factors."""
    from tiny import _build

    config = peft.LoraConfig(r=RANK, lora_alpha=alpha, target_modules=["query", "value"], lora_dropout=0.0)
    model = peft.get_peft_model(_build("bert"), config, adapter_name="a")
    for name in NAMES[1:]:
        model.add_adapter(name, config)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for key, param in model.named_parameters():
            if ".lora_" in key:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.5)
    return model


def _factors(model, adapter: str) -> dict[str, torch.Tensor]:
    """{layers.i.{query|value}.lora_{A|B}: tensor} of one peft adapter (the adaptermix naming)."""
    out = {}
    for key, param in model.named_parameters():
        marker = f".{adapter}.weight"
        if ".lora_" in key and key.endswith(marker):
            parts = key.split(".")
            layer = parts[parts.index("layer") + 1]
            site = "query" if ".query." in key else "value"
            ab = "A" if ".lora_A." in key else "B"
            out[f"layers.{layer}.{site}.lora_{ab}"] = param.detach().clone().float()
    return out


def _peft_merge(alpha: float, combination: str, weights: list[float], **kw: object) -> dict[str, torch.Tensor]:
    model = _peft_model(alpha)
    model.add_weighted_adapter(list(NAMES), weights, "m", combination_type=combination, **kw)
    return _factors(model, "m")  # peft's merged adapter has alpha = r: scale 1


def _pool(alpha: float):
    model = _peft_model(alpha)
    return stack([AdapterDelta(_factors(model, n)) for n in NAMES], list(NAMES))


def _updates(factors: dict[str, torch.Tensor], scale: float) -> dict[str, torch.Tensor]:
    return to_dw(AdapterDelta(factors), scale).tensors


def _assert_same_updates(ours: AdapterDelta, theirs: dict[str, torch.Tensor], scale: float) -> None:
    """Our merged LoRA under the pool's scale and peft's under scale 1 are the same update, module by module."""
    mine, peft_dw = _updates(ours.tensors, scale), _updates(theirs, 1.0)
    assert mine.keys() == peft_dw.keys()
    for name in mine:
        torch.testing.assert_close(mine[name], peft_dw[name], atol=2e-5, rtol=2e-5)


ALPHA = 8.0  # scale c = alpha / r = 4: checks that the scale cancels
SCALE = ALPHA / RANK


@pytest.mark.parametrize("weights", [[1.0, 1.0, 1.0], [0.7, -0.5, 2.0]])
def test_svd_matches_peft(weights: list[float]) -> None:
    ours = merge("svd", _pool(ALPHA), weights=weights)
    _assert_same_updates(ours, _peft_merge(ALPHA, "svd", weights), SCALE)


@pytest.mark.parametrize(
    ("rule", "params"),
    [
        ("ties_svd", {"density": 0.25}),
        ("ties_svd", {"density": 1.0}),
        ("magnitude_prune_svd", {"density": 0.25}),
        # peft's DARE draws from torch's global RNG, ours from (seed, adapter name): density 1 (no drop)
        # compares the deterministic rest of the pipeline (rescale 1 / density, sum or TIES)
        ("dare_linear_svd", {"density": 1.0}),
        ("dare_ties_svd", {"density": 1.0}),
    ],
)
def test_svd_family_matches_peft(rule: str, params: dict[str, float]) -> None:
    """Unit weights (see the module docstring of lora_rules: weighted TIES differs on purpose); 32 x 32
    updates, so density * n is an integer and peft's int() and our round() keep the same count."""
    ours = merge(rule, _pool(ALPHA), **params)
    peft_kw = {"density": params["density"]}
    _assert_same_updates(ours, _peft_merge(ALPHA, rule, [1.0, 1.0, 1.0], **peft_kw), SCALE)


def test_svd_clamp_matches_peft_at_alpha_equal_r() -> None:
    """peft clamps the factors of the scaled update; ours of the unscaled one: the same when alpha = r."""
    ours = merge("svd", _pool(float(RANK)), svd_clamp=0.9)
    theirs = _peft_merge(float(RANK), "svd", [1.0, 1.0, 1.0], svd_clamp=0.9)
    _assert_same_updates(ours, theirs, 1.0)
    unclamped = merge("svd", _pool(float(RANK)))
    assert not to_dw(unclamped, 1.0).allclose(to_dw(ours, 1.0), atol=1e-3)  # the clamp did something


@pytest.mark.parametrize("weights", [[1.0, 1.0, 1.0], [0.7, -0.5, 2.0]])
def test_cat_matches_peft_exactly(weights: list[float]) -> None:
    pool = _pool(ALPHA)
    ours = merge("cat", pool, weights=weights)
    theirs = _peft_merge(ALPHA, "cat", weights)
    assert ours.tensors["layers.0.query.lora_A"].shape == (3 * RANK, 32)
    _assert_same_updates(ours, theirs, SCALE)
    # and the exact sum of the scaled updates, with no truncation
    want = sum(w * to_dw(d, SCALE) for w, d in zip(weights, pool.unstack(), strict=True))
    assert to_dw(ours, SCALE).allclose(want, atol=1e-5)


def test_peft_factor_space_linear_is_task_arithmetic_with_sqrt_weights() -> None:
    """peft ``linear`` puts sqrt(w_i c) on A_i and on B_i and sets scale 1: our ``task_arithmetic`` of the
    raw factors with weights sqrt(w_i) gives factors sqrt(c) times smaller, the same adapter under scale c.
    That adapter is not the sum of the updates: (sum_i B_i)(sum_j A_j) keeps the cross terms B_i A_j."""
    weights = [0.5, 1.0, 2.0]
    pool = _pool(ALPHA)
    theirs = _peft_merge(ALPHA, "linear", weights)
    ours = merge("task_arithmetic", pool, weights=[math.sqrt(w) for w in weights])
    for name, tensor in ours.tensors.items():
        torch.testing.assert_close(tensor * math.sqrt(SCALE), theirs[name], atol=1e-5, rtol=1e-5)
    _assert_same_updates(ours, theirs, SCALE)
    exact = sum(w * to_dw(d, SCALE) for w, d in zip(weights, pool.unstack(), strict=True))
    assert not to_dw(ours, SCALE).allclose(exact, atol=1e-2)
    # cross terms, by hand for one module
    site = "layers.1.value"
    b = [pool.delta(i).tensors[f"{site}.lora_B"] for i in range(3)]
    a = [pool.delta(i).tensors[f"{site}.lora_A"] for i in range(3)]
    v = [math.sqrt(w) for w in weights]
    cross = sum(v[i] * v[j] * b[i] @ a[j] for i in range(3) for j in range(3) if i != j)
    torch.testing.assert_close(to_dw(ours, SCALE).tensors[f"{site}.dW"], exact.tensors[f"{site}.dW"] + SCALE * cross,
                               atol=1e-4, rtol=1e-4)


def test_peft_factor_space_magnitude_prune_is_ours_with_sqrt_weights() -> None:
    """peft ``magnitude_prune`` prunes each factor tensor, then weights as ``linear``: our generic
    ``magnitude_prune`` with weights sqrt(w_i) (A and B of 64 entries: density 0.25 keeps 16 in both)."""
    weights = [1.0, 0.25, 4.0]
    theirs = _peft_merge(ALPHA, "magnitude_prune", weights, density=0.25)
    ours = merge("magnitude_prune", _pool(ALPHA), weights=[math.sqrt(w) for w in weights], density=0.25)
    for name, tensor in ours.tensors.items():
        torch.testing.assert_close(tensor * math.sqrt(SCALE), theirs[name], atol=1e-5, rtol=1e-5)


# -- update-level properties ---------------------------------------------------------------------------
def _lora_stack(n: int = 3, rank: int = 2, hidden: int = 6):
    return stack([random_delta(lora_shapes(2, hidden, rank), i) for i in range(n)], [f"d{i}" for i in range(n)])


@pytest.mark.parametrize("rule", ["svd", "ties_svd", "dare_linear_svd", "dare_ties_svd", "magnitude_prune_svd"])
def test_svd_rules_keep_a_single_adapters_update_and_its_rank(rule: str) -> None:
    one = _lora_stack(1)
    params = {"density": 1.0} if "density" in MERGE_RULES.get(rule).params else {}
    out = merge(rule, one, **params)
    assert out.layout == one.layout
    assert to_dw(out, 1.0).allclose(to_dw(one.delta(0), 1.0), atol=1e-5)


def test_svd_is_the_best_rank_r_approximation_and_normalize_divides() -> None:
    stacked = _lora_stack(3)
    total = sum(to_dw(d, 1.0) for d in stacked.unstack())
    out = to_dw(merge("svd", stacked), 1.0)
    for name, m in total.tensors.items():
        u, s, vh = torch.linalg.svd(m.double())
        best = (u[:, :2] * s[:2]) @ vh[:2]
        torch.testing.assert_close(out.tensors[name].double(), best, atol=1e-5, rtol=1e-5)
    mean = to_dw(merge("svd", stacked, normalize=True), 1.0)
    assert mean.allclose(out / 3, atol=1e-5)
    low = merge("svd", stacked, svd_rank=1)
    assert int(torch.count_nonzero(low.tensors["layers.0.query.lora_A"][1])) == 0  # zero-padded to rank 2


def test_dare_svd_rules_are_seeded_by_adapter_name() -> None:
    stacked = _lora_stack(3)
    a = merge("dare_linear_svd", stacked, seed=1).flatten()
    assert torch.equal(a, merge("dare_linear_svd", stacked, seed=1).flatten())
    assert not torch.equal(a, merge("dare_linear_svd", stacked, seed=2).flatten())
    renamed = stack(stacked.unstack(), ["x0", "x1", "x2"])
    assert not torch.equal(a, merge("dare_linear_svd", renamed, seed=1).flatten())


def test_cat_normalized_is_the_exact_dw_average() -> None:
    stacked = _lora_stack(3)
    weights = [1.0, 2.0, 1.0]
    out = merge("cat", stacked, weights=weights, normalize=True)
    want = average_lora_dw(stacked.unstack(), 1.0, weights)
    assert out.allclose(want, atol=1e-7, rtol=0)


def test_knots_with_a_plain_sum_is_exact_and_ties_changes_it() -> None:
    stacked = _lora_stack(3)
    exact = sum(to_dw(d, 1.0) for d in stacked.unstack())
    summed = merge("knots", stacked, inner="task_arithmetic")
    assert summed.tensors["layers.0.query.lora_B"].shape == (6, 6)  # rank 3 * 2 (up to min(out, sum r))
    assert to_dw(summed, 1.0).allclose(exact, atol=1e-5)
    assert to_dw(merge("knots", stacked, inner="average"), 1.0).allclose(exact / 3, atol=1e-5)
    ties = to_dw(merge("knots", stacked), 1.0)
    assert not ties.allclose(exact / 3, atol=1e-3)
    copies = stack([stacked.delta(0), stacked.delta(0) * 1.0], ["a", "b"])  # ties of copies: the adapter
    assert to_dw(merge("knots", copies), 1.0).allclose(to_dw(stacked.delta(0), 1.0), atol=1e-5)


def test_knots_ties_matches_a_hand_computation_in_the_joint_basis() -> None:
    """One module: the joint SVD, S V_i per task, TIES (density 1: elect the sign, disjoint mean), U @ that."""
    shapes = lora_shapes(1, 5, 2, sites=("query",))
    deltas = [random_delta(shapes, i) for i in range(2)]
    m = [d.tensors["layers.0.query.lora_B"].double() @ d.tensors["layers.0.query.lora_A"].double() for d in deltas]
    u, s, vh = torch.linalg.svd(torch.cat(m, dim=1), full_matrices=False)
    u, s, vh = u[:, s > 1e-5], s[s > 1e-5], vh[s > 1e-5]
    sv = [s[:, None] * vh[:, i * 5 : (i + 1) * 5] for i in range(2)]
    y = torch.stack(sv)
    sign = torch.sign(y.sum(0))
    keep = (torch.sign(y) == sign) & (y != 0)
    merged = (y * keep).sum(0) / keep.sum(0).clamp(min=1)
    out = to_dw(merge("knots", stack(deltas, ["a", "b"])), 1.0).tensors["layers.0.query.dW"]
    torch.testing.assert_close(out.double(), u @ merged, atol=1e-5, rtol=1e-5)


def test_magnitude_prune_is_per_tensor_and_for_every_method() -> None:
    shapes = bottleneck_shapes(n_layers=1, hidden=4, bottleneck=2)
    deltas = [random_delta(shapes, i) for i in range(2)]
    out = merge("magnitude_prune", stack(deltas, ["a", "b"]), density=0.5)
    for name in shapes:
        want = 0
        for d in deltas:
            t = d.tensors[name].flatten()
            n_keep = round(0.5 * t.numel())
            kept = torch.zeros_like(t)
            top = torch.topk(t.abs(), n_keep).indices
            kept[top] = t[top]
            want = want + kept
        torch.testing.assert_close(out.tensors[name].flatten(), want)


# -- errors and the ways to use the rules ----------------------------------------------------------------
@pytest.mark.parametrize("rule", LORA_RULES)
def test_lora_rules_refuse_non_lora_pools_and_task_vectors(rule: str) -> None:
    pool = stack([random_delta(bottleneck_shapes(1, 4, 2), i) for i in range(2)], ["a", "b"])
    with pytest.raises(ConfigError, match=f"merge rule '{rule}' merges LoRA adapters, but these have no") as err:
        merge(rule, pool)
    assert "\n" not in str(err.value)
    lora = _lora_stack(2)
    with pytest.raises(ConfigError, match="use the raw merge space"):
        merge_flat(rule, lora.matrix, [0, 1], layout=lora.layout, base=torch.zeros(lora.layout.size))
    rule_record = MERGE_RULES.get(rule)
    assert rule_record.needs_lora and rule_record.rank_sum == (rule in ("cat", "knots"))


@pytest.mark.parametrize(
    ("rule", "params", "message"),
    [
        ("svd", {"svd_rank": 3}, "svd_rank must be at most the adapters' rank 2, got 3"),
        ("svd", {"svd_rank": 0}, "svd_rank must be an integer >= 1, got 0"),
        ("svd", {"svd_clamp": 1.5}, r"svd_clamp must be in \[0, 1\], got 1.5"),
        ("ties_svd", {"density": 0.0}, r"density must be in \(0, 1\], got 0.0"),
        ("dare_ties_svd", {"consensus": "vote"}, "unknown sign consensus 'vote'"),
        ("knots", {"inner": "max"}, "unknown KnOTS inner rule 'max'; valid: ties, dare_ties, average"),
        ("cat", {"normalize": "yes"}, "normalize must be true or false, got 'yes'"),
        ("magnitude_prune", {"density": 2.0}, r"density must be in \(0, 1\], got 2.0"),
    ],
)
def test_bad_parameters_are_one_line_errors(rule: str, params: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as err:
        merge(rule, _lora_stack(2), **params)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("rule", ["cat", "knots"])
def test_mix_writes_a_rank_sum_lora_with_the_pools_scale(rule: str, tmp_path) -> None:
    from adaptermix.artefact import load_adapter, model_from_adapter
    from adaptermix.cli.main import main
    from helpers import make_adapter
    from tiny import tiny_encoder

    enc = tiny_encoder("bert")
    loras = [make_adapter(tmp_path / n, enc, method="lora", seed=i) for i, n in enumerate(["a", "b"])]
    out = tmp_path / "mixed"
    assert main(["mix", "--rule", rule, *map(str, loras), "-o", str(out), "--param", "normalize=true"
                 if rule == "cat" else "inner=average"]) == 0
    mixed = load_adapter(out)
    parts = [load_adapter(p) for p in loras]
    rank, alpha = parts[0].meta.method["rank"], parts[0].meta.method["alpha"]
    assert mixed.meta.method["rank"] == 2 * rank
    assert mixed.meta.method["alpha"] / mixed.meta.method["rank"] == pytest.approx(alpha / rank)
    site = "layers.1.value"
    want = sum(p.tensors[f"{site}.lora_B"] @ p.tensors[f"{site}.lora_A"] for p in parts) / 2
    torch.testing.assert_close(mixed.tensors[f"{site}.lora_B"] @ mixed.tensors[f"{site}.lora_A"], want,
                               atol=1e-5, rtol=1e-4)
    model_from_adapter(mixed, enc).detach_body()  # loads as an ordinary LoRA of the larger rank


def test_sweeps_take_rank_growing_rules_and_refuse_lora_rules_on_task_vectors(tmp_path) -> None:
    """cat / knots run in sweeps (a live LoRA of rank N r; exactness in tests/test_sweep_rank_sum.py)."""
    from adaptermix.sweep.runner import SweepContext
    from adaptermix.sweep.spec import SweepSpec
    from helpers import make_adapter
    from tiny import tiny_encoder

    enc = tiny_encoder("bert")
    dirs = [str(make_adapter(tmp_path / n, enc, method="lora", seed=i)) for i, n in enumerate(["a", "b"])]
    spec = SweepSpec(pool=tuple(dirs), rules=[{"name": "cat"}, {"name": "knots"}])
    ctx = SweepContext.prepare(spec, enc)
    assert ctx.live.buffer.numel() == MERGE_RULES.get("cat").output_layout(ctx.pool.stacked.layout, 2).size
    ctx.close()
    spec = SweepSpec(pool=tuple(dirs), rules=[{"name": "svd"}], merge_space="tv")
    with pytest.raises(ConfigError, match="merge rule 'svd' merges LoRA updates B A .* use merge_space raw"):
        SweepContext.prepare(spec, enc)
