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
from adaptermix.diagnostics.floor import (
    NoiseFloor,
    fsd_by_kind,
    fsd_kind_rows,
    noise_floor,
    tensor_kind,
    top_fraction_fsd,
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
    "NoiseFloor",
    "SignChange",
    "SubsetStats",
    "conflict_counts",
    "fsd",
    "fsd_matrix",
    "fsd_by_kind",
    "fsd_kind_rows",
    "fsd_matrix_flat",
    "grouped_conflict_counts",
    "grouped_fsd",
    "literal_fsd",
    "mean_pairwise",
    "noise_floor",
    "per_layer_fsd",
    "per_site_fsd",
    "sign_change_fraction",
    "subset_stats",
    "tensor_kind",
    "top_fraction_fsd",
]
