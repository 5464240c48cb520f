"""AdaMix adapter merging (Eq. 6): average the experts of every projection into one bottleneck adapter.

The result is an ordinary ``houlsby`` or ``pfeiffer`` artefact (the method named by the AdaMix placement,
same bottleneck size, activation and dropout), so evaluation, FSD, mixing and sweeps use it without
knowing it came from AdaMix; only its provenance (``kind: adamix_merged``) says so. Merging is a pure
function on tensors: ``layers.{i}.{site}.{param}`` of shape ``[M, ...]`` becomes ``[...]`` (the mean over
the expert axis); head tensors are copied unchanged. The pure functions live with the method
(:data:`adaptermix.methods.adamix.MERGE_EXPERTS`, which the training job applies through the body's
``derived_artefacts`` hook); this module applies them to artefacts on disk.
"""

from __future__ import annotations

from pathlib import Path

from adaptermix.artefact import Adapter, derive_adapter, derived_path, write_derived
from adaptermix.methods.adamix import (
    MERGE_EXPERTS,
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


def merged_path(artefact_dir: str | Path) -> Path:
    """Where the training job writes the merged adapter of ``artefact_dir``: the sibling ``<dir>-merged``."""
    return derived_path(artefact_dir, MERGE_EXPERTS)


def merge_adapter(adapter: Adapter) -> Adapter:
    """The merged adapter of an unmerged AdaMix artefact (metadata carried over, provenance recorded)."""
    return derive_adapter(adapter, MERGE_EXPERTS)


def merge_artefact(src: str | Path, out: str | Path) -> Path:
    """Read the unmerged AdaMix artefact ``src``, write its merged adapter to ``out`` (atomically)."""
    return write_derived(src, MERGE_EXPERTS, out)
