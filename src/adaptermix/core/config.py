"""Configuration: frozen pydantic models loaded from YAML, with ``--set a.b=c`` overrides.

Pattern from mergekit: *what to compute* (the recipe) is validated strictly — unknown keys are an error —
and the fully resolved config is saved beside every output (like peft's ``adapter_config.json``).
Overrides are applied to the raw mapping and the result is validated again, so an override can never
produce a config that would not load from a file.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from adaptermix.core.errors import ConfigError
from adaptermix.core.hashing import json_hash

M = TypeVar("M", bound=BaseModel)


class StrictModel(BaseModel):
    """Base for every config model: immutable, unknown keys rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping; a missing file, a parse error or a non-mapping is a :class:`ConfigError`."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file not found: {p}")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"config file {p} is not valid UTF-8") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        raise ConfigError(f"malformed YAML in {p}{where}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {p} must hold a mapping at the top level")
    return data


def parse_override(item: str) -> tuple[list[str], Any]:
    """Parse ``a.b=c`` into (["a", "b"], value); the value is read as YAML (numbers, lists, null ...)."""
    if "=" not in item:
        raise ConfigError(f"override {item!r} must look like key.path=value")
    key, raw = item.split("=", 1)
    parts = key.strip().split(".")
    if not all(parts):
        raise ConfigError(f"override {item!r} has an empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return parts, value


def apply_overrides(data: dict[str, Any], overrides: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """Return a copy of ``data`` with every ``a.b=c`` override applied (nested keys are created)."""
    out = copy.deepcopy(data)
    for item in overrides:
        parts, value = parse_override(item)
        node = out
        for part in parts[:-1]:
            nxt = node.get(part)
            if nxt is None:
                nxt = {}
                node[part] = nxt
            if not isinstance(nxt, dict):
                raise ConfigError(f"override {item!r}: {part!r} is not a mapping")
            node = nxt
        node[parts[-1]] = value
    return out


def format_validation_error(exc: ValidationError, source: str) -> str:
    """One line naming the first problem: its key path and what is wrong."""
    err = exc.errors()[0]
    loc = ".".join(str(x) for x in err["loc"]) or "(top level)"
    if err["type"] == "extra_forbidden":
        return f"{source}: unknown key {loc!r}"
    if err["type"] == "missing":
        return f"{source}: missing required key {loc!r}"
    more = f" (+{len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    return f"{source}: {loc}: {err['msg']}{more}"


def validate(model: type[M], data: dict[str, Any], source: str = "config") -> M:
    """Validate a raw mapping into ``model``; errors become a one-line :class:`ConfigError`."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source)) from None


def load_config(model: type[M], path: str | Path | None, overrides: list[str] | tuple[str, ...] = ()) -> M:
    """Load ``path`` (or an empty mapping), apply overrides, validate into ``model``."""
    data = read_yaml(path) if path is not None else {}
    data = apply_overrides(data, overrides)
    return validate(model, data, source=str(path) if path is not None else "config")


def dump_config(cfg: BaseModel) -> str:
    """The fully resolved config as YAML (saved beside every output)."""
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)


def config_hash(cfg: StrictModel, ignore: tuple[str, ...] = ("output_dir",)) -> str:
    """A stable hash of what a config computes (``output_dir`` and progress flags excluded).

    Values equal to their defaults are left out, so adding a new option with a default that keeps the old
    behaviour does not invalidate artefacts trained before it existed.
    """
    data = cfg.model_dump(mode="json", exclude_defaults=True)
    for key in ignore:
        data.pop(key, None)
    if isinstance(data.get("train"), dict):
        data["train"].pop("progress", None)
    return json_hash(data, compact=True)
