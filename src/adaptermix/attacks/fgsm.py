"""FGSM (Goodfellow et al. 2015) on the input word embeddings — the paper's white-box attack.

For each example, in eval mode and with its gold label: ``e' = e + epsilon * sign(d loss / d e)`` on the
word embeddings of real tokens (special tokens and padding are not perturbed), then one more forward on
``e'``. The paper uses epsilon = 0.01 (App. A.3), the default of :class:`FGSMConfig` (the one place it is
written). One gradient pass and one forward per batch; batched and length-bucketed like evaluation. Loss is
the task loss (cross-entropy; MSE for regression), whose sign gradient is the same whether it is summed or
averaged over the batch.

Registered as the evaluation kind ``fgsm`` (:data:`FGSM`). The module imports torch only when an attack
runs, so sweep specs and reports can read the kind without it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from adaptermix.core.config import StrictModel
from adaptermix.data.schema import TaskInfo
from adaptermix.evaluations.base import EvalOutcome, EvalSet, EvaluationKind, register_evaluation_kind

if TYPE_CHECKING:
    import torch

    from adaptermix.attacks.model_victim import ModelVictim
    from adaptermix.model import AdapterModel
    from adaptermix.training.batching import TokenizedSet


class FGSMConfig(StrictModel):
    """FGSM's parameters."""

    epsilon: float = 0.01  # max-norm of the step per word embedding; the paper's value (App. A.3)


def fgsm_perturb(victim: ModelVictim, batch: dict[str, torch.Tensor], labels: torch.Tensor, epsilon: float) -> torch.Tensor:
    """Perturbed word embeddings of ``batch`` (max-norm per perturbable token = ``epsilon``)."""
    emb, grad = victim.embedding_gradients(batch, labels)
    mask = victim.perturbable_mask(batch).unsqueeze(-1)
    return emb + epsilon * grad.sign() * mask


def fgsm_outputs(victim: ModelVictim, tset: TokenizedSet, epsilon: float, batch_size: int = 64) -> np.ndarray:
    """Model outputs on FGSM-perturbed inputs for every example of ``tset`` (original order)."""
    from adaptermix.training.batching import eval_batches

    out: np.ndarray | None = None
    for idx, batch in eval_batches(tset, batch_size):
        labels = tset.labels[idx]
        adv = fgsm_perturb(victim, batch, labels, epsilon)
        logits = victim.logits_from_embeddings(batch, adv).float().cpu().numpy()
        if out is None:
            out = np.zeros((len(tset), logits.shape[1]), dtype=np.float32)
        out[idx] = logits
    return out if out is not None else np.zeros((0, 1), dtype=np.float32)


def fgsm_evaluate(victim: ModelVictim, tset: TokenizedSet, info: TaskInfo, epsilon: float | None = None,
                  batch_size: int = 64) -> dict[str, float]:
    """The task's metrics under FGSM (accuracy under attack etc.), plus ``epsilon`` (default: FGSMConfig's)."""
    from adaptermix.training.evaluate import metrics_from_outputs

    eps = FGSMConfig().epsilon if epsilon is None else epsilon
    metrics = metrics_from_outputs(fgsm_outputs(victim, tset, eps, batch_size), tset, info)
    return {**metrics, "epsilon": eps}


def run_fgsm(model: AdapterModel, es: EvalSet, params: Mapping[str, Any], identity: str, batch_size: int) -> EvalOutcome:
    """The ``fgsm`` evaluation: the task's metrics on FGSM-perturbed embeddings of ``es``."""
    from adaptermix.attacks.model_victim import ModelVictim

    cfg = FGSM.parse(params)
    victim = ModelVictim(model, es.max_length, batch_size, es.info.is_pair, es.info.problem == "regression")
    metrics = fgsm_evaluate(victim, es.tokens, es.info, cfg.epsilon, batch_size)
    return EvalOutcome(metrics[es.info.metric], metrics)


FGSM = register_evaluation_kind(EvaluationKind(
    name="fgsm",
    config=FGSMConfig,
    run=run_fgsm,
    label="white-box (FGSM)",
    colour="tab:red",
    adversarial=True,
    description="white-box: one signed-gradient step of size epsilon on the word embeddings (Goodfellow et al.)",
    order=20,
))
