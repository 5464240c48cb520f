"""The ``textfooler`` evaluation kind: the TextFooler recipe (:mod:`adaptermix.attacks.textfooler`) run on a
target's evaluation examples, as a sweep measures it.

The task metric is computed on the attacked examples with the post-attack predictions, next to the attack
statistics and the similarity judge used; every attacked example is returned for the store (the generic part
is :func:`~adaptermix.attacks.attack_eval.evaluate_attack`, which any attack's kind can call). Its parameters
are :class:`~adaptermix.attacks.textfooler.TextFoolerConfig`; a trial's key holds only the parameters
given (``defaults_in_key=False``), as it did before evaluation kinds existed, so stores keep their keys.
Torch, the victim and the heavy resources load only when the attack runs.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from adaptermix.attacks.attack import Attack
from adaptermix.attacks.attack_eval import evaluate_attack
from adaptermix.attacks.textfooler import TextFoolerConfig, textfooler
from adaptermix.evaluations.base import EvalOutcome, EvalSet, EvaluationKind, register_evaluation_kind

if TYPE_CHECKING:
    from adaptermix.model import AdapterModel

#: One attack per parameter set per process (canonical JSON of the parameters -> the recipe's Attack).
_ATTACKS: dict[str, Attack] = {}


def _textfooler_attack(params: Mapping[str, Any], precision: str = "fp32") -> Attack:
    """One TextFooler attack (:func:`~adaptermix.attacks.textfooler.textfooler`) per parameter set per
    process: its heavy resources load once.

    The similarity judge runs at the victim encoder's ``precision`` unless ``resources.precision`` is set
    (the fast path of issue 16: a bf16 victim gets a bf16 judge); fp32 leaves ``params`` as they are.
    """
    resources = dict(params.get("resources") or {})
    if precision != "fp32" and resources.get("precision") is None:
        params = {**params, "resources": {**resources, "precision": precision}}
    key = json.dumps(dict(params), sort_keys=True, default=str)
    if key not in _ATTACKS:
        _ATTACKS[key] = textfooler(TEXTFOOLER.parse(params))
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
    computed on the attacked examples with the post-attack predictions, next to the attack statistics and
    the similarity judge used. ``progress(done, total)`` is called after each example (the ``attack``
    command's progress bar)."""
    from adaptermix.attacks.resources import judge_is_victim_backbone

    if es.info.problem == "regression":
        return EvalOutcome(None, {"skipped": "TextFooler needs a classification task"})
    attack = _textfooler_attack(params, model.encoder.precision)
    outcome = evaluate_attack(attack, model, es, identity, batch_size, progress)
    config: TextFoolerConfig = attack.config
    judge = config.resources.sentence_encoder
    recorded = {
        "sentence_encoder": judge,
        "sentence_encoder_precision": config.resources.precision or "fp32",
        "sentence_encoder_is_victim_backbone": judge_is_victim_backbone(judge, model.encoder.name),
    }
    return EvalOutcome(outcome.metric, {**outcome.metrics, **recorded}, outcome.adversarial)


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
