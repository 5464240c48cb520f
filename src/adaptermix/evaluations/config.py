"""How sweep specs and study configs list evaluation kinds, checked against the registry.

The form, like merge rules: ``evaluations: [clean, {name: fgsm, params: {epsilon: 0.02}}]`` — a name, or
a ``{name, params}`` item whose parameters are checked against the kind's config. The forms written
before kinds existed keep loading: ``evaluations: [clean, fgsm]`` with top-level ``fgsm: {epsilon: ...}``
and ``textfooler: {...}`` (:data:`LEGACY_KEYS`). :func:`fold_evaluations` turns every form into two
fields, ``evaluations`` (names, in order) and ``evaluation_params`` (name -> the parameters given,
checked by :func:`check_params`; none given, none kept); :func:`eval_params_of` resolves what a kind's
trials carry (:meth:`~adaptermix.evaluations.base.EvaluationKind.trial_params`).

Dumped, a config keeps the layout it had before kinds existed (:func:`legacy_layout`): FGSM's and
TextFooler's parameters under their own keys right after ``evaluations``, ``evaluation_params`` only for
other kinds. So the dump of an old config — the input of ``adaptermix reproduce``'s output stamp, the
saved ``config.yaml``, a run's provenance in the results store — is the same as before, a study started
before keeps resuming, and a dump loads back to a config with the same trials.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import AfterValidator, field_validator, model_validator
from pydantic_core import PydanticCustomError

from adaptermix.core.config import StrictModel
from adaptermix.core.errors import ConfigError
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
    given_params = dict(given) if isinstance(given, Mapping) else {}
    params: dict[str, Any] = {k: v for k, v in given_params.items() if v is not None and v != {}}
    seen: set[str] = set(given_params)

    def put(name: str, value: Any, where: str) -> None:
        if name in seen:
            raise ValueError(f"the parameters of evaluation {name!r} are given twice ({where} and elsewhere)")
        seen.add(name)
        if value is not None and value != {}:  # no parameters: the kind's defaults, as if none were given
            params[name] = value

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
    if params or given is not None:
        data["evaluation_params"] = params if given is None or isinstance(given, Mapping) else given
    return data


def check_params(value: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Kind name -> the parameters given (plain JSON), each checked against the kind's config."""
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
            EVALUATION_KINDS.get(name).trial_params(params)
            out[name] = json.loads(json.dumps(dict(params)))
        except ConfigError as exc:
            raise PydanticCustomError("evaluation_params", "{message}", {"message": str(exc)}) from None
    return out


class EvaluationsModel(StrictModel):
    """Base of the models with ``evaluations`` / ``evaluation_params`` fields (sweep specs, a study's sweep
    stage): the old forms are folded into the new one before validation, and every kind's parameters are
    checked against its config — one pair of validators for both."""

    @model_validator(mode="before")
    @classmethod
    def _fold_evaluations(cls, data: Any) -> Any:
        return fold_evaluations(data)

    @field_validator("evaluation_params", check_fields=False)
    @classmethod
    def _params(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        return check_params(value)


def eval_params_of(evaluation_params: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The parameters the trials of kind ``name`` carry under a config's ``evaluation_params`` (the
    parameters given, over the kind's defaults where it keys them)."""
    return EVALUATION_KINDS.get(name).trial_params(evaluation_params.get(name) or {})


def legacy_layout(data: dict[str, Any], legacy: Mapping[str, Any], defaults: Mapping[str, Any],
                  exclude_defaults: bool = False) -> dict[str, Any]:
    """A dumped config (``data``, with ``evaluation_params``) in the layout of before evaluation kinds:
    ``legacy`` (:data:`LEGACY_KEYS` -> the value their old field held) right after ``evaluations``
    (left out where equal to the old field's default in ``defaults`` under ``exclude_defaults``), and
    ``evaluation_params`` only for other kinds, only when there are any."""
    params = data.pop("evaluation_params", None) or {}
    old = {k: v for k, v in legacy.items() if not (exclude_defaults and v == defaults.get(k))}
    out: dict[str, Any] = {}
    for key, value in data.items():
        out[key] = value
        if key == "evaluations":
            out.update(old)
    if "evaluations" not in data:
        out.update(old)
    rest = {k: v for k, v in params.items() if k not in LEGACY_KEYS}
    if rest:
        out["evaluation_params"] = rest
    return out
