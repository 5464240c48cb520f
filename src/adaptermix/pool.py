"""A pool of adapter artefacts loaded together: checked for compatibility and stacked for fast maths.

Everything that works on several adapters at once (FSD, mixing, pruning, sweeps) starts here, so the
compatibility rules live in one place: same base model fingerprint, same method and method shape, same
tensor names and shapes; every adapter finite.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import torch

from adaptermix.artefact import Adapter, AdapterMeta, load_adapter
from adaptermix.deltas import AdapterDelta, StackedDeltas, stack, to_dw
from adaptermix.diagnostics import FSDMatrix, fsd_matrix
from adaptermix.errors import ConfigError, IncompatibleAdaptersError
from adaptermix.merging import check_mixable

# Method-config fields that change what an adapter's tensors mean (not just how it was trained).
_SHAPE_FIELDS = ("name", "bottleneck_size", "reduction_factor", "activation", "rank", "alpha", "original_ln_before")


def method_signature(meta: AdapterMeta) -> str:
    """The part of the method config that two adapters must share to be mixed."""
    # Validated first, so that a field added later with a default (an artefact written before the field
    # existed) compares equal to that default rather than to None.
    m = meta.method_config.model_dump()
    return ",".join(f"{k}={m.get(k)}" for k in _SHAPE_FIELDS)


@dataclass
class AdapterPool:
    """N compatible adapters: their artefacts and their bodies stacked as one [N, P] matrix."""

    names: list[str]
    adapters: list[Adapter]
    stacked: StackedDeltas
    _fsd: dict[str, FSDMatrix] = field(default_factory=dict)

    @property
    def flat(self) -> torch.Tensor:
        return self.stacked.matrix

    @property
    def method(self) -> dict[str, Any]:
        return self.adapters[0].meta.method

    @property
    def is_lora(self) -> bool:
        return self.method.get("name") == "lora"

    @property
    def inits(self) -> dict[str, str]:
        """Adapter name -> the ``method.init`` it was trained from (``mam`` for artefacts older than the field)."""
        return {n: str(a.meta.method_config.init) for n, a in zip(self.names, self.adapters, strict=True)}

    def index(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise ConfigError(f"{name!r} is not in the adapter pool ({', '.join(self.names)})") from None

    def stacked_in(self, space: str) -> StackedDeltas:
        """The pool in ``space``: "raw" parameters, or "dw" effective updates (LoRA only)."""
        if space == "raw":
            return self.stacked
        if space != "dw":
            raise ConfigError(f"unknown space {space!r}; valid: raw, dw")
        if not self.is_lora:
            raise ConfigError("space 'dw' applies to LoRA adapters only")
        return self._dw

    @cached_property
    def _dw(self) -> StackedDeltas:
        scale = float(self.method["alpha"]) / float(self.method["rank"])
        return stack([to_dw(self.stacked.delta(i), scale) for i in range(len(self.names))], self.names)

    def fsd(self, space: str = "raw") -> FSDMatrix:
        """The pool's FSD matrix (Alg. 3 for every pair), computed once per space."""
        if space not in self._fsd:
            self._fsd[space] = fsd_matrix(self.stacked_in(space))
        return self._fsd[space]


def load_pool(dirs: Sequence[str | Path] | Mapping[str, str | Path]) -> AdapterPool:
    """Load adapters (a list named by directory, or a name -> directory mapping) and check they mix."""
    items = list(dirs.items()) if isinstance(dirs, Mapping) else [(Path(d).name, d) for d in dirs]
    if not items:
        raise ConfigError("no adapters given")
    names = [n for n, _ in items]
    if len(set(names)) != len(names):
        raise ConfigError("two adapters have the same name; give them distinct directory names")
    adapters = [load_adapter(p) for _, p in items]
    metas = [
        {"base_fingerprint": a.meta.base_model.get("fingerprint"), "method": method_signature(a.meta)}
        for a in adapters
    ]
    bodies = [AdapterDelta.from_state_dict(a.body) for a in adapters]
    try:
        check_mixable(names, bodies, metas)
    except IncompatibleAdaptersError:
        raise
    pool = AdapterPool(names, adapters, stack(bodies, names))
    warn_mixed_inits(pool.inits)
    return pool


def warn_mixed_inits(inits: Mapping[str, str]) -> None:
    """Warn when adapters start from different init schemes: they still mix (same shapes), but their sign
    statistics (FSD, sign changes) then compare different starting points, not what training changed."""
    kinds = sorted(set(inits.values()))
    if len(kinds) > 1:
        which = ", ".join(f"{n}={i}" for n, i in inits.items())
        warnings.warn(
            f"adapters were initialised differently ({which}): they can be mixed, but FSD between them "
            "mostly measures the different inits", stacklevel=3,
        )
