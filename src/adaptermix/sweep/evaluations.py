"""What a sweep measures per mixture: registered evaluations (clean, FGSM, TextFooler ...).

An evaluation maps (the live model with the mixture in place, the target's evaluation set, the trial's
parameters) to its headline metric, all metrics/statistics, and optionally adversarial examples.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from adaptermix.attacks.fgsm import fgsm_evaluate
from adaptermix.attacks.model_victim import ModelVictim
from adaptermix.data.schema import Example, TaskInfo
from adaptermix.model import AdapterModel
from adaptermix.registry import Registry
from adaptermix.sweep.store import AdversarialExample
from adaptermix.training.batching import TokenizedSet
from adaptermix.training.evaluate import evaluate


@dataclass
class EvalSet:
    """A target's evaluation examples, tokenised once for every mixture of that target."""

    info: TaskInfo
    examples: list[Example]
    tokens: TokenizedSet
    max_length: int


@dataclass
class EvalOutcome:
    metric: float | None
    metrics: dict[str, Any]
    adversarial: tuple[AdversarialExample, ...] = field(default_factory=tuple)


Evaluation = Callable[[AdapterModel, EvalSet, Mapping[str, Any], str, int], EvalOutcome]
EVALUATIONS: Registry[Evaluation] = Registry("evaluation")


def _clean(model: AdapterModel, es: EvalSet, params: Mapping[str, Any], identity: str, batch_size: int) -> EvalOutcome:
    metrics = evaluate(model, es.tokens, es.info, batch_size)
    return EvalOutcome(metrics[es.info.metric], metrics)


def _fgsm(model: AdapterModel, es: EvalSet, params: Mapping[str, Any], identity: str, batch_size: int) -> EvalOutcome:
    victim = ModelVictim(model, es.max_length, batch_size, es.info.is_pair, es.info.problem == "regression")
    metrics = fgsm_evaluate(victim, es.tokens, es.info, float(params.get("epsilon", 0.01)), batch_size)
    return EvalOutcome(metrics[es.info.metric], metrics)


EVALUATIONS.register("clean", _clean)
EVALUATIONS.register("fgsm", _fgsm)
