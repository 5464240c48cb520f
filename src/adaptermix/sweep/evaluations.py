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


_ATTACKS: dict[str, object] = {}


def _textfooler_attack(params: Mapping[str, Any], precision: str = "fp32") -> object:
    """One TextFooler recipe per parameter set per process: its heavy resources load once.

    The similarity judge runs at the victim encoder's ``precision`` unless ``resources.precision`` is set
    (the fast path of issue 16: a bf16 victim gets a bf16 judge); fp32 leaves ``params`` as they are.
    """
    import json

    from adaptermix.attacks.textfooler import TextFoolerConfig, TextFoolerJin2019
    from adaptermix.config import validate

    resources = dict(params.get("resources") or {})
    if precision != "fp32" and resources.get("precision") is None:
        params = {**params, "resources": {**resources, "precision": precision}}
    key = json.dumps(dict(params), sort_keys=True, default=str)
    if key not in _ATTACKS:
        _ATTACKS[key] = TextFoolerJin2019(validate(TextFoolerConfig, dict(params), source="textfooler"))
    return _ATTACKS[key]


def _textfooler(
    model: AdapterModel,
    es: EvalSet,
    params: Mapping[str, Any],
    identity: str,
    batch_size: int,
    progress: Callable[[int, int], None] | None = None,
) -> EvalOutcome:
    """TextFooler on the target's evaluation examples (the first ``max_examples``); the task metric is
    computed on the attacked examples with the post-attack predictions, next to the attack statistics.
    ``progress(done, total)`` is called after each example (the ``attack`` command's progress bar)."""
    import numpy as np

    from adaptermix.attacks.resources import judge_is_victim_backbone
    from adaptermix.attacks.victim import CachedVictim
    from adaptermix.training.metrics import compute_metrics

    if es.info.problem == "regression":
        return EvalOutcome(None, {"skipped": "TextFooler needs a classification task"})
    attack = _textfooler_attack(params, model.encoder.precision)
    victim = ModelVictim(model, es.max_length, batch_size, es.info.is_pair)
    report = attack.run(  # type: ignore[attr-defined]
        es.examples, CachedVictim(victim, identity=identity), es.info, progress=progress
    )
    outcomes = report.outcomes
    labels = np.array([o.label for o in outcomes])
    preds = np.zeros((len(outcomes), es.info.num_labels), dtype=np.float32)
    preds[np.arange(len(outcomes)), [o.adversarial_pred for o in outcomes]] = 1.0
    metrics = compute_metrics(labels, preds, False, es.info.metric) if outcomes else {}
    summary = report.summary.to_dict()
    names = es.info.label_names
    adversarial = tuple(
        AdversarialExample(
            idx=o.index,
            original=o.text,
            adversarial=o.adversarial_text,
            original_label=names[o.label],
            success=o.status == "success",
            original_prediction=names[o.original_pred],
            new_prediction=names[o.adversarial_pred],
            original_pair=o.text_pair,
            adversarial_pair=o.adversarial_text_pair,
            queries=o.queries,
            perturbed_words=o.n_perturbed,
        )
        for o in outcomes
        if o.status != "skipped"
    )
    judge = attack.config.resources.sentence_encoder  # type: ignore[attr-defined]
    recorded = {
        "sentence_encoder": judge,
        "sentence_encoder_precision": attack.config.resources.precision or "fp32",  # type: ignore[attr-defined]
        "sentence_encoder_is_victim_backbone": judge_is_victim_backbone(judge, model.encoder.name),
    }
    return EvalOutcome(metrics.get(es.info.metric), {**metrics, **summary, **recorded}, adversarial)


EVALUATIONS.register("textfooler", _textfooler)
