"""AdaMix's consistency term (Eq. 5) between the outputs of two stochastically routed passes.

Classification: symmetric KL ``(KL(p_a || p_b) + KL(p_b || p_a)) / 2`` between the predictive
distributions, averaged over the batch. As in the official code (``symmetric_KL_loss`` in microsoft/AdaMix
``modeling_roberta.py``, also THOR / R-Drop), the target side of each KL is detached, so each pass is
pulled towards the other; the value is the symmetric KL itself.

Regression (STS-B): a softmax over one output is identically 1, so the official code's KL term is zero
for regression and the regulariser silently does nothing. Deviation: we use the mean squared difference
between the two passes' predictions instead (both sides carry gradient), which is zero iff they agree.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def symmetric_kl(logits_a: torch.Tensor, logits_b: torch.Tensor) -> torch.Tensor:
    """Batch-mean symmetric KL between ``softmax(logits_a)`` and ``softmax(logits_b)`` (targets detached)."""
    la = F.log_softmax(logits_a.float(), dim=-1)
    lb = F.log_softmax(logits_b.float(), dim=-1)
    kl_ba = F.kl_div(la, lb.detach(), reduction="batchmean", log_target=True)  # KL(p_b || p_a)
    kl_ab = F.kl_div(lb, la.detach(), reduction="batchmean", log_target=True)  # KL(p_a || p_b)
    return 0.5 * (kl_ab + kl_ba)


def consistency_loss(logits_a: torch.Tensor, logits_b: torch.Tensor, regression: bool) -> torch.Tensor:
    """Symmetric KL for classification; mean squared difference of the predictions for regression."""
    if regression:
        return F.mse_loss(logits_a.float().squeeze(-1), logits_b.float().squeeze(-1))
    return symmetric_kl(logits_a, logits_b)
