"""FGSM (Goodfellow et al. 2015) on the input word embeddings — the paper's white-box attack.

For each example, in eval mode and with its gold label: ``e' = e + epsilon * sign(d loss / d e)`` on the
word embeddings of real tokens (special tokens and padding are not perturbed), then one more forward on
``e'``. The paper uses epsilon = 0.01 (App. A.3). One gradient pass and one forward per batch; batched and
length-bucketed like evaluation. Loss is the task loss (cross-entropy; MSE for regression), whose sign
gradient is the same whether it is summed or averaged over the batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from adaptermix.attacks.model_victim import ModelVictim
from adaptermix.data.schema import TaskInfo
from adaptermix.training.batching import TokenizedSet, eval_batches
from adaptermix.training.evaluate import metrics_from_outputs


@dataclass(frozen=True)
class FGSMConfig:
    epsilon: float = 0.01


def fgsm_perturb(victim: ModelVictim, batch: dict[str, torch.Tensor], labels: torch.Tensor, epsilon: float) -> torch.Tensor:
    """Perturbed word embeddings of ``batch`` (max-norm per perturbable token = ``epsilon``)."""
    emb, grad = victim.embedding_gradients(batch, labels)
    mask = victim.perturbable_mask(batch).unsqueeze(-1)
    return emb + epsilon * grad.sign() * mask


def fgsm_outputs(victim: ModelVictim, tset: TokenizedSet, epsilon: float, batch_size: int = 64) -> np.ndarray:
    """Model outputs on FGSM-perturbed inputs for every example of ``tset`` (original order)."""
    out: np.ndarray | None = None
    for idx, batch in eval_batches(tset, batch_size):
        labels = tset.labels[idx]
        adv = fgsm_perturb(victim, batch, labels, epsilon)
        logits = victim.logits_from_embeddings(batch, adv).float().cpu().numpy()
        if out is None:
            out = np.zeros((len(tset), logits.shape[1]), dtype=np.float32)
        out[idx] = logits
    return out if out is not None else np.zeros((0, 1), dtype=np.float32)


def fgsm_evaluate(victim: ModelVictim, tset: TokenizedSet, info: TaskInfo, epsilon: float = 0.01,
                  batch_size: int = 64) -> dict[str, float]:
    """The task's metrics under FGSM (accuracy under attack etc.), plus ``epsilon``."""
    metrics = metrics_from_outputs(fgsm_outputs(victim, tset, epsilon, batch_size), tset, info)
    return {**metrics, "epsilon": epsilon}
