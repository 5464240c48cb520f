"""Old import path of AdaMix merging (Eq. 6), kept for users' code: a thin re-export, nothing defined here.

The pure functions live with the method (:mod:`adaptermix.methods.adamix.merging`); applying them to
artefacts is an artefact transform (:mod:`adaptermix.artefacts.transforms`: ``average_experts``,
``average_experts_artefact``, ``merged_path``). ``merge_adapter`` / ``merge_artefact`` are their old names.
"""

from adaptermix.artefacts.transforms import average_experts as merge_adapter
from adaptermix.artefacts.transforms import average_experts_artefact as merge_artefact
from adaptermix.artefacts.transforms import merged_path
from adaptermix.methods.adamix.merging import (
    MERGED_SUFFIX,
    merge_expert_tensors,
    merged_method_config,
    merged_provenance,
)

__all__ = [
    "MERGED_SUFFIX",
    "merge_adapter",
    "merge_artefact",
    "merge_expert_tensors",
    "merged_method_config",
    "merged_path",
    "merged_provenance",
]
