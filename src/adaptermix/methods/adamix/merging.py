"""AdaMix's expert merging (Wang et al. 2022, Eq. 6) as pure functions on tensors and configs.

Every projection's experts are averaged into one: ``layers.{i}.{site}.{param}`` of shape ``[M, ...]``
becomes ``[...]``; head tensors are copied unchanged. The result is an ordinary ``houlsby`` or
``pfeiffer`` adapter (the method named by the AdaMix placement, same bottleneck size, activation and
dropout), so evaluation, FSD, mixing and sweeps use it without knowing it came from AdaMix; only its
provenance (``kind: adamix_merged``) says so.

:data:`MERGE_EXPERTS` bundles these functions as a :class:`~adaptermix.methods.base.Derivation`: the
training job writes it beside the unmerged artefact (the body's ``derived_artefacts`` hook), and
:func:`adaptermix.artefacts.transforms.merge_experts` applies it to an artefact (``adaptermix adamix merge``). This
module never reads or writes files.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from adaptermix.core.errors import ArtefactError
from adaptermix.methods.base import Derivation
from adaptermix.methods.config import AdaMixConfig, AdaMixOptions, MethodConfig

MERGED_SUFFIX = "-merged"
"""The merged adapter of ``<dir>`` is written to the sibling ``<dir>-merged``."""


def merge_expert_tensors(tensors: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Eq. 6 on a state dict: body tensors lose their leading expert axis by averaging; heads are copied."""
    return {k: (v if k.startswith("head.") else v.mean(0)) for k, v in tensors.items()}


def merged_method_config(cfg: MethodConfig) -> MethodConfig:
    """The plain bottleneck config equivalent to an AdaMix config after merging."""
    if not isinstance(cfg, AdaMixConfig):
        raise ArtefactError(
            f"cannot merge a {cfg.name!r} adapter: only 'adamix' adapters have experts to merge"
        )
    # preset is dropped: a preset naming "adamix" would otherwise override the new name when reloaded.
    # Validated anew (not model_copy): the name selects another config class (the placement's method).
    merged: MethodConfig = MethodConfig.model_validate(
        {**cfg.model_dump(), "name": cfg.adamix.placement, "preset": None, "adamix": AdaMixOptions().model_dump()}
    )
    return merged


def merged_provenance(cfg: MethodConfig, source_provenance: dict[str, Any], source: str | None) -> dict[str, Any]:
    """What a merged adapter records about where it came from."""
    return {
        "kind": "adamix_merged",
        "rule": "mean of the experts of every projection (Wang et al. 2022, Eq. 6)",
        "source": source,
        "source_provenance": source_provenance,
        "adamix": (cfg.adamix if isinstance(cfg, AdaMixConfig) else AdaMixOptions()).model_dump(mode="json"),
    }


# Metrics carry over: an unmerged body evaluates in MERGED mode by default, i.e. as the merged adapter.
MERGE_EXPERTS = Derivation(MERGED_SUFFIX, merge_expert_tensors, merged_method_config, merged_provenance)
