"""AdaMix (Wang et al. 2022) beyond the method itself: merging, inference modes and the GLUE experiment.

The method (experts, stochastic routing, consistency loss) lives in :mod:`adaptermix.methods.adamix`.
"""

from adaptermix.adamix.consistency import consistency_loss, symmetric_kl
from adaptermix.adamix.merge import (
    merge_adapter,
    merge_artefact,
    merge_expert_tensors,
    merged_method_config,
    merged_path,
)
from adaptermix.methods.adamix import AdaMixBody, AdaMixInference

__all__ = [
    "AdaMixBody",
    "AdaMixInference",
    "consistency_loss",
    "merge_adapter",
    "merge_artefact",
    "merge_expert_tensors",
    "merged_method_config",
    "merged_path",
    "symmetric_kl",
]
