"""Rules from Nguyen & Le 2024 that use FSD to choose and prune adapters (Alg. 1 and Alg. 4).

Alg. 1 (greedy adapter mixing): rank the k input adapters by the row means of their FSD matrix S
(``mean(S, axis=1)``, zero diagonal included as in the paper) and average the l with the smallest mean;
``greedy_fsd_max`` takes the l largest (the control of Fig. 7). Ties go to the adapter whose name sorts
first. ``l=None`` mixes all k (plain ``average``); set l to make the rule select.

Alg. 4 (mixing sparse adapters): select l adapters as in Alg. 1, prune each selected adapter's m groups
(layers by default) with the highest mean FSD against the other *selected* adapters to sparsity s by
exact magnitude pruning (Alg. 2, see :mod:`adaptermix.pruning`), then average. The paper does not give
m or say whether "layer" means a transformer layer or a state-dict item; ``by`` chooses, ``m=None``
prunes every group (the "mix sparse adapters" setting of Fig. 8b). ``scope="layer"`` (default) prunes
each chosen group to s on its own; ``scope="adapter"`` keeps the top (1 - s) of all chosen parameters
together (one magnitude threshold) — with ``m=None`` and k = 1 that is Fig. 8a's "top-d % influential
parameters of the adapter".
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor

from adaptermix.core.errors import ConfigError
from adaptermix.deltas import ParamLayout, StackedDeltas
from adaptermix.diagnostics.conflicts import fsd_matrix_flat
from adaptermix.merging.base import MERGE_RULES, MergeContext, MergeRule
from adaptermix.merging.steps import linear_merge
from adaptermix.pruning.fsd_guided import fsd_guided_prune_flat, pruned_group_names


def select_by_fsd(fsd_values: Tensor, l: int | None, keys: Sequence[str], largest: bool = False) -> list[int]:  # noqa: E741 (Alg. 1's l)
    """Indices (ascending) of the l adapters with the smallest (or largest) row-mean FSD (Alg. 1 l. 3-6)."""
    k = fsd_values.shape[0]
    n = k if l is None else l
    if not isinstance(n, int) or not 1 <= n <= k:
        raise ConfigError(f"l must be an integer in [1, {k}] (the number of adapters given), got {n}")
    means = fsd_values.mean(dim=1).tolist()
    sign = -1.0 if largest else 1.0
    ranked = sorted(range(k), key=lambda i: (sign * means[i], keys[i]))
    return sorted(ranked[:n])


def greedy_selection(stacked: StackedDeltas, l: int | None, largest: bool = False) -> tuple[str, ...]:  # noqa: E741 (Alg. 1's l)
    """Names of the adapters Alg. 1 would mix (for provenance and reports)."""
    chosen = select_by_fsd(fsd_matrix_flat(stacked.matrix), l, stacked.names, largest)
    return tuple(stacked.names[i] for i in chosen)


def partners_by_fsd(row_means: Sequence[float], target: int, largest: bool = False) -> list[int]:
    """Alg. 1 in the in-domain setting: every index but ``target``, ranked by row-mean FSD (smallest
    first, or largest with ``largest``), ties by index. The greedy mixture of size l is the target plus
    the first l - 1 (one ranking shared by ``mix --target`` and the sweep's greedy generators)."""
    sign = -1.0 if largest else 1.0
    return sorted((i for i in range(len(row_means)) if i != target), key=lambda i: (sign * float(row_means[i]), i))


#: The rules that mix only a selection of their inputs, and whether they pick the largest row-mean FSD.
SELECTING_RULES: dict[str, bool] = {"greedy_fsd": False, "greedy_fsd_max": True, "sparse_fsd": False}


def rule_selection(
    rule: str,
    stacked: StackedDeltas,
    l: int | None,  # noqa: E741 (Alg. 1's l)
    keep: str | None = None,
) -> tuple[str, ...]:
    """Names (in input order) of the adapters whose weights ``rule`` mixes out of ``stacked``.

    Rules outside :data:`SELECTING_RULES` mix every input. A selecting rule follows Alg. 1 (the l
    adapters with the smallest, or largest, row-mean FSD); with ``keep`` (the in-domain target, whose head
    the mixture is evaluated with) the selection is ``keep`` plus the l - 1 *other* adapters ranked by
    :func:`partners_by_fsd` over the whole input set, as the sweep's greedy generator does: Alg. 1 alone
    may leave the target's body out while its head is kept. Ties go to the earlier input.
    """
    if rule not in SELECTING_RULES:
        return tuple(stacked.names)
    largest = SELECTING_RULES[rule]
    if keep is None:
        return greedy_selection(stacked, l, largest)
    k = len(stacked)
    n = k if l is None else l
    if not isinstance(n, int) or not 1 <= n <= k:
        raise ConfigError(f"l must be an integer in [1, {k}] (the number of adapters given), got {n}")
    if keep not in stacked.names:
        raise ConfigError(f"target {keep!r} is not one of the adapters to mix ({', '.join(stacked.names)})")
    target = stacked.names.index(keep)
    others = partners_by_fsd(fsd_matrix_flat(stacked.matrix).mean(dim=1).tolist(), target, largest)
    chosen = {target, *others[: n - 1]}
    return tuple(stacked.names[i] for i in sorted(chosen))


def _greedy(ctx: MergeContext, l: int | None, largest: bool) -> Tensor:  # noqa: E741 (Alg. 1's l)
    chosen = select_by_fsd(ctx.fsd_matrix(), l, ctx.keys, largest)
    return linear_merge(ctx.pool, ctx.index[chosen], normalise=True)


def greedy_fsd(ctx: MergeContext, l: int | None) -> Tensor:  # noqa: E741 (Alg. 1's l)
    return _greedy(ctx, l, largest=False)


def greedy_fsd_max(ctx: MergeContext, l: int | None) -> Tensor:  # noqa: E741 (Alg. 1's l)
    return _greedy(ctx, l, largest=True)


def sparse_fsd(ctx: MergeContext, l: int | None, m: int | None, s: float, by: str, scope: str) -> Tensor:  # noqa: E741 (Alg. 1's l)
    layout = ctx.require_layout("sparse_fsd")
    chosen = ctx.index[select_by_fsd(ctx.fsd_matrix(), l, ctx.keys)]
    return fsd_guided_prune_flat(ctx.pool.index_select(0, chosen), layout, m, s, by, scope).mean(dim=0)


def sparse_fsd_record(
    pool_flat: Tensor, idx: Sequence[int], keys: Sequence[str], layout: ParamLayout, fsd: Tensor | None,
    params: dict[str, object],
) -> dict[str, object]:
    """What a ``sparse_fsd`` trial should record beside its metric: the adapters Alg. 4 mixed and, per
    adapter, the groups it pruned (every group when ``m`` is None)."""
    names = [keys[i] for i in idx]
    order = sorted(range(len(names)), key=names.__getitem__)  # merge_flat's canonical (name) order
    idx, names = [idx[i] for i in order], [names[i] for i in order]
    sub = pool_flat[list(idx)]
    values = fsd[list(idx)][:, list(idx)] if fsd is not None else fsd_matrix_flat(sub)
    l, m, by = params.get("l"), params.get("m"), str(params.get("by", "layer"))  # noqa: E741 (Alg. 1's l)
    chosen = select_by_fsd(values, l if isinstance(l, int) or l is None else None, names)
    groups = pruned_group_names(sub[chosen], layout, m if isinstance(m, int) else None, by)
    return {
        "mixed_adapters": [names[i] for i in chosen],
        "pruned_groups": {names[i]: g for i, g in zip(chosen, groups, strict=True)},
    }


MERGE_RULES.register(
    "greedy_fsd",
    MergeRule(
        name="greedy_fsd",
        reference="Nguyen & Le 2024 Alg. 1",
        description="average the l adapters with the smallest mean FSD to the others",
        fn=greedy_fsd,
        params={"l": None},
    ),
)
MERGE_RULES.register(
    "greedy_fsd_max",
    MergeRule(
        name="greedy_fsd_max",
        reference="Nguyen & Le 2024 Sec. 6 (control of Alg. 1)",
        description="average the l adapters with the largest mean FSD to the others",
        fn=greedy_fsd_max,
        params={"l": None},
    ),
)
MERGE_RULES.register(
    "sparse_fsd",
    MergeRule(
        name="sparse_fsd",
        reference="Nguyen & Le 2024 Alg. 4 + Alg. 2",
        description="select l adapters by FSD, prune each one's m most conflicting layers to sparsity s, average",
        fn=sparse_fsd,
        params={"l": None, "m": None, "s": 0.9, "by": "layer", "scope": "layer"},
        identity_params={"s": 0.0},
    ),
)
