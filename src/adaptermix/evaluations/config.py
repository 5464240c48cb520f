"""How sweep specs and study configs list evaluation kinds, checked against the registry.

The form, like merge rules: ``evaluations: [clean, {name: fgsm, params: {epsilon: 0.02}}]`` — a name, or
a ``{name, params}`` item whose parameters are checked against the kind's config. The forms written
before kinds existed keep loading: ``evaluations: [clean, fgsm]`` with top-level ``fgsm: {epsilon: ...}``
and ``textfooler: {...}`` (:data:`LEGACY_KEYS`). :func:`fold_evaluations` turns every form into two
fields, ``evaluations`` (names, in order) and ``evaluation_params`` (name -> the parameters its trials
carry, :meth:`~adaptermix.evaluations.base.EvaluationKind.trial_params`); both are also accepted as
input, so a dumped config loads back to the same thing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import AfterValidator
from pydantic_core import PydanticCustomError

from adaptermix.errors import ConfigError
from adaptermix.evaluations.registry import EVALUATION_KINDS

#: Top-level keys that held a kind's parameters before ``{name, params}`` items (still read).
LEGACY_KEYS = ("fgsm", "textfooler")


def _quoted(names: list[str]) -> str:
    """'a', 'b' or 'c' (pydantic's wording for a choice, which error messages keep)."""
    q = [f"'{n}'" for n in names]
    return q[0] if len(q) == 1 else f"{', '.join(q[:-1])} or {q[-1]}"


def check_kind_name(name: str) -> str:
    """``name`` if it is a registered kind; otherwise an error listing the valid ones."""
    if name not in EVALUATION_KINDS:
        raise PydanticCustomError("literal_error", "Input should be {expected}",
                                  {"expected": _quoted(EVALUATION_KINDS.names())})
    return name


#: A config field item that must name a registered evaluation kind.
EvaluationName = Annotated[str, AfterValidator(check_kind_name)]


def fold_evaluations(data: Any) -> Any:
    """A raw config mapping with ``evaluations`` as names and every kind's parameters in
    ``evaluation_params`` (``{name, params}`` items and the legacy top-level keys folded in); a kind's
    parameters given twice are an error. Anything else is left for the model's own checks."""
    if not isinstance(data, Mapping):
        return data
    data = dict(data)
    given = data.get("evaluation_params")
    params: dict[str, Any] = dict(given) if isinstance(given, Mapping) else {}

    def put(name: str, value: Any, where: str) -> None:
        if name in params:
            raise ValueError(f"the parameters of evaluation {name!r} are given twice ({where} and elsewhere)")
        params[name] = {} if value is None else value

    for key in LEGACY_KEYS:
        if key in data:
            put(key, data.pop(key), f"top-level key {key!r}")
    items = data.get("evaluations")
    if isinstance(items, list | tuple):
        names = []
        for item in items:
            if isinstance(item, Mapping):
                extra = sorted(set(item) - {"name", "params"})
                if extra or not isinstance(item.get("name"), str):
                    raise ValueError(f"an evaluation item is a name or {{name, params}}, got {dict(item)!r}")
                put(item["name"], item.get("params"), f"item {item['name']!r}")
                names.append(item["name"])
            else:
                names.append(item)
        data["evaluations"] = names
        for name in names:
            if isinstance(name, str) and name in EVALUATION_KINDS:
                params.setdefault(name, {})
    if params or given is not None:
        data["evaluation_params"] = params if given is None or isinstance(given, Mapping) else given
    return data


def resolve_params(value: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Kind name -> the parameters its trials carry, each checked against the kind's config."""
    out = {}
    for name, params in value.items():
        if name not in EVALUATION_KINDS:
            valid = ", ".join(EVALUATION_KINDS.names())
            raise PydanticCustomError("evaluation_params", "unknown evaluation {name}; valid: {valid}",
                                      {"name": repr(name), "valid": valid})
        if not isinstance(params, Mapping):
            raise PydanticCustomError("evaluation_params", "the parameters of evaluation {name} must be a mapping",
                                      {"name": repr(name)})
        try:
            out[name] = EVALUATION_KINDS.get(name).trial_params(params)
        except ConfigError as exc:
            raise PydanticCustomError("evaluation_params", "{message}", {"message": str(exc)}) from None
    return out


def eval_params_of(evaluation_params: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The parameters the trials of kind ``name`` carry under a config's ``evaluation_params`` (the
    kind's defaults when the config gives none)."""
    if name in evaluation_params:
        return dict(evaluation_params[name])
    return EVALUATION_KINDS.get(name).trial_params({})
