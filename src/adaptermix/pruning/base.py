"""The pruner plug-in record, its registry and the parameter check shared with merge rules."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from adaptermix.core.errors import ConfigError
from adaptermix.core.registry import Registry
from adaptermix.deltas import StackedDeltas


def resolve_params(
    kind: str, name: str, defaults: Mapping[str, Any], given: Mapping[str, Any]
) -> dict[str, Any]:
    """Defaults overridden by ``given``; an unknown parameter is a one-line ConfigError listing valid ones."""
    for key in given:
        if key not in defaults:
            valid = ", ".join(sorted(defaults)) or "(none)"
            raise ConfigError(f"unknown parameter {key!r} for {kind} {name!r}; valid: {valid}")
    return {**defaults, **given}


def check_sparsity(s: float) -> float:
    """Sparsity is the fraction of parameters set to zero; it must lie in [0, 1]."""
    if not isinstance(s, (int, float)) or not 0.0 <= float(s) <= 1.0:
        raise ConfigError(f"sparsity must be in [0, 1], got {s}")
    return float(s)


@dataclass(frozen=True)
class Pruner:
    """A pruning method applied to a pool of adapters (some, like ``fsd_layers``, look at the others)."""

    name: str
    reference: str
    description: str
    fn: Callable[..., StackedDeltas]
    params: Mapping[str, Any] = field(default_factory=dict)


PRUNERS: Registry[Pruner] = Registry("pruner")


def prune(name: str, stacked: StackedDeltas, **params: Any) -> StackedDeltas:
    """Prune every adapter of ``stacked`` with the registered pruner ``name``; results stay dense tensors."""
    pruner = PRUNERS.get(name)
    return pruner.fn(stacked, **resolve_params("pruner", name, pruner.params, params))
