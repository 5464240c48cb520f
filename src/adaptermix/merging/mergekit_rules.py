"""mergekit's sparsifying task-vector rules: Model Breadcrumbs, DELLA and SCE, ported per tensor.

Ported from arcee-ai/mergekit: ``mergekit/sparsify.py`` (``magnitude_outliers``, ``della_magprune``,
``rescaled_masked_tensor``), ``mergekit/merge_methods/generalized_task_arithmetic.py`` (sparsify, weight,
sign consensus, aggregate; the method table in ``merge_methods/registry.py``) and
``mergekit/merge_methods/sce.py``. As in mergekit, sparsification and SCE's selection and weights work
on one weight tensor at a time (the adapters' :class:`~adaptermix.deltas.ParamLayout` gives the tensors);
weighting, sign consensus and aggregation are this package's shared steps
(:func:`~adaptermix.merging.steps.generalized_merge`).

Space: these rules are defined on task vectors (fine-tuned weights minus a base). adaptermix applies them
to the raw adapter parameters, as its TIES and DARE rules do: the adapters' shared seeded initialisation
is not subtracted (``[raw parameters]`` in ``adaptermix list rules``).

Deviations common to the breadcrumbs and DELLA rules (each rule's docstring lists its own):

- ``normalize`` (default true) divides by sum(|w_i|) (``mean``) or, with sign consensus, by the |w_i| of
  the agreeing adapters (``disjoint_mean``), the package's convention; mergekit divides by the signed
  sum(w_i). mergekit's defaults are ``normalize: false`` for ``breadcrumbs``, ``breadcrumbs_ties`` and
  ``della_linear`` (a weighted sum: pass ``normalize=false``) and ``true`` for ``della``.
- TIES sign election uses the package's ``elect_by_sum`` (sign 0, nothing kept, on an exact balance);
  mergekit elects "+" there.
- Magnitude ties are broken by a stable sort (the lower flat index counts as smaller); mergekit's sorts
  are unstable.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from adaptermix.core.errors import ConfigError
from adaptermix.deltas import ParamLayout
from adaptermix.merging import checks
from adaptermix.merging.base import MERGE_RULES, MergeContext, MergeRule
from adaptermix.merging.per_tensor import map_rows, map_tensors, split_rows
from adaptermix.merging.steps import adapter_seed, generalized_merge

MERGEKIT = "arcee-ai/mergekit"


# -- Model Breadcrumbs (Davari & Belilovsky 2023): mergekit sparsify.magnitude_outliers ----------------
def outlier_mask(magnitudes: Tensor, density: float, gamma: float) -> Tensor:
    """Bool mask [k, n] keeping ``int(density * n)`` entries of each row: drop the ``int(gamma * n)``
    largest first, then the smallest (when density + gamma > 1, fewer large ones are dropped).

    mergekit before 0.1.5 kept ``indices[n_bot:-n_top]``, which is empty when ``n_top`` is 0 (tensors with
    fewer than 1 / gamma entries, e.g. an adapter's biases at gamma 0.01, were zeroed); this keeps
    ``indices[n_bot:n - n_top]``, the evident intent, so ``int(density * n)`` entries are kept, as mergekit
    0.1.5 does (``indices[n_bot:n_bot + target_n]``; tests/reference checks the agreement).
    """
    n = magnitudes.shape[1]
    target_n = int(density * n)
    n_top = int(gamma * n)
    n_bot = n - target_n - n_top
    if n_bot < 0:
        n_top += n_bot
        n_bot = 0
    ascending = torch.sort(magnitudes, dim=1, stable=True).indices
    keep = torch.zeros(magnitudes.shape, dtype=torch.bool)
    return keep.scatter_(1, ascending[:, n_bot : n - n_top], True)


def breadcrumbs_sparsify(x: Tensor, layout: ParamLayout, density: float, gamma: float) -> Tensor:
    """Per adapter and tensor, keep the mid-magnitude ``density`` fraction (see :func:`outlier_mask`)."""
    density = checks.density(density)
    gamma = checks.fraction("gamma", gamma, open_low=False, open_high=False)
    if density >= 1.0:  # mergekit returns the tensor unchanged (gamma is not applied)
        return x

    def sparsify(t: Tensor) -> Tensor:
        flat = t.reshape(t.shape[0], -1)
        return (flat * outlier_mask(flat.abs(), density, gamma)).reshape(t.shape)

    return map_rows(x, layout, sparsify)


# -- DELLA (Deep et al. 2024): mergekit sparsify.della_magprune -----------------------------------------
DELLA_RESCALES = ("inverse", "l1", "none")
_NORM_EPS = 1e-7  # mergekit rescaled_masked_tensor's eps


def della_keep_probabilities(t: Tensor, density: float, epsilon: float) -> Tensor:
    """Keep probabilities [k, *shape]: per row of each tensor (a 1-D tensor is one row), entries ranked by
    magnitude get ``density - epsilon`` (smallest) up to ``density + epsilon`` (largest), linearly in rank.

    Rows are mergekit's ``dim=1`` of a 2-D ``[out, in]`` tensor; tensors of more dimensions are ranked
    along their flattened trailing dimensions (mergekit: along dim 1). A row of one entry gets
    ``density`` (mergekit divides 0 by 0 there).
    """
    k = t.shape[0]
    rows = t.reshape(k, 1, -1) if t.dim() <= 2 else t.reshape(k, t.shape[1], -1)
    ascending = torch.argsort(rows.abs(), dim=-1, stable=True)
    ranks = torch.argsort(ascending, dim=-1).to(torch.float32) + 1
    n = rows.shape[-1]
    if n > 1:
        rank_norm = ((ranks - 1.0) / (n - 1.0)).clamp(0, 1)
    else:
        rank_norm = torch.full_like(ranks, 0.5)
    probs = (density - epsilon) + rank_norm * 2 * epsilon
    return probs.reshape(t.shape)


def _l1_rescale(x: Tensor, masked: Tensor, layout: ParamLayout) -> Tensor:
    """mergekit ``rescaled_masked_tensor(norm=l1)`` per adapter and tensor: match the tensor's L1 norm."""
    parts = []
    for orig, kept in zip(split_rows(x, layout), split_rows(masked, layout), strict=True):
        before = orig.reshape(orig.shape[0], -1).abs().sum(dim=1)
        after = kept.reshape(kept.shape[0], -1).abs().sum(dim=1)
        usable = (before >= _NORM_EPS) & (after >= _NORM_EPS)
        scale = torch.where(usable, before / torch.where(usable, after, torch.ones_like(after)), 1.0)
        parts.append(kept.reshape(kept.shape[0], -1) * scale[:, None])
    return torch.cat(parts, dim=1)


def della_sparsify(
    x: Tensor,
    keys: Sequence[str],
    layout: ParamLayout,
    density: float,
    epsilon: float,
    rescale: str,
    seed: int,
) -> Tensor:
    """DELLA's MagPrune: keep each entry with its rank-based probability, then rescale.

    The Bernoulli draws of each adapter come from one generator seeded by (seed, adapter key), as in
    :func:`~adaptermix.merging.steps.drop_random`. ``rescale``: ``inverse`` divides each kept entry by its
    keep probability (the DELLA paper, and mergekit's first implementation: unbiased, E[out] = x);
    ``l1`` matches each tensor's L1 norm (mergekit's current ``rescale: true``); ``none`` keeps the
    masked values.
    """
    density = checks.density(density)
    epsilon = checks.number("epsilon", epsilon)
    rescale = checks.choice("DELLA rescale", rescale, DELLA_RESCALES)
    if density >= 1.0:  # mergekit returns the tensor unchanged
        return x
    if epsilon < 0 or density + epsilon >= 1 or density - epsilon <= 0:
        raise ConfigError(
            f"epsilon must be >= 0 with density - epsilon > 0 and density + epsilon < 1, "
            f"got density {density}, epsilon {epsilon}"
        )
    probs = map_rows(x, layout, lambda t: della_keep_probabilities(t, density, epsilon))
    draws = torch.stack(
        [
            torch.rand(x.shape[1], generator=torch.Generator().manual_seed(adapter_seed(seed, key)))
            for key in keys
        ]
    )
    masked = x * (draws < probs)
    if rescale == "inverse":
        return masked / probs
    if rescale == "l1":
        return _l1_rescale(x, masked, layout)
    return masked


def _aggregate(normalize: bool, consensus: bool) -> str:
    if not checks.flag("normalize", normalize):
        return "sum"
    return "disjoint_mean" if consensus else "mean"


def breadcrumbs(
    ctx: MergeContext,
    density: float,
    gamma: float,
    weights: Sequence[float] | None,
    lam: float,
    normalize: bool,
) -> Tensor:
    """Model Breadcrumbs (mergekit ``breadcrumbs``): per tensor drop the largest ``gamma`` and the smallest
    entries so that ``density`` remain, then the weighted mean (or sum, ``normalize=false``) times lam.

    Defaults: density 0.9 and gamma 0.01, the example of mergekit's documentation (mergekit's own default
    density 1 would disable the sparsification); see :func:`outlier_mask` for the small-tensor fix."""
    y = breadcrumbs_sparsify(ctx.rows(), ctx.require_layout("breadcrumbs"), density, gamma)
    return generalized_merge(y, ctx.keys, aggregate=_aggregate(normalize, False), weights=weights, lam=lam)


def breadcrumbs_ties(
    ctx: MergeContext,
    density: float,
    gamma: float,
    consensus: str,
    weights: Sequence[float] | None,
    lam: float,
    normalize: bool,
) -> Tensor:
    """Model Breadcrumbs with TIES sign consensus (mergekit ``breadcrumbs_ties``)."""
    y = breadcrumbs_sparsify(ctx.rows(), ctx.require_layout("breadcrumbs_ties"), density, gamma)
    return generalized_merge(
        y, ctx.keys, consensus=consensus, aggregate=_aggregate(normalize, True), weights=weights, lam=lam
    )


def della(
    ctx: MergeContext,
    density: float,
    epsilon: float,
    rescale: str,
    seed: int,
    consensus: str,
    weights: Sequence[float] | None,
    lam: float,
    normalize: bool,
) -> Tensor:
    """DELLA (mergekit ``della``): MagPrune each adapter, TIES sign election, disjoint mean, times lam.

    Deviations: the default ``rescale`` is ``inverse`` (the DELLA paper's 1 / p, and this package's DARE
    convention) where current mergekit matches L1 norms (``rescale="l1"``); default density 0.5 (mergekit:
    1, no drop); epsilon 0.15 as mergekit. Each adapter's draws are seeded by (seed, adapter name)."""
    y = della_sparsify(ctx.rows(), ctx.keys, ctx.require_layout("della"), density, epsilon, rescale, seed)
    return generalized_merge(
        y, ctx.keys, consensus=consensus, aggregate=_aggregate(normalize, True), weights=weights, lam=lam
    )


def della_linear(
    ctx: MergeContext,
    density: float,
    epsilon: float,
    rescale: str,
    seed: int,
    weights: Sequence[float] | None,
    lam: float,
    normalize: bool,
) -> Tensor:
    """DELLA without sign consensus (mergekit ``della_linear``): MagPrune, weighted mean (or sum), times lam.

    Same defaults and deviations as :func:`della`; mergekit's default here is the weighted sum
    (``normalize=false``)."""
    y = della_sparsify(
        ctx.rows(), ctx.keys, ctx.require_layout("della_linear"), density, epsilon, rescale, seed
    )
    return generalized_merge(y, ctx.keys, aggregate=_aggregate(normalize, False), weights=weights, lam=lam)


# -- SCE (Wan et al. 2024, FuseChat): mergekit merge_methods/sce.py ----------------------------------
def sce_tensor(t: Tensor, select_topk: float) -> Tensor:
    """SCE on one tensor [k, *shape] -> [*shape]: Select, Calculate, Erase (mergekit ``sce_merge``).

    Select: keep the ``int(nonzero * select_topk)`` positions of largest variance across the adapters
    (``nonzero``: positions whose variance is not 0) in every adapter. Calculate: adapter i's weight is
    mean(x_i^2) over the tensor, normalised to sum 1 (uniform when the sum is below 1e-6). Erase: keep
    x_i where its sign equals the sign of sum_i x_i ("+" on a tie, as mergekit), then the weighted mean of
    the kept entries (denominator clamped at 1e-6, as mergekit).
    """
    k = t.shape[0]
    tv = t.reshape(k, -1)
    if select_topk < 1.0:
        var = tv.var(dim=0, correction=0)
        n_keep = int(int(torch.count_nonzero(var)) * select_topk)
        selected = torch.zeros(var.shape, dtype=torch.bool)
        if n_keep > 0:
            selected[torch.sort(var, descending=True, stable=True).indices[:n_keep]] = True
        tv = tv * selected
    majority = torch.where(tv.sum(dim=0) >= 0, 1.0, -1.0)
    erase = torch.sign(tv) == majority
    w = (tv**2).mean(dim=1)
    total = float(w.sum())
    w = torch.full_like(w, 1.0 / k) if abs(total) < 1e-6 else w / total
    erased = w[:, None] * erase
    merged = (tv * erased).sum(dim=0) / erased.sum(dim=0).clamp(min=1e-6)
    return merged.reshape(t.shape[1:])


def sce(ctx: MergeContext, select_topk: float) -> Tensor:
    """SCE (mergekit ``sce``), tensor by tensor. Deviations: variance ties are broken by a stable sort
    (lower index first; mergekit's ``topk`` leaves them unspecified); select_topk must lie in (0, 1]
    (mergekit zeroes everything for select_topk <= 0)."""
    select_topk = checks.fraction("select_topk", select_topk, open_low=True, open_high=False)
    return map_tensors(ctx.rows(), ctx.require_layout("sce"), lambda t, _: sce_tensor(t, select_topk))


_WEIGHTS = ("weights",)

# The defaults the Breadcrumbs and DELLA pairs share (the TIES variants add ``consensus``).
_BREADCRUMBS: dict[str, Any] = {"density": 0.9, "gamma": 0.01, "weights": None, "lam": 1.0, "normalize": True}
_DELLA: dict[str, Any] = {"density": 0.5, "epsilon": 0.15, "rescale": "inverse", "seed": 0, "weights": None,
                          "lam": 1.0, "normalize": True}

MERGE_RULES.register(
    "breadcrumbs",
    MergeRule(
        name="breadcrumbs",
        reference=f"Davari & Belilovsky 2023 (Model Breadcrumbs); {MERGEKIT} sparsify.py magnitude_outliers",
        description="per tensor drop the top-gamma and the smallest magnitudes (keep density), weighted mean",
        fn=breadcrumbs,
        params=dict(_BREADCRUMBS),
        per_adapter=_WEIGHTS,
        identity_params={"density": 1.0},
    ),
)
MERGE_RULES.register(
    "breadcrumbs_ties",
    MergeRule(
        name="breadcrumbs_ties",
        reference=f"Davari & Belilovsky 2023 + Yadav et al. 2023; {MERGEKIT} breadcrumbs_ties",
        description="Model Breadcrumbs sparsification, then TIES sign election and disjoint mean",
        fn=breadcrumbs_ties,
        params={**_BREADCRUMBS, "consensus": "sum"},
        per_adapter=_WEIGHTS,
        identity_params={"density": 1.0},
    ),
)
MERGE_RULES.register(
    "della",
    MergeRule(
        name="della",
        reference=f"Deep et al. 2024 (DELLA-Merging); {MERGEKIT} sparsify.py della_magprune",
        description="keep entries with magnitude-ranked probability density +/- epsilon (seeded), rescale, TIES",
        fn=della,
        params={**_DELLA, "consensus": "sum"},
        per_adapter=_WEIGHTS,
        identity_params={"density": 1.0},
    ),
)
MERGE_RULES.register(
    "della_linear",
    MergeRule(
        name="della_linear",
        reference=f"Deep et al. 2024 (DELLA-Merging); {MERGEKIT} della_linear",
        description="DELLA magnitude-ranked random drop and rescale (seeded per adapter), weighted mean",
        fn=della_linear,
        params=dict(_DELLA),
        per_adapter=_WEIGHTS,
        identity_params={"density": 1.0},
    ),
)
MERGE_RULES.register(
    "sce",
    MergeRule(
        name="sce",
        reference=f"Wan et al. 2024 (FuseChat, SCE); {MERGEKIT} merge_methods/sce.py",
        description="per tensor keep top-variance positions, weight adapters by mean square, erase minority signs",
        fn=sce,
        params={"select_topk": 1.0},
        identity_params={"select_topk": 1.0},
    ),
)
