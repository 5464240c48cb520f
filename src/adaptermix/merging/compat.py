"""The compatibility check to run before mixing adapters loaded from artefacts.

Adapters can be mixed only if they were trained on the same base model (same fingerprint), with the
same method and hence the same tensor names and shapes. The artefact loader supplies the metadata; the
layout check is :func:`adaptermix.deltas.require_same_layout`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from adaptermix.core.errors import IncompatibleAdaptersError
from adaptermix.deltas import AdapterDelta, require_same_layout


def require_same(field: str, values: Sequence[Any], names: Sequence[str]) -> None:
    """Raise a one-line IncompatibleAdaptersError at the first adapter whose ``field`` differs."""
    for value, name in zip(values[1:], names[1:], strict=True):
        if value != values[0]:
            raise IncompatibleAdaptersError(
                f"adapters {names[0]!r} and {name!r} have different {field}: {values[0]!r} vs {value!r}"
            )


def check_mixable(
    names: Sequence[str], deltas: Sequence[AdapterDelta], metadata: Sequence[Mapping[str, Any]] = ()
) -> None:
    """Same base fingerprint and method (when the metadata carries them), then same tensors and shapes."""
    for field in ("base_fingerprint", "method"):
        values = [m.get(field) for m in metadata]
        if values and any(v is not None for v in values):
            require_same(field, values, names)
    require_same_layout([d.layout for d in deltas], names)
