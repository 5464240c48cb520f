"""Sign diagnostics of adapter pools and mixtures: FSD (Alg. 3) and sign changes (Figs. 4-6).

Every result records the space it was computed in: "raw" parameters (the paper) or "dw" (LoRA effective
updates, see :func:`adaptermix.deltas.to_dw`).
"""

from adaptermix.diagnostics.conflicts import (
    FSDMatrix,
    GroupedFSD,
    conflict_counts,
    fsd,
    fsd_matrix,
    fsd_matrix_flat,
    grouped_conflict_counts,
    grouped_fsd,
    literal_fsd,
    per_layer_fsd,
    per_site_fsd,
)
from adaptermix.diagnostics.signs import (
    SignChange,
    SubsetStats,
    mean_pairwise,
    sign_change_fraction,
    subset_stats,
)

__all__ = [
    "FSDMatrix",
    "GroupedFSD",
    "SignChange",
    "SubsetStats",
    "conflict_counts",
    "fsd",
    "fsd_matrix",
    "fsd_matrix_flat",
    "grouped_conflict_counts",
    "grouped_fsd",
    "literal_fsd",
    "mean_pairwise",
    "per_layer_fsd",
    "per_site_fsd",
    "sign_change_fraction",
    "subset_stats",
]
