"""adaptermix's mergekit ports agree with mergekit itself on the same tensors (``make test-reference``).

Each test builds one random pool (tests/reference/ref_common.py), runs mergekit's method tensor by
tensor through ``mergekit.merge_methods.api.merge_tensors`` and adaptermix's rule through ``merge_flat``,
and asserts agreement to float tolerance. Methods that need a base get the pool's base model, and
adaptermix merges the task vectors W - base with that base added back (its ``tv`` space). Where the two
differ on purpose (see the docstrings of adaptermix.merging.*_rules and docs/reference-agreement.md) the
parameters are set so that both compute the same thing, and a comment says why.

Skipped (importorskip) where mergekit is not installed: run them in .venv-ref (scripts/reference-env.sh).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import torch
from ref_common import ONE_MATRIX, Pool, assert_agree, keyed, make_pool, ours_raw, ours_tv, per_tensor

from adaptermix.merging.steps import adapter_seed, dare_drop

pytest.importorskip("mergekit")
from mergekit.merge_methods.api import merge_tensors  # noqa: E402

pytestmark = pytest.mark.reference

WEIGHTS = [0.7, 1.3, 0.4, 1.0]


def mergekit_tv(method: str, pool: Pool, **params: Any) -> torch.Tensor:
    """mergekit with the pool's base as base model, tensor by tensor (inputs in key order)."""
    ids = ["base", *pool.keys]

    def run(ws: list[torch.Tensor], base: torch.Tensor | None, _: str) -> torch.Tensor:
        return merge_tensors([base, *ws], method, parameters=params, ids=ids, base_index=0)

    return per_tensor(pool.w, pool.layout, run, base=pool.base)


def mergekit_raw(method: str, pool: Pool, **params: Any) -> torch.Tensor:
    """mergekit without a base model, on the raw weights."""
    return per_tensor(
        pool.w,
        pool.layout,
        lambda ws, _b, _n: merge_tensors(ws, method, parameters=params, ids=list(pool.keys)),
    )


# -- linear family --------------------------------------------------------------------------------------
def test_linear() -> None:
    pool = make_pool(4, seed=1)
    # mergekit normalises by sum(w), adaptermix by sum(|w|): the same for positive weights
    ref = mergekit_raw("linear", pool, weight=keyed(WEIGHTS, pool.keys))
    assert_agree(ours_raw("average", pool.w, pool, weights=WEIGHTS), ref)


def test_task_arithmetic() -> None:
    pool = make_pool(4, seed=2)
    ref = mergekit_tv("task_arithmetic", pool, weight=keyed(WEIGHTS, pool.keys), **{"lambda": 0.6})
    assert_agree(ours_tv("task_arithmetic", pool, weights=WEIGHTS, lam=0.6), ref)


def test_ties() -> None:
    # One tensor: mergekit trims each tensor to its top density, adaptermix (as the TIES paper and
    # FusionBench) the whole task vector of an adapter; on a single tensor the two are the same. density *
    # numel is an integer, so mergekit's int() and adaptermix's round() keep the same count.
    pool = make_pool(4, seed=3, shapes=ONE_MATRIX)
    ref = mergekit_tv("ties", pool, weight=keyed(WEIGHTS, pool.keys), density=0.25, **{"lambda": 0.8})
    assert_agree(ours_tv("ties", pool, weights=WEIGHTS, density=0.25, lam=0.8), ref)


# -- DARE: mergekit draws from torch's global RNG; the test hands it adaptermix's seeded masks -------------
def _our_dare_masks(pool: Pool, p: float, seed: int) -> list[torch.Tensor]:
    kept = dare_drop(torch.ones(pool.k, pool.w.shape[1]), pool.keys, 1.0, p, seed) != 0
    return list(kept.float().unbind(0))


