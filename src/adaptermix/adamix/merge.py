"""AdaMix adapter merging (Eq. 6): average the experts of every projection into one bottleneck adapter.

The result is an ordinary ``houlsby`` or ``pfeiffer`` artefact (the method named by the AdaMix placement,
same bottleneck size, activation and dropout), so evaluation, FSD, mixing and sweeps use it without
knowing it came from AdaMix; only its provenance (``kind: adamix_merged``) says so. Merging is a pure
function on tensors: ``layers.{i}.{site}.{param}`` of shape ``[M, ...]`` becomes ``[...]`` (the mean over
the expert axis); head tensors are copied unchanged.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path

import torch

from adaptermix.artefact import Adapter, load_adapter, save_adapter
from adaptermix.errors import ArtefactError
from adaptermix.methods.config import AdaMixOptions, MethodConfig

MERGED_SUFFIX = "-merged"


def merge_expert_tensors(tensors: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Eq. 6 on a state dict: body tensors lose their leading expert axis by averaging; heads are copied."""
    return {k: (v if k.startswith("head.") else v.mean(0)) for k, v in tensors.items()}


def merged_method_config(cfg: MethodConfig) -> MethodConfig:
    """The plain bottleneck config equivalent to an AdaMix config after merging."""
    if cfg.name != "adamix":
        raise ArtefactError(
            f"cannot merge a {cfg.name!r} adapter: only 'adamix' adapters have experts to merge"
        )
    # preset is dropped: a preset naming "adamix" would otherwise override the new name when reloaded.
    return cfg.model_copy(update={"name": cfg.adamix.placement, "preset": None, "adamix": AdaMixOptions()})


def merged_path(artefact_dir: str | Path) -> Path:
    """Where the training job writes the merged adapter of ``artefact_dir``: the sibling ``<dir>-merged``."""
    p = Path(artefact_dir)
    return p.with_name(p.name + MERGED_SUFFIX)


def merge_adapter(adapter: Adapter) -> Adapter:
    """The merged adapter of an unmerged AdaMix artefact (metadata carried over, provenance recorded)."""
    cfg = adapter.meta.method_config
    merged_cfg = merged_method_config(cfg)
    provenance = {
        "kind": "adamix_merged",
        "rule": "mean of the experts of every projection (Wang et al. 2022, Eq. 6)",
        "source": str(adapter.path) if adapter.path else None,
        "source_provenance": adapter.meta.provenance,
        "adamix": cfg.adamix.model_dump(mode="json"),
    }
    # Metrics carry over: an unmerged body evaluates in MERGED mode by default, i.e. as this adapter.
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    meta = dataclasses.replace(
        adapter.meta, method=merged_cfg.model_dump(mode="json"), provenance=provenance, created_at=now
    )
    return Adapter(meta, merge_expert_tensors(adapter.tensors), None)


def merge_artefact(src: str | Path, out: str | Path) -> Path:
    """Read the unmerged AdaMix artefact ``src``, write its merged adapter to ``out`` (atomically)."""
    adapter = load_adapter(src)
    merged = merge_adapter(adapter)
    extra = {}
    config = Path(src) / "config.yaml"
    if config.is_file():
        extra["source_config.yaml"] = config.read_text(encoding="utf-8")
    return save_adapter(out, merged.tensors, merged.meta, extra)
