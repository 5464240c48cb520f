"""Run a word-level :class:`~adaptermix.attacks.attack.Attack` as an evaluation: what an evaluation kind's
``run`` does with the attack once it has built it from its parameters.

The attack runs on the evaluation set's examples against the model (a
:class:`~adaptermix.attacks.model_victim.ModelVictim` behind a query cache keyed by the trial's identity);
the task metric is computed on the attacked examples with the post-attack predictions, next to the attack's
summary statistics, and every attacked (not skipped) example is returned for the store. The TextFooler kind
(:mod:`adaptermix.attacks.textfooler_eval`) is this plus its judge's record; docs/attacks.md shows a kind of
one's own. Torch and the victim load only when an attack runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from adaptermix.attacks.attack import Attack
from adaptermix.evaluations.base import AdversarialExample, EvalOutcome, EvalSet

if TYPE_CHECKING:
    from adaptermix.model import AdapterModel


def evaluate_attack(
    attack: Attack,
    model: AdapterModel,
    es: EvalSet,
    identity: str,
    batch_size: int,
    progress: Callable[[int, int], None] | None = None,
) -> EvalOutcome:
    """``attack`` on ``es`` (its first ``max_examples``): the task metric under attack, the attack summary
    and the adversarial examples. A regression task gives ``metric=None`` with the reason in ``skipped``."""
    import numpy as np

    from adaptermix.attacks.model_victim import ModelVictim
    from adaptermix.attacks.victim import CachedVictim
    from adaptermix.training.metrics import compute_metrics

    if es.info.problem == "regression":
        return EvalOutcome(None, {"skipped": f"{attack.title} needs a classification task"})
    victim = ModelVictim(model, es.max_length, batch_size, es.info.is_pair)
    report = attack.run(es.examples, CachedVictim(victim, identity=identity), es.info, progress=progress)
    outcomes = report.outcomes
    labels = np.array([o.label for o in outcomes])
    preds = np.zeros((len(outcomes), es.info.num_labels), dtype=np.float32)
    preds[np.arange(len(outcomes)), [o.adversarial_pred for o in outcomes]] = 1.0
    metrics = compute_metrics(labels, preds, False, es.info.metric) if outcomes else {}
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
    return EvalOutcome(metrics.get(es.info.metric), {**metrics, **report.summary.to_dict()}, adversarial)