def _patch_bernoulli(monkeypatch: pytest.MonkeyPatch, masks: Iterator[torch.Tensor]) -> None:
    """mergekit's sparsify calls torch.bernoulli once per adapter (in input order) per tensor."""

    def fake(probs: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        return next(masks).reshape(probs.shape).to(probs.dtype)

    monkeypatch.setattr(torch, "bernoulli", fake)


@pytest.mark.parametrize(("method", "ours"), [("dare_linear", "dare_linear"), ("dare_ties", "dare_ties")])
def test_dare_with_shared_masks(method: str, ours: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # The same masks on both sides. adaptermix rescales the kept entries by 1 / (1 - p) (the DARE paper)
    # and takes the weighted mean; mergekit's rescale=true matches L1 norms instead, so it runs with
    # rescale=false, normalize=true (mean) and lambda = 1 / (1 - p), which is the same computation.
    pool, p = make_pool(3, seed=4, shapes=ONE_MATRIX), 0.4
    _patch_bernoulli(monkeypatch, iter(_our_dare_masks(pool, p, seed=7)))
    ref = mergekit_tv(
        method,
        pool,
        weight=keyed(WEIGHTS[:3], pool.keys),
        density=1 - p,
        rescale=False,
        normalize=True,
        **{"lambda": 1 / (1 - p)},
    )
    monkeypatch.undo()
    assert_agree(ours_tv(ours, pool, weights=WEIGHTS[:3], p=p, seed=7), ref)


@pytest.mark.parametrize("method", ["dare_linear", "dare_ties"])
def test_dare_without_drop(method: str) -> None:
    # density 1 (p = 0): no draws; mergekit's default normalize=false is a sum, adaptermix's DARE rules
    # take the weighted mean, so mergekit runs with normalize=true.
    pool = make_pool(4, seed=5)
    ref = mergekit_tv(method, pool, weight=keyed(WEIGHTS, pool.keys), density=1.0, normalize=True)
    assert_agree(ours_tv(method, pool, weights=WEIGHTS, p=0.0), ref)


# -- Breadcrumbs, DELLA, SCE ------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["breadcrumbs", "breadcrumbs_ties"])
@pytest.mark.parametrize("normalize", [False, True])
def test_breadcrumbs(method: str, normalize: bool) -> None:
    # Several tensors, the bias small enough that int(gamma * n) is 0 (mergekit 0.1.5 keeps target_n
    # entries there, as adaptermix's outlier_mask). normalize: mergekit divides by the signed sum of
    # weights, adaptermix by sum(|w|): positive weights.
    pool = make_pool(4, seed=6)
    ref = mergekit_tv(
        method, pool, weight=keyed(WEIGHTS, pool.keys), density=0.7, gamma=0.05, normalize=normalize
    )
    assert_agree(ours_tv(method, pool, weights=WEIGHTS, density=0.7, gamma=0.05, normalize=normalize), ref)


@pytest.mark.parametrize(("method", "normalize"), [("della", True), ("della_linear", False)])
def test_della_with_shared_draws(method: str, normalize: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    # mergekit draws torch.bernoulli(probs); the fake returns (adaptermix's uniform draws < probs), so both
    # keep the same entries iff their rank-based keep probabilities agree. rescale: mergekit's current L1
    # matching is adaptermix's rescale="l1" (its default "inverse" is the DELLA paper's 1 / p).
    pool, seed, density, epsilon = make_pool(3, seed=8, shapes=ONE_MATRIX), 3, 0.5, 0.2
    n = pool.w.shape[1]
    draws = iter(
        [torch.rand(n, generator=torch.Generator().manual_seed(adapter_seed(seed, key))) for key in pool.keys]
    )

    def fake(probs: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        return (next(draws).reshape(probs.shape) < probs).to(probs.dtype)

    monkeypatch.setattr(torch, "bernoulli", fake)
    ref = mergekit_tv(
        method,
        pool,
        weight=keyed(WEIGHTS[:3], pool.keys),
        density=density,
        epsilon=epsilon,
        normalize=normalize,
    )
    monkeypatch.undo()
    ours = ours_tv(
        method,
        pool,
        weights=WEIGHTS[:3],
        density=density,
        epsilon=epsilon,
        rescale="l1",
        seed=seed,
        normalize=normalize,
    )
    assert_agree(ours, ref)


@pytest.mark.parametrize("select_topk", [1.0, 0.5])
def test_sce(select_topk: float) -> None:
    pool = make_pool(4, seed=9)
    ref = mergekit_tv("sce", pool, select_topk=select_topk)
    assert_agree(ours_tv("sce", pool, select_topk=select_topk), ref)


# -- spheres ---------------------------------------------------------------------------------------------
def test_karcher() -> None:
    pool = make_pool(4, seed=10)
    ref = mergekit_raw("karcher", pool, max_iter=50, tol=1e-7)
    assert_agree(ours_raw("karcher", pool.w, pool, max_iter=50, tol=1e-7), ref)


def test_multislerp() -> None:
    # mergekit normalises weights by their sum, adaptermix by sum(|w|): positive weights
    pool = make_pool(4, seed=11)
    ref = mergekit_raw("multislerp", pool, weight=keyed(WEIGHTS, pool.keys))
    assert_agree(ours_raw("multislerp", pool.w, pool, weights=WEIGHTS), ref)


# -- base-relative rules ---------------------------------------------------------------------------------
@pytest.mark.parametrize("k", [2, 3, 5])
@pytest.mark.parametrize("filter_wise", [False, True])
def test_model_stock(k: int, filter_wise: bool) -> None:
    pool = make_pool(k, seed=12 + k)
    ref = mergekit_tv("model_stock", pool, filter_wise=filter_wise)
    assert_agree(ours_tv("model_stock", pool, filter_wise=filter_wise), ref)


def test_model_stock_on_close_offsets() -> None:
    # offsets sharing a common direction (cos near 0.8, t well away from 0): the interesting regime
    pool = make_pool(4, seed=20)
    common = torch.randn(pool.w.shape[1], generator=torch.Generator().manual_seed(0))
    pool = Pool(pool.w + 2 * common, pool.base, pool.layout, pool.keys)
    assert_agree(ours_tv("model_stock", pool), mergekit_tv("model_stock", pool))


@pytest.mark.parametrize("epsilon", [1e-5, 0.5])
def test_ram(epsilon: float) -> None:
    pool = make_pool(4, seed=21, sparsity=0.6)  # sparse task vectors: unique and overlapping entries
    assert_agree(ours_tv("ram", pool, epsilon=epsilon), mergekit_tv("ram", pool, epsilon=epsilon))


@pytest.mark.parametrize(("r", "alpha"), [(0.1, 0.2), (0.5, 1.0)])
def test_ramplus_tl(r: float, alpha: float) -> None:
    pool = make_pool(4, seed=22, sparsity=0.6)
    ref = mergekit_tv("ramplus_tl", pool, r=r, alpha=alpha)
    assert_agree(ours_tv("ramplus_tl", pool, r=r, alpha=alpha), ref)
