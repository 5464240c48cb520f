"""The task loss every method's :meth:`~adaptermix.methods.base.AdapterBody.training_loss` starts from.

A method's own terms live in its package (AdaMix's consistency term:
:mod:`adaptermix.methods.adamix.consistency`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def task_loss(logits: torch.Tensor, labels: torch.Tensor, regression: bool) -> torch.Tensor:
    """Cross-entropy for classification, mean squared error for regression."""
    labels = labels.to(logits.device)
    if regression:
        return F.mse_loss(logits.squeeze(-1), labels.float())
    return F.cross_entropy(logits, labels)
