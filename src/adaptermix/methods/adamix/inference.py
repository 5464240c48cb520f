"""AdaMix's inference modes (the paper's Table 3) and the ensemble of Eq. 7, as pure definitions.

The body follows an :class:`AdaMixInference` mode in eval mode (see
:meth:`~adaptermix.methods.adamix.body.AdaMixBody.inference_mode`); :func:`ensemble_outputs` averages
the members of an ENSEMBLE. Running a model over a data set under a mode (which needs the training
package's ``predict`` and artefact loading, both above this layer) is
:mod:`adaptermix.adamix.inference`.
"""

from __future__ import annotations

import enum

import numpy as np
import torch


class AdaMixInference(enum.Enum):
    """How an unmerged AdaMix body routes in eval mode (the paper's Table 3)."""

    MERGED = "merged"  # average the experts' weights (Eq. 6): AdaMix proper
    RANDOM = "random"  # a random route per forward, as in training (AdaMix-RandomRouting)
    FIXED = "fixed"  # every input through the first expert of each projection (AdaMix-FixedRouting)
    ENSEMBLE = "ensemble"  # mean of softmax over T random routes (Eq. 7); one forward = one RANDOM route


def ensemble_outputs(outputs: list[np.ndarray], regression: bool) -> np.ndarray:
    """Eq. 7: log of the mean softmax over the members (classification) or the mean prediction.

    The log of the averaged probabilities keeps every metric that takes logits (argmax) working."""
    stacked = torch.from_numpy(np.stack(outputs))
    if regression:
        return stacked.mean(0).numpy()
    return torch.log(torch.softmax(stacked, dim=-1).mean(0)).numpy()
