"""Shared by the reference-agreement tests: the same random tensors for adaptermix and the reference.

A pool is k "fine-tuned" weight vectors W = base + tau over a small layout of several tensors (matrices
and a bias), built from one seed. adaptermix merges the task-vector rows W - base with
``merge_flat(..., base=base)`` (its task-vector space, the rows these methods are defined on), or the raw
rows where the reference takes no base; the reference gets the same tensors, tensor by tensor.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from adaptermix.deltas import AdapterDelta, ParamLayout, stack
from adaptermix.merging import merge_flat
from adaptermix.merging.per_tensor import join, split_rows

# Several tensors, as per-tensor rules see them: two matrices and a bias (1-D) tensor.
SHAPES: dict[str, tuple[int, ...]] = {"w1": (6, 5), "b1": (6,), "w2": (8, 6)}
# One matrix: for rules whose reference works per tensor where adaptermix works per adapter row (TIES'
# trim), or whose random draws are shared with the reference call by call (DARE, DELLA).
ONE_MATRIX: dict[str, tuple[int, ...]] = {"w": (8, 10)}

# Float tolerance: both sides compute in float32 (adaptermix's sphere, subspace and Model Stock rules in
# float64, returned as float32), so results agree to a few float32 ulps of the values (~1).
RTOL, ATOL = 1e-5, 1e-5
SVD_RTOL, SVD_ATOL = 1e-4, 1e-4  # SVD-based rules: float32 SVDs in the reference, float64 here


@dataclass(frozen=True)
class Pool:
    """k adapters: weights ``w`` [k, P] = base + tau, the ``base`` [P], their ``layout`` and ``keys``."""

    w: Tensor
    base: Tensor
    layout: ParamLayout
    keys: tuple[str, ...]

    @property
    def tau(self) -> Tensor:
        return self.w - self.base

    @property
    def k(self) -> int:
        return self.w.shape[0]


def make_pool(
    k: int, seed: int, shapes: Mapping[str, tuple[int, ...]] = SHAPES, sparsity: float = 0.0
) -> Pool:
    """k adapters with random task vectors (a ``sparsity`` fraction of exact zeros: unchanged entries)."""
    gen = torch.Generator().manual_seed(seed)
    deltas = []
    for _ in range(k):
        tensors = {}
        for name, shape in shapes.items():
            t = torch.randn(shape, generator=gen)
            if sparsity:
                t = t * (torch.rand(shape, generator=gen) >= sparsity)
            tensors[name] = t
        deltas.append(AdapterDelta(tensors))
    keys = tuple(f"a{i}" for i in range(k))  # sorted = input order: the canonical order is the given one
    stacked = stack(deltas, list(keys))
    base = torch.randn(stacked.layout.size, generator=gen)
    return Pool(stacked.matrix + base, base, stacked.layout, keys)


def ours_tv(rule: str, pool: Pool, **params: Any) -> Tensor:
    """adaptermix in task-vector space: merge W - base, add the base back (weights)."""
    return merge_flat(
        rule, pool.tau, range(pool.k), layout=pool.layout, keys=pool.keys, base=pool.base, **params
    )


def ours_raw(rule: str, rows: Tensor, pool: Pool, **params: Any) -> Tensor:
    """adaptermix on the given rows as they are (no base)."""
    return merge_flat(rule, rows, range(rows.shape[0]), layout=pool.layout, keys=pool.keys, **params)


def per_tensor(
    rows: Tensor,
    layout: ParamLayout,
    fn: Callable[[list[Tensor], Tensor | None, str], Tensor],
    base: Tensor | None = None,
) -> Tensor:
    """``fn(k tensors, base tensor or None, name)`` on every tensor of the layout; the results joined [P]."""
    views = split_rows(rows, layout)
    base_views = split_rows(base[None], layout) if base is not None else [None] * len(views)
    out = [
        fn(list(v.unbind(0)), None if b is None else b[0], name)
        for v, b, name in zip(views, base_views, layout.names, strict=True)
    ]
    return join([o.to(torch.float32) for o in out])


def state_dicts(rows: Tensor, layout: ParamLayout) -> list[dict[str, Tensor]]:
    """Rows [k, P] as k state dicts {tensor name: tensor} (FusionBench's task-vector format)."""
    views = split_rows(rows, layout)
    return [
        {name: v[i].clone() for name, v in zip(layout.names, views, strict=True)}
        for i in range(rows.shape[0])
    ]


def flatten(state: Mapping[str, Tensor], layout: ParamLayout) -> Tensor:
    """A state dict back to a flat [P] vector in layout order."""
    return join([state[name].to(torch.float32) for name in layout.names])


def assert_agree(ours: Tensor, ref: Tensor, rtol: float = RTOL, atol: float = ATOL) -> None:
    torch.testing.assert_close(ours, ref.to(ours.dtype), rtol=rtol, atol=atol)


def keyed(values: Sequence[float], keys: Sequence[str]) -> dict[str, float]:
    return dict(zip(keys, values, strict=True))
