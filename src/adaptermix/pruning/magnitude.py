"""Exact magnitude pruning (Alg. 2 of Nguyen & Le 2024; Sanh et al. 2020), global or per group.

Deviation from Alg. 2: the paper keeps ``|w| >= percentile_s(|w|)``. With ties at the threshold (exact
zeros in a sparse adapter, duplicated values after quantisation, or half-precision weights) that keeps
MORE than the requested fraction, so "90 % sparsity" would not mean the same thing for every adapter and
sparsity sweeps would not be comparable. We keep exactly ``round((1 - s) * n)`` parameters (Python /
torch rounding: half to even) of largest magnitude, breaking ties deterministically in favour of the
lower flat index (a stable sort, never a threshold).
"""

from __future__ import annotations

from typing import TypeVar

import torch
from torch import Tensor

from adaptermix.core.errors import ConfigError
from adaptermix.deltas import AdapterDelta, ParamLayout, StackedDeltas
from adaptermix.pruning.base import PRUNERS, Pruner, check_sparsity

# A pruning scope names how parameters are grouped before counting; "global" = the whole adapter.
SCOPES = {
    "global": "all",
    "per_layer": "layer",
    "per_module": "module",
    "per_site": "site",
    "per_tensor": "tensor",
}

X = TypeVar("X", AdapterDelta, Tensor)


def keep_counts(sizes: Tensor, s: float) -> Tensor:
    """Parameters to keep per group: ``round((1 - s) * n)`` (int64, same shape as ``sizes``)."""
    return torch.round((1.0 - check_sparsity(s)) * sizes.double()).long()


def topk_mask_grouped(scores: Tensor, group_ids: Tensor, keep: Tensor) -> Tensor:
    """Bool mask [R, P] keeping, in each row r and group g, the ``keep[r, g]`` highest ``scores``.

    Vectorised and exact: sort each row by decreasing score (stable, so ties go to the lower index), then
    stably by group id, which orders every group's members by decreasing score; a member is kept when its
    rank inside its group is below the group's keep count.
    """
    n_rows, n_cols = scores.shape
    by_score = torch.sort(scores, dim=1, descending=True, stable=True).indices
    by_group = torch.sort(group_ids[by_score], dim=1, stable=True).indices
    perm = by_score.gather(1, by_group)  # grouped, decreasing score inside each group
    sizes = torch.bincount(group_ids, minlength=keep.shape[1])
    starts = torch.cumsum(sizes, 0) - sizes
    sorted_groups = group_ids[perm]
    rank = torch.arange(n_cols).expand(n_rows, n_cols) - starts[sorted_groups]
    kept = rank < keep.gather(1, sorted_groups)
    return torch.zeros(n_rows, n_cols, dtype=torch.bool).scatter_(1, perm, kept)


def prune_rows(x: Tensor, layout: ParamLayout | None, s: float, scope: str = "global") -> Tensor:
    """Magnitude-prune each row of ``x`` [R, P] to sparsity ``s`` within the groups of ``scope``."""
    if scope not in SCOPES:
        raise ConfigError(f"unknown pruning scope {scope!r}; valid: {', '.join(SCOPES)}")
    if SCOPES[scope] == "all":
        group_ids = torch.zeros(x.shape[1], dtype=torch.long)
    elif layout is None:
        raise ConfigError(f"pruning scope {scope!r} needs the adapter layout (pass an AdapterDelta)")
    else:
        group_ids = layout.element_groups(SCOPES[scope])
    sizes = torch.bincount(group_ids)
    keep = keep_counts(sizes, s).expand(x.shape[0], -1)
    return x * topk_mask_grouped(x.abs(), group_ids, keep)


def magnitude_prune(x: X, s: float, scope: str = "global", layout: ParamLayout | None = None) -> X:
    """Zero all but the ``round((1 - s) * n)`` largest-magnitude parameters (per group for non-global scopes).

    ``x`` is an :class:`AdapterDelta` (returns one, same layout: a sparse adapter is an ordinary delta)
    or a flat tensor [P] / [R, P] (rows pruned independently; give ``layout`` for per-group scopes).
    Results are float32 (the dtype of flattened deltas).
    ``scope`` is "global" or one of "per_layer", "per_module", "per_site", "per_tensor".
    """
    if isinstance(x, AdapterDelta):
        pruned = prune_rows(x.flatten()[None], x.layout, s, scope)[0]
        return AdapterDelta.unflatten(pruned, x.layout, x.space)
    rows = x[None] if x.dim() == 1 else x
    pruned = prune_rows(rows, layout, s, scope)
    return pruned[0] if x.dim() == 1 else pruned


def _magnitude_pruner(stacked: StackedDeltas, s: float, scope: str) -> StackedDeltas:
    pruned = prune_rows(stacked.matrix, stacked.layout, s, scope)
    return StackedDeltas(pruned, stacked.layout, stacked.names, stacked.space)


PRUNERS.register(
    "magnitude",
    Pruner(
        name="magnitude",
        reference="Nguyen & Le 2024 Alg. 2 (exact count); Sanh et al. 2020",
        description="keep the round((1-s)n) largest |w| of each adapter, globally or per layer/module/site/tensor",
        fn=_magnitude_pruner,
        params={"s": 0.9, "scope": "global"},
    ),
)
