"""The shape of an evaluation kind: what a sweep measures per mixture (clean metric, an attack ...).

An :class:`EvaluationKind` holds everything the rest of the tool needs to know about one kind: its name,
a pydantic model of its parameters with their defaults, the function that runs it on a model, the label
and colour the report gives it, whether it is an attack, and a one-line description for
``adaptermix list``. Sweep specs, study configs, the runner, ``adaptermix attack``, the report and the
listing read these fields; none of them names a kind.

This module imports no torch and no kind: kinds import it and register themselves with
:func:`register_evaluation_kind` where they are defined (``clean`` in :mod:`adaptermix.evaluations.clean`,
``fgsm`` in :mod:`adaptermix.attacks.fgsm`, ``textfooler`` in :mod:`adaptermix.attacks.textfooler_eval`).
Read the registry through :mod:`adaptermix.evaluations.registry`, which imports the built-in kinds first.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import UnionType
from typing import (
    TYPE_CHECKING,
    Annotated,
    Any,
    Generic,
    Literal,
    Protocol,
    TypeVar,
    Union,
    get_args,
    get_origin,
)

from pydantic import BaseModel, ValidationError

from adaptermix.core.config import StrictModel
from adaptermix.core.errors import ConfigError
from adaptermix.core.registry import Registry

if TYPE_CHECKING:
    from adaptermix.backbone.prefix import FrozenPrefix
    from adaptermix.data.schema import Example, TaskInfo
    from adaptermix.model import AdapterModel
    from adaptermix.training.batching import TokenizedSet


@dataclass(frozen=True)
class AdversarialExample:
    """One attacked example of a trial (TextFooler), kept for inspection (a row of the store's
    ``adversarial_examples`` table; also re-exported by :mod:`adaptermix.sweep.store`)."""

    idx: int
    original: str
    adversarial: str
    original_label: str
    success: bool
    original_prediction: str | None = None
    new_prediction: str | None = None
    original_pair: str | None = None
    adversarial_pair: str | None = None
    queries: int | None = None
    perturbed_words: int | None = None


@dataclass
class EvalSet:
    """A target's evaluation examples, tokenised once for every mixture of that target."""

    info: TaskInfo
    examples: list[Example]
    tokens: TokenizedSet
    max_length: int
    #: The frozen encoder's prefix of these batches, computed once for every mixture (a sweep sets it
    #: for the live model; kinds that run plain forwards may use it, others ignore it).
    prefix: FrozenPrefix | None = None


@dataclass
class EvalOutcome:
    """What one evaluation of one model measured: the headline metric (None when the kind does not apply,
    e.g. TextFooler on regression), every metric and statistic, and any adversarial examples."""

    metric: float | None
    metrics: dict[str, Any]
    adversarial: tuple[AdversarialExample, ...] = field(default_factory=tuple)


class EvaluationRun(Protocol):
    """``run(model, eval_set, params, identity, batch_size) -> EvalOutcome``.

    ``params`` are the trial's parameters as recorded in its key (a mapping; parse them with
    :meth:`EvaluationKind.parse`); ``identity`` names the model (the trial key), e.g. for a query cache.
    Kinds with ``reports_progress`` also take ``progress=callback(done, total)``.
    """

    def __call__(
        self, model: AdapterModel, eval_set: EvalSet, params: Mapping[str, Any], identity: str, batch_size: int
    ) -> EvalOutcome: ...


class NoParameters(StrictModel):
    """The parameters of a kind that has none (``clean``)."""


C = TypeVar("C", bound=BaseModel)


@dataclass(frozen=True)
class EvaluationKind(Generic[C]):
    """One registered evaluation kind.

    ``defaults_in_key``: the trial key's ``eval_params`` hold the parameters given over the config's
    defaults (so a changed default is a new trial); when False only the parameters given are keyed
    (TextFooler: its trials were keyed so before kinds existed, and stores keep their keys).
    ``order``: position in the report's tables and figures (then by name).
    ``reports_progress``: ``run`` takes ``progress=callback(done, total)`` (``adaptermix attack`` shows a bar).
    ``keeps_examples``: ``run`` returns adversarial examples (``adaptermix attack`` writes examples.md).
    ``own_sweep``: a study runs it in a sweep of its own, on the ``average`` rule only and on
    ``sweep.textfooler_per_k`` subsets per k when set (an attack that costs seconds per example).
    """

    name: str
    config: type[C]
    run: Callable[..., EvalOutcome]
    label: str
    colour: str
    adversarial: bool
    description: str
    defaults_in_key: bool = True
    order: int = 100
    reports_progress: bool = False
    keeps_examples: bool = False
    own_sweep: bool = False

    def parse(self, params: Mapping[str, Any] | None = None) -> C:
        """The kind's config from ``params``; unknown or invalid parameters are one-line errors."""
        try:
            return self.config.model_validate(dict(params or {}))
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(str(x) for x in err["loc"])
            if err["type"] == "extra_forbidden":
                valid = ", ".join(_fields_at(self.config, err["loc"][:-1])) or "(none)"
                raise ConfigError(f"unknown parameter {loc!r} of evaluation {self.name!r}; valid: {valid}") from None
            raise ConfigError(f"evaluation {self.name!r}: {loc or '(top level)'}: {err['msg']}") from None

    def defaults(self) -> dict[str, Any]:
        """Every parameter's default (JSON values)."""
        return self.config().model_dump(mode="json")

    def trial_params(self, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The ``eval_params`` a trial of this kind carries (and is keyed by), after checking ``params``.

        The values given are kept as given (not as the config coerces them: ``1`` stays ``1``, not
        ``1.0``), so keys of trials written before kinds existed do not change; with ``defaults_in_key``
        they are laid over the defaults (top-level parameters).
        """
        given = json.loads(json.dumps(dict(params or {})))
        self.parse(given)
        return {**self.defaults(), **given} if self.defaults_in_key else given

    def parameters(self) -> list[tuple[str, str, Any]]:
        """(name, type, default) of every parameter, for ``adaptermix list``."""
        out = []
        for name, info in self.config.model_fields.items():
            default = info.get_default(call_default_factory=True)
            if isinstance(default, BaseModel):
                default = default.model_dump(mode="json")
            out.append((name, type_name(info.annotation), default))
        return out


def type_name(annotation: Any) -> str:
    """A short, readable name of a parameter's type: ``int | None``, ``'angular' | 'cosine'``, ``float``."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Literal:
        return " | ".join(repr(a) for a in args)
    if origin is Annotated:
        return type_name(args[0])
    if origin in (Union, UnionType):
        return " | ".join(type_name(a) for a in args)
    if annotation is type(None):
        return "None"
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def _fields_at(model: type[BaseModel], path: tuple[Any, ...]) -> list[str]:
    """The field names of the (nested) model at ``path`` inside ``model`` ([] if it is not a model)."""
    for part in path:
        info = model.model_fields.get(str(part))
        sub = info.annotation if info is not None else None
        if not (isinstance(sub, type) and issubclass(sub, BaseModel)):
            return []
        model = sub
    return list(model.model_fields)


#: Every kind by name. Complete only once the built-in kinds are imported: read it through
#: :data:`adaptermix.evaluations.registry.EVALUATION_KINDS`.
_KINDS: Registry[EvaluationKind[Any]] = Registry("evaluation")


def register_evaluation_kind(kind: EvaluationKind[C]) -> EvaluationKind[C]:
    """Register ``kind`` under its name (the one line a new kind adds beside its definition)."""
    _KINDS.register(kind.name, kind)
    return kind
