"""Mixtures and sparse versions of adapter artefacts: library functions behind ``mix`` and ``prune``.

A mixture is an ordinary adapter artefact — the mixed body with the target domain's own head (or the
average head when all label sets are identical) — whose ``adapter.json`` records its provenance: which
adapters, which rule, which parameters, which space.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

from adaptermix.artefact import Adapter, AdapterMeta
from adaptermix.deltas import AdapterDelta
from adaptermix.errors import ConfigError
from adaptermix.merging import average_lora_dw, merge, mix_heads
from adaptermix.pool import AdapterPool
from adaptermix.pruning import magnitude_prune


def _meta_for(base: Adapter, provenance: dict[str, Any], method: dict[str, Any] | None = None) -> AdapterMeta:
    meta = copy.deepcopy(base.meta)
    return replace(meta, method=method or meta.method, metrics={}, provenance=provenance,
                   created_at=AdapterMeta.__dataclass_fields__["created_at"].default_factory())  # type: ignore[misc]


def mix_pool(
    pool: AdapterPool,
    rule: str,
    target: str | None = None,
    space: str = "raw",
    head_mode: str = "target",
    **params: Any,
) -> Adapter:
    """Mix every adapter of ``pool`` with ``rule`` into one in-memory artefact for ``target``.

    ``space`` "raw" mixes parameters as stored (the paper's Eq. 1 on LoRA factors); "dw" (LoRA, rule
    ``average`` only) averages the effective updates exactly, as a LoRA of rank k*r.
    """
    tpos = pool.index(target) if target is not None else 0
    tgt = pool.adapters[tpos]
    method = dict(tgt.meta.method)
    if space == "dw":
        if rule != "average":
            raise ConfigError(f"rule {rule!r} in space 'dw' gives a dense update that is not a LoRA; "
                              "only 'average' can be written in space 'dw'")
        scale = float(method["alpha"]) / float(method["rank"])
        weights = params.pop("weights", None)
        if params:
            raise ConfigError(f"unexpected parameter(s) for average in space dw: {', '.join(sorted(params))}")
        body = average_lora_dw([pool.stacked.delta(i) for i in range(len(pool.names))], scale, weights)
        rank = int(method["rank"]) * len(pool.names)
        method.update(rank=rank, alpha=scale * rank)
    else:
        body = merge(rule, pool.stacked_in("raw"), **params)
    heads = [a.head for a in pool.adapters]
    labels = [tuple(a.meta.task.get("label_names", ())) + (a.meta.task.get("problem", ""),) for a in pool.adapters]
    head = mix_heads(heads, labels, head_mode, tpos)
    provenance = {
        "kind": "mixed",
        "rule": rule,
        "space": space,
        "params": {k: v for k, v in params.items()},
        "target": pool.names[tpos],
        "head": head_mode,
        "adapters": [{"name": n, "path": str(a.path) if a.path else None} for n, a in zip(pool.names, pool.adapters, strict=True)],
    }
    tensors = {**body.to_state_dict(), **head}
    return Adapter(_meta_for(tgt, provenance, method), tensors)


def prune_adapter(adapter: Adapter, sparsity: float, scope: str = "global") -> Adapter:
    """Magnitude-prune an adapter's body to ``sparsity`` (Alg. 2, exact count); the head is kept dense."""
    body = magnitude_prune(AdapterDelta.from_state_dict(adapter.body), sparsity, scope)
    provenance = {"kind": "pruned", "sparsity": sparsity, "scope": scope,
                  "source": str(adapter.path) if adapter.path else adapter.name,
                  "source_provenance": adapter.meta.provenance}
    return Adapter(_meta_for(adapter, provenance), {**body.to_state_dict(), **adapter.head})
