"""AdaMix (Wang et al. 2022) as one method package: everything the method is, nothing that does IO.

- :mod:`~adaptermix.methods.adamix.body`: experts per site, stochastic routing, the training loss hook
  and the derived-artefact hook; registers the ``adamix`` method.
- :mod:`~adaptermix.methods.adamix.consistency`: the consistency term of Eq. 5.
- :mod:`~adaptermix.methods.adamix.merging`: expert merging (Eq. 6) as pure functions, and
  :data:`MERGE_EXPERTS`, the derivation the training job writes.
- :mod:`~adaptermix.methods.adamix.inference`: the inference modes of Table 3 and the ensemble (Eq. 7).

Applying these to artefacts on disk is :mod:`adaptermix.artefacts.transforms` (``merge_experts``, beside mixing and
pruning); evaluating under inference modes and the GLUE experiment are :mod:`adaptermix.adamix`.
"""

from adaptermix.methods.adamix.body import PLACEMENT_SITES, AdaMixBody, AdaMixSite, ExpertLinear, Routing
from adaptermix.methods.adamix.consistency import consistency_loss, symmetric_kl
from adaptermix.methods.adamix.inference import AdaMixInference, ensemble_outputs
from adaptermix.methods.adamix.merging import (
    MERGE_EXPERTS,
    MERGED_SUFFIX,
    merge_expert_tensors,
    merged_method_config,
    merged_provenance,
)

__all__ = [
    "MERGED_SUFFIX",
    "MERGE_EXPERTS",
    "PLACEMENT_SITES",
    "AdaMixBody",
    "AdaMixInference",
    "AdaMixSite",
    "ExpertLinear",
    "Routing",
    "consistency_loss",
    "ensemble_outputs",
    "merge_expert_tensors",
    "merged_method_config",
    "merged_provenance",
    "symmetric_kl",
]
