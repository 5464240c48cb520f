"""A pool of adapter artefacts loaded together: checked for compatibility and stacked for fast maths.

Everything that works on several adapters at once (FSD, mixing, pruning, sweeps) starts here, so the
compatibility rules live in one place: same base model fingerprint, same method and method shape, same
tensor names and shapes; every adapter finite.
"""

from __future__ import annotations

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
from adaptermix.merging.compat import require_same
from adaptermix.methods import METHODS

# Method-config fields that change what an adapter's tensors mean (not just how it was trained), by method
# family: only the fields that apply to the method are compared (two LoRA adapters never differ by their
# unused ``bottleneck_size``), and a mismatch names only those.
_BOTTLENECK_FIELDS = ("bottleneck_size", "reduction_factor", "activation", "original_ln_before")
_SHAPE_FIELDS: dict[str, tuple[str, ...]] = {
    "bottleneck": _BOTTLENECK_FIELDS,
    "lora": ("rank", "alpha"),
    "adamix": (*_BOTTLENECK_FIELDS, "adamix.num_experts", "adamix.sharing", "adamix.placement"),
}
_ALL_SHAPE_FIELDS = tuple(dict.fromkeys(f for fs in _SHAPE_FIELDS.values() for f in fs))


def method_signature(meta: AdapterMeta) -> dict[str, Any]:
    """The part of the method config that two adapters must share to be mixed: the method's name and the
    fields that shape its tensors (every known shape field for a method outside the registry)."""
    # Validated first, so that a field added later with a default (an artefact written before the field
    # existed) compares equal to that default rather than to None.
    m = meta.method_config.model_dump()
    name = str(m.get("name"))
    family = METHODS.get(name).family if name in METHODS.names() else None
    sig: dict[str, Any] = {"name": name}
    for key in _SHAPE_FIELDS.get(family or "", _ALL_SHAPE_FIELDS):
        value: Any = m
        for part in key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        sig[key] = value
    return sig


def require_same_method(names: Sequence[str], signatures: Sequence[dict[str, Any]]) -> None:
    """One line naming the first adapter whose method differs, and only the fields that differ."""
    first = signatures[0]
    for name, sig in zip(names[1:], signatures[1:], strict=True):
        if sig["name"] != first["name"]:
            raise IncompatibleAdaptersError(
                f"adapters {names[0]!r} and {name!r} have different methods: {first['name']!r} vs {sig['name']!r}"
            )
        diff = [f"{k} {first[k]!r} vs {sig[k]!r}" for k in first if k != "name" and first[k] != sig.get(k)]
        if diff:
            raise IncompatibleAdaptersError(
                f"adapters {names[0]!r} and {name!r} have different {first['name']} settings: {', '.join(diff)}"
            )


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
    signatures = [method_signature(a.meta) for a in adapters]
    metas = [
        {"base_fingerprint": a.meta.base_model.get("fingerprint"), "method": sig}
        for a, sig in zip(adapters, signatures, strict=True)
    ]
    fingerprints = [m["base_fingerprint"] for m in metas]
    if any(f is not None for f in fingerprints):
        require_same("base_fingerprint", fingerprints, names)
    require_same_method(names, signatures)
    bodies = [AdapterDelta.from_state_dict(a.body) for a in adapters]
    try:
        check_mixable(names, bodies, metas)
    except IncompatibleAdaptersError:
        raise
    return AdapterPool(names, adapters, stack(bodies, names))
