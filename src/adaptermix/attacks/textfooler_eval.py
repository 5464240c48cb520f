"""The ``textfooler`` evaluation kind: the TextFooler recipe (:mod:`adaptermix.attacks.textfooler`) run on a
target's evaluation examples, as a sweep measures it.

The task metric is computed on the attacked examples with the post-attack predictions, next to the attack
statistics and the similarity judge used; every attacked example is returned for the store. Its parameters
are :class:`~adaptermix.attacks.textfooler.TextFoolerConfig`; a trial's key holds only the parameters
given (``defaults_in_key=False``), as it did before evaluation kinds existed, so stores keep their keys.
Torch, the victim and the heavy resources load only when the attack runs.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from adaptermix.attacks.textfooler import TextFoolerConfig, TextFoolerJin2019
from adaptermix.evaluations.base import (
    AdversarialExample,
    EvalOutcome,
    EvalSet,
    EvaluationKind,
    register_evaluation_kind,
)

if TYPE_CHECKING:
    from adaptermix.model import AdapterModel

#: One recipe per parameter set per process (canonical JSON of the parameters -> recipe).
_ATTACKS: dict[str, TextFoolerJin2019] = {}


def _textfooler_attack(params: Mapping[str, Any], precision: str = "fp32") -> TextFoolerJin2019:
    """One TextFooler recipe per parameter set per process: its heavy resources load once.

    The similarity judge runs at the victim encoder's ``precision`` unless ``resources.precision`` is set
    (the fast path of issue 16: a bf16 victim gets a bf16 judge); fp32 leaves ``params`` as they are.
    """
    resources = dict(params.get("resources") or {})
    if precision != "fp32" and resources.get("precision") is None:
        params = {**params, "resources": {**resources, "precision": precision}}
    key = json.dumps(dict(params), sort_keys=True, default=str)
    if key not in _ATTACKS:
        _ATTACKS[key] = TextFoolerJin2019(TEXTFOOLER.parse(params))
    return _ATTACKS[key]


def run_textfooler(
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

    from adaptermix.attacks.model_victim import ModelVictim
    from adaptermix.attacks.resources import judge_is_victim_backbone
    from adaptermix.attacks.victim import CachedVictim
    from adaptermix.training.metrics import compute_metrics

    if es.info.problem == "regression":
        return EvalOutcome(None, {"skipped": "TextFooler needs a classification task"})
    attack = _textfooler_attack(params, model.encoder.precision)
    victim = ModelVictim(model, es.max_length, batch_size, es.info.is_pair)
    report = attack.run(es.examples, CachedVictim(victim, identity=identity), es.info, progress=progress)
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
    judge = attack.config.resources.sentence_encoder
    recorded = {
        "sentence_encoder": judge,
        "sentence_encoder_precision": attack.config.resources.precision or "fp32",
        "sentence_encoder_is_victim_backbone": judge_is_victim_backbone(judge, model.encoder.name),
    }
    return EvalOutcome(metrics.get(es.info.metric), {**metrics, **summary, **recorded}, adversarial)


TEXTFOOLER = register_evaluation_kind(EvaluationKind(
    name="textfooler",
    config=TextFoolerConfig,
    run=run_textfooler,
    label="black-box (TextFooler)",
    colour="tab:orange",
    adversarial=True,
    description="black-box: greedy synonym swaps until the prediction flips (Jin et al. 2020, paper settings)",
    defaults_in_key=False,
    order=10,
    reports_progress=True,
    keeps_examples=True,
    own_sweep=True,
))
