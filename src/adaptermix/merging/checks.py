"""One-line parameter checks shared by the merge rules (a bad value is a ConfigError naming it)."""

from __future__ import annotations

import math
from typing import Any

from adaptermix.core.errors import ConfigError


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def number(name: str, value: Any) -> float:
    """A finite real number."""
    if not _is_number(value):
        raise ConfigError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def fraction(name: str, value: Any, *, open_low: bool, open_high: bool) -> float:
    """A number in [0, 1] with the open ends given, e.g. density in (0, 1]."""
    v = number(name, value)
    low_ok = v > 0.0 if open_low else v >= 0.0
    high_ok = v < 1.0 if open_high else v <= 1.0
    if not (low_ok and high_ok):
        interval = f"{'(' if open_low else '['}0, 1{')' if open_high else ']'}"
        raise ConfigError(f"{name} must be in {interval}, got {value}")
    return v


def density(value: Any) -> float:
    """The fraction of entries a sparsifier keeps: (0, 1]."""
    return fraction("density", value, open_low=True, open_high=False)


def positive(name: str, value: Any) -> float:
    v = number(name, value)
    if v <= 0.0:
        raise ConfigError(f"{name} must be > 0, got {value}")
    return v


def count(name: str, value: Any, minimum: int = 0) -> int:
    """An integer >= ``minimum``."""
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{name} must be true or false, got {value!r}")
    return value


def choice(name: str, value: Any, valid: tuple[str, ...]) -> str:
    if value not in valid:
        raise ConfigError(f"unknown {name} {value!r}; valid: {', '.join(valid)}")
    return str(value)
