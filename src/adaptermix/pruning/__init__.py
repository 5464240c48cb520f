"""Pruning of adapters: exact magnitude pruning (Alg. 2) and FSD-guided layer pruning (Alg. 4 step).

Sparse adapters are ordinary deltas with zeros, so they can be saved, mixed and evaluated like dense ones.
Pruners are registered in ``PRUNERS`` ("magnitude", "fsd_layers") where they are defined.
"""

from adaptermix.pruning.base import PRUNERS, Pruner, check_sparsity, prune, resolve_params
from adaptermix.pruning.fsd_guided import (
    conflicting_groups,
    fsd_guided_prune,
    fsd_guided_prune_flat,
    mean_group_fsd_vs_others,
)
from adaptermix.pruning.magnitude import SCOPES, keep_counts, magnitude_prune, prune_rows, topk_mask_grouped

__all__ = [
    "PRUNERS",
    "SCOPES",
    "Pruner",
    "check_sparsity",
    "conflicting_groups",
    "fsd_guided_prune",
    "fsd_guided_prune_flat",
    "keep_counts",
    "magnitude_prune",
    "mean_group_fsd_vs_others",
    "prune",
    "prune_rows",
    "resolve_params",
    "topk_mask_grouped",
]
