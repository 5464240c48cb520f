"""Sign statistics of a mixture relative to its target adapter (the y-axis of Figs. 5-6).

Definitions (the paper does not spell them out; these are ours and are used everywhere):

* ``flipped`` = #{p : target[p] * mixture[p] < 0} / P — the target's parameters whose sign is reversed by
  mixing, normalised by the parameter count P like FSD (Sec. 5.2 "normalize it by the total number of
  weights"). This is the reported "fraction of weights changing direction".
* ``zeroed`` = #{p : target[p] != 0 and mixture[p] == 0} / P — parameters nullified exactly (rare for dense
  mixtures, common after pruning); reported separately, not included in ``flipped``.

Both compare signs, not float products, like :mod:`adaptermix.diagnostics.conflicts`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor

from adaptermix.deltas import weighted_row_sum
from adaptermix.diagnostics.conflicts import FSDMatrix


@dataclass(frozen=True)
class SignChange:
    """Fractions (of all P parameters) of the target's parameters flipped / zeroed by a mixture."""

    flipped: float
    zeroed: float
    space: str = "raw"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SubsetStats:
    """Per-trial sign statistics: mean pairwise FSD of the subset and the target's sign changes."""

    k: int
    mean_pairwise_fsd: float
    flipped: float
    zeroed: float
    space: str = "raw"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def sign_change_fraction(target_vec: Tensor, mixture_vec: Tensor, space: str = "raw") -> SignChange:
    """How much of the target adapter's sign pattern a mixture destroys (see the module docstring)."""
    if target_vec.shape != mixture_vec.shape:
        raise ValueError(f"shapes differ: {tuple(target_vec.shape)} vs {tuple(mixture_vec.shape)}")
    n = target_vec.numel()
    prod = torch.sign(target_vec)
    nonzero_target = int(torch.count_nonzero(prod))
    prod.mul_(mixture_vec)  # sign(t) * m: never underflows, nonzero iff both are nonzero (in place: no temp)
    flipped = int(torch.count_nonzero(prod < 0)) / n
    zeroed = (nonzero_target - int(torch.count_nonzero(prod))) / n
    return SignChange(flipped, zeroed, space)


def mean_pairwise(fsd_values: Tensor, idx: Sequence[int] | Tensor) -> float:
    """Mean off-diagonal FSD among the adapters ``idx`` of a pool matrix (0.0 for a single adapter)."""
    index = torch.as_tensor(idx, dtype=torch.long)
    k = index.numel()
    if k < 2:
        return 0.0
    sub = fsd_values.index_select(0, index).index_select(1, index)
    return float((sub.sum() - sub.diagonal().sum()) / (k * (k - 1)))


def subset_stats(
    pool_flat: Tensor,
    fsd_mat: Tensor | FSDMatrix,
    idx: Sequence[int] | Tensor,
    target_pos: int,
    mixture: Tensor | None = None,
    space: str | None = None,
) -> SubsetStats:
    """Sign statistics of one sweep trial, cheap enough to run per trial.

    ``pool_flat`` [N, P] is the pre-stacked pool, ``fsd_mat`` its FSD matrix (computed once per pool),
    ``idx`` the pool rows in the mixture and ``target_pos`` the pool row of the target (one of ``idx``).
    ``mixture`` defaults to the uniform average of the rows (Eq. 1); pass another rule's output to
    diagnose it instead. ``space`` defaults to the FSDMatrix's space, else "raw".
    """
    index = torch.as_tensor(idx, dtype=torch.long)
    if target_pos not in index.tolist():
        raise ValueError(f"target row {target_pos} is not in the mixture {index.tolist()}")
    values = fsd_mat.values if isinstance(fsd_mat, FSDMatrix) else fsd_mat
    space = space or (fsd_mat.space if isinstance(fsd_mat, FSDMatrix) else "raw")
    if mixture is None:
        mixture = weighted_row_sum(pool_flat, index, None)
        mixture /= index.numel()  # in place: a fresh [P] temporary costs more than the division
    change = sign_change_fraction(pool_flat[target_pos], mixture, space)
    return SubsetStats(index.numel(), mean_pairwise(values, index), change.flipped, change.zeroed, space)
