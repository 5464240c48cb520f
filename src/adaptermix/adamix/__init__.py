"""The AdaMix GLUE experiment (Wang et al. 2022 Tables 1, 3, 4, 6) and evaluation under inference modes.

The method itself (experts, routing, consistency loss, expert merging, inference modes) is the method
package :mod:`adaptermix.methods.adamix`; merging artefacts is :func:`adaptermix.artefacts.transforms.average_experts`.
This package holds what runs on top of them: :mod:`~adaptermix.adamix.inference` (evaluate an unmerged
checkpoint under a mode), :mod:`~adaptermix.adamix.experiment` (the grid, run by the job engine
:mod:`adaptermix.core.jobs`), :mod:`~adaptermix.adamix.runner` and :mod:`~adaptermix.adamix.report`.

The names below are re-exported for code written against the old layout (``from adaptermix.adamix import
merge_artefact``); ``adaptermix.adamix.merge`` and ``adaptermix.adamix.consistency`` are thin re-export
modules for the same reason.
"""

from adaptermix.artefacts.transforms import average_experts as merge_adapter
from adaptermix.artefacts.transforms import average_experts_artefact as merge_artefact
from adaptermix.artefacts.transforms import merged_path
from adaptermix.methods.adamix import (
    AdaMixBody,
    AdaMixInference,
    consistency_loss,
    merge_expert_tensors,
    merged_method_config,
    symmetric_kl,
)

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
