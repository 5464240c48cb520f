"""Rules that are configurations of the shared steps (sparsify x sign consensus x aggregate).

Pattern from arcee-ai/mergekit, which registers TIES, DARE-TIES, DARE-linear and task arithmetic as
configurations of one ``GeneralizedTaskArithmeticMerge``. Each rule below fixes the step choices and
exposes only its own parameters (with defaults); each is registered in one statement.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import Tensor

from adaptermix.merging.base import MERGE_RULES, MergeContext, MergeRule
from adaptermix.merging.steps import generalized_merge, linear_merge


def configured(**fixed: Any) -> Callable[..., Tensor]:
    """A rule function running :func:`generalized_merge` with the step choices ``fixed``."""

    def rule(ctx: MergeContext, **params: Any) -> Tensor:
        return generalized_merge(ctx.rows(), ctx.keys, **fixed, **params)

    return rule


def linear(normalise: bool) -> Callable[..., Tensor]:
    """The configuration with no sparsification and no sign consensus, fused (:func:`linear_merge`)."""

    def rule(ctx: MergeContext, **params: Any) -> Tensor:
        return linear_merge(ctx.pool, ctx.index, normalise=normalise, **params)

    return rule


_WEIGHTS = ("weights",)

MERGE_RULES.register(
    "average",
    MergeRule(
        name="average",
        reference="Chronopoulou et al. 2023 (AdapterSoup); Nguyen & Le 2024 Eq. 1",
        description="uniform mean of the adapters (Eq. 1); with weights: sum(w_i x_i) / sum(|w_i|)",
        fn=linear(normalise=True),  # = configured(aggregate="mean"), fused
        params={"weights": None},
        per_adapter=_WEIGHTS,
    ),
)
MERGE_RULES.register(
    "task_arithmetic",
    MergeRule(
        name="task_arithmetic",
        reference="Ilharco et al. 2023 (task arithmetic)",
        description="scaled sum lam * sum(w_i x_i) (weights default 1; negative weights negate)",
        fn=linear(normalise=False),  # = configured(aggregate="sum"), fused
        params={"weights": None, "lam": 1.0},
        per_adapter=_WEIGHTS,
        idempotent=False,
    ),
)
MERGE_RULES.register(
    "ties",
    MergeRule(
        name="ties",
        reference="Yadav et al. 2023 (TIES-Merging)",
        description="trim each adapter to its top-density |x|, elect sign by total magnitude, mean of agreeing entries",
        fn=configured(sparsify="magnitude", aggregate="disjoint_mean"),
        params={"density": 0.2, "consensus": "sum", "weights": None, "lam": 1.0},
        per_adapter=_WEIGHTS,
        identity_params={"density": 1.0},
    ),
)
MERGE_RULES.register(
    "dare_linear",
    MergeRule(
        name="dare_linear",
        reference="Yu et al. 2023 (DARE); mergekit dare_linear",
        description="drop entries with probability p (seeded per adapter), rescale by 1/(1-p), weighted mean",
        fn=configured(sparsify="random", aggregate="mean"),
        params={"p": 0.5, "seed": 0, "weights": None, "lam": 1.0},
        per_adapter=_WEIGHTS,
        identity_params={"p": 0.0},
    ),
)
MERGE_RULES.register(
    "dare_ties",
    MergeRule(
        name="dare_ties",
        reference="Yu et al. 2023 (DARE) + Yadav et al. 2023 (TIES); mergekit dare_ties",
        description="DARE drop and rescale, then TIES sign election and disjoint mean",
        fn=configured(sparsify="random", aggregate="disjoint_mean"),
        params={"p": 0.5, "seed": 0, "consensus": "sum", "weights": None, "lam": 1.0},
        per_adapter=_WEIGHTS,
        identity_params={"p": 0.0},
    ),
)
