"""The ``clean`` evaluation kind: the task's metrics on the unperturbed evaluation examples.

It is :func:`adaptermix.training.evaluate.evaluate` (the one evaluation path of training and sweeps) as a
registered kind; it has no parameters. It starts each forward from the evaluation set's cached frozen
prefix when the set carries one (a sweep's, :mod:`adaptermix.backbone.prefix`): identical outputs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from adaptermix.evaluations.base import (
    EvalOutcome,
    EvalSet,
    EvaluationKind,
    NoParameters,
    register_evaluation_kind,
)

if TYPE_CHECKING:
    from adaptermix.model import AdapterModel


def run_clean(model: AdapterModel, es: EvalSet, params: Mapping[str, Any], identity: str, batch_size: int) -> EvalOutcome:
    """Every metric of the task on ``es``; the headline is the task's metric."""
    from adaptermix.training.evaluate import evaluate

    metrics = evaluate(model, es.tokens, es.info, batch_size, es.prefix)
    return EvalOutcome(metrics[es.info.metric], metrics)


CLEAN = register_evaluation_kind(EvaluationKind(
    name="clean",
    config=NoParameters,
    run=run_clean,
    label="clean",
    colour="tab:blue",
    adversarial=False,
    description="the task's metrics on the unperturbed evaluation examples",
    order=0,
))
