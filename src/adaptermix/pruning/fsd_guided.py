"""FSD-guided layer pruning (the pruning step of Alg. 4, Sec. 7 of Nguyen & Le 2024).

For each adapter of a pool: compute its per-group FSD against every *other* adapter, average over the
others, and magnitude-prune (Alg. 2, exact count) its ``m`` groups with the highest mean FSD to sparsity
``s``; the other groups stay dense.

What a "layer" is: Alg. 3 calls each state-dict item a layer, while Sec. 7 speaks of layers of the model.
We default to transformer layers (``by="layer"``: all adapter tensors of ``layers.{i}``) and let ``by``
choose "tensor" (the state-dict-item reading), "module" (one adapter module, ``layers.{i}.{site}``) or
"site". Ties between groups go to the earlier group in layout order. With a single adapter there are no
others, every group has FSD 0 and the first ``m`` groups are pruned.
"""

from __future__ import annotations

import torch
from torch import Tensor

from adaptermix.core.errors import ConfigError
from adaptermix.deltas import ParamLayout, StackedDeltas
from adaptermix.diagnostics.conflicts import grouped_conflict_counts
from adaptermix.pruning.base import PRUNERS, Pruner
from adaptermix.pruning.magnitude import keep_counts, topk_mask_grouped


def mean_group_fsd_vs_others(x: Tensor, layout: ParamLayout, by: str = "layer") -> Tensor:
    """[k, G]: each adapter's per-group FSD averaged over the other k - 1 adapters (zeros when k = 1)."""
    counts = grouped_conflict_counts(x, layout, by).double()  # [G, k, k], zero diagonal
    sizes = torch.tensor(layout.groups(by).sizes, dtype=torch.float64)
    per_group = counts / sizes[:, None, None]
    return (per_group.sum(dim=2) / max(x.shape[0] - 1, 1)).T


def conflicting_groups(x: Tensor, layout: ParamLayout, m: int | None, by: str = "layer") -> Tensor:
    """Bool [k, G]: for each adapter, its ``m`` groups with the highest mean FSD against the others."""
    n_groups = len(layout.groups(by).keys)
    m = n_groups if m is None else m
    if not isinstance(m, int) or not 0 <= m <= n_groups:
        raise ConfigError(f"m must be an integer in [0, {n_groups}] (groups by {by!r}), got {m}")
    scores = mean_group_fsd_vs_others(x, layout, by)
    top = torch.sort(scores, dim=1, descending=True, stable=True).indices[:, :m]
    return torch.zeros(scores.shape, dtype=torch.bool).scatter_(1, top, True)


#: How the parameters to prune are ranked: "layer" prunes each chosen group to sparsity s on its own (a
#: threshold per group); "adapter" ranks all of an adapter's chosen parameters together (one magnitude
#: threshold) and keeps the top (1 - s) of them — with every group chosen (m = None) that is the paper's
#: Fig. 8a, "the top-d % influential parameters of the adapter".
PRUNE_SCOPES = ("layer", "adapter")


def fsd_guided_prune_flat(
    x: Tensor, layout: ParamLayout, m: int | None, s: float, by: str = "layer", scope: str = "layer"
) -> Tensor:
    """Rows of ``x`` [k, P] with their ``m`` most conflicting groups pruned to sparsity ``s`` (per group,
    or with one threshold over all chosen parameters for ``scope="adapter"``)."""
    if scope not in PRUNE_SCOPES:
        raise ConfigError(f"unknown pruning scope {scope!r}; valid: {', '.join(PRUNE_SCOPES)}")
    chosen = conflicting_groups(x, layout, m, by)  # [k, G]
    sizes = torch.tensor(layout.groups(by).sizes, dtype=torch.long)
    element_groups = layout.element_groups(by)
    if scope == "layer":
        keep = torch.where(chosen, keep_counts(sizes, s), sizes)
        return x * topk_mask_grouped(x.abs(), element_groups, keep)
    out = torch.empty_like(x)
    for r in range(x.shape[0]):  # one threshold over the chosen groups; the others stay dense
        pruned = chosen[r][element_groups].long()  # 1 where this parameter is a candidate, 0 kept dense
        ids = 1 - pruned  # group 0: the candidates, group 1: the dense rest
        n_candidates = int(pruned.sum())
        keep = torch.stack([keep_counts(torch.tensor(n_candidates), s), torch.tensor(x.shape[1] - n_candidates)])
        out[r] = x[r] * topk_mask_grouped(x[r : r + 1].abs(), ids, keep[None])[0]
    return out


def pruned_group_names(x: Tensor, layout: ParamLayout, m: int | None, by: str = "layer") -> list[list[str]]:
    """Per row of ``x``, the keys of the groups Alg. 4 prunes (in layout order): what a trial records."""
    keys = layout.groups(by).keys
    return [[keys[g] for g in row.nonzero().flatten().tolist()] for row in conflicting_groups(x, layout, m, by)]


def fsd_guided_prune(stacked: StackedDeltas, m: int | None, s: float, by: str = "layer") -> StackedDeltas:
    """Prune each adapter's ``m`` groups of highest sign conflict with the rest of the pool (Alg. 4 step)."""
    pruned = fsd_guided_prune_flat(stacked.matrix, stacked.layout, m, s, by)
    return StackedDeltas(pruned, stacked.layout, stacked.names, stacked.space)


PRUNERS.register(
    "fsd_layers",
    Pruner(
        name="fsd_layers",
        reference="Nguyen & Le 2024 Alg. 4 (pruning step) + Alg. 2",
        description="prune each adapter's m groups with the highest mean FSD against the others to sparsity s",
        fn=fsd_guided_prune,
        params={"m": None, "s": 0.9, "by": "layer"},
    ),
)
