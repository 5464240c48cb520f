"""Shared merge steps on stacked rows x [k, P]: sparsify, weight, elect a sign, aggregate.

The generalized task-arithmetic pipeline of arcee-ai/mergekit (``GeneralizedTaskArithmeticMerge``):

    y_i   = w_i * sparsify(x_i)                       (per adapter)
    gamma = elect_sign(y)                             (optional sign consensus, per parameter)
    out   = lam * aggregate(y, mask = sign(y_i) == gamma)

Each step is picked from a small table by name (no if/elif chains); the named rules in
:mod:`adaptermix.merging.generalized` are configurations of these tables. Each step declares the parameters
it takes as keyword-only arguments with defaults (``trim_magnitude(x, keys, *, density)``,
``drop_random(x, keys, *, p, seed)``); :func:`generalized_merge` passes each step only its own.

Weights convention: ``mean`` divides by sum(|w_i|) (not sum(w_i)), so positive weights give the usual
weighted mean while signed combinations stay defined: weights [1, -1] of one adapter give zero.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import torch
from torch import Tensor

from adaptermix.core.errors import ConfigError
from adaptermix.core.hashing import stable_int
from adaptermix.deltas import weighted_row_sum
from adaptermix.pruning.magnitude import prune_rows

T = TypeVar("T")


def pick(table: Mapping[str, T], kind: str, name: str) -> T:
    """Look up a step by name; an unknown name is a one-line ConfigError listing the valid ones."""
    if name not in table:
        raise ConfigError(f"unknown {kind} {name!r}; valid: {', '.join(table)}")
    return table[name]


def adapter_weights(weights: Sequence[float] | None, k: int) -> Tensor:
    """Per-adapter weights as float32 [k] (default: all ones)."""
    if weights is None:
        return torch.ones(k)
    w = torch.as_tensor([float(v) for v in weights], dtype=torch.float32)
    if w.numel() != k:
        raise ConfigError(f"weights has {w.numel()} values for {k} adapters")
    if not bool(w.abs().sum() > 0):
        raise ConfigError("weights must not all be zero")
    return w


def adapter_seed(seed: int, key: str) -> int:
    """A 63-bit seed from the run seed and the adapter's identity (never its position in the input)."""
    return stable_int(f"{seed}:{key}")


# -- sparsification (per adapter row) -------------------------------------------------------------
# Every step declares the parameters it takes as keyword-only arguments (with their defaults); the
# pipeline passes each step only its own (:func:`step_parameters`), so a new parameter of one step is an
# edit of that step alone.
def keep_all(x: Tensor, keys: Sequence[str]) -> Tensor:
    """No sparsification."""
    return x


def trim_magnitude(x: Tensor, keys: Sequence[str], *, density: float = 1.0) -> Tensor:
    """TIES "trim" (Yadav et al. 2023): keep exactly round(density * P) largest |x| of each row."""
    if not 0.0 < density <= 1.0:
        raise ConfigError(f"density must be in (0, 1], got {density}")
    return prune_rows(x, None, 1.0 - density, "global")


def drop_random(x: Tensor, keys: Sequence[str], *, p: float = 0.0, seed: int = 0) -> Tensor:
    """DARE (Yu et al. 2023): drop each entry with probability p, rescale survivors by 1 / (1 - p).

    The mask of each adapter comes from a generator seeded by (seed, adapter key), so it does not depend
    on the adapter's position in the input; the loop runs over the few adapters, not over parameters.
    """
    if not 0.0 <= p < 1.0:
        raise ConfigError(f"drop probability p must be in [0, 1), got {p}")
    if p == 0.0:
        return x
    masks = []
    for key in keys:
        generator = torch.Generator().manual_seed(adapter_seed(seed, key))
        masks.append(torch.rand(x.shape[1], generator=generator) >= p)
    return x * torch.stack(masks) / (1.0 - p)


# The signature every sparsifier shared before steps declared their parameters, kept for its callers.
def no_sparsify(x: Tensor, keys: Sequence[str], density: float, p: float, seed: int) -> Tensor:
    """:func:`keep_all` under the old shared signature."""
    return keep_all(x, keys)


def magnitude_trim(x: Tensor, keys: Sequence[str], density: float, p: float, seed: int) -> Tensor:
    """:func:`trim_magnitude` under the old shared signature (``p`` and ``seed`` unused)."""
    return trim_magnitude(x, keys, density=density)


def dare_drop(x: Tensor, keys: Sequence[str], density: float, p: float, seed: int) -> Tensor:
    """:func:`drop_random` under the old shared signature (``density`` unused)."""
    return drop_random(x, keys, p=p, seed=seed)


SPARSIFIERS: dict[str, Callable[..., Tensor]] = {
    "none": keep_all,
    "magnitude": trim_magnitude,
    "random": drop_random,
}


# -- sign consensus (per parameter) ---------------------------------------------------------------
def elect_by_sum(y: Tensor) -> Tensor:
    """TIES "elect": the sign with the larger total magnitude, i.e. sign(sum_i y_i) (0 on exact balance)."""
    return torch.sign(y.sum(dim=0))


def elect_by_count(y: Tensor) -> Tensor:
    """Majority of signs by count (mergekit's ``consensus_method: count``)."""
    return torch.sign(torch.sign(y).sum(dim=0))


CONSENSUS: dict[str, Callable[..., Tensor] | None] = {
    "none": None,
    "sum": elect_by_sum,
    "count": elect_by_count,
}


# -- aggregation ----------------------------------------------------------------------------------
def _safe_divide(num: Tensor, den: Tensor) -> Tensor:
    """num / den, 0 where den == 0 (no adapter contributes to that parameter)."""
    positive = den > 0
    return torch.where(
        positive, num / torch.where(positive, den, torch.ones_like(den)), torch.zeros_like(num)
    )


def aggregate_sum(y: Tensor, w: Tensor, mask: Tensor | None) -> Tensor:
    return (y if mask is None else y * mask).sum(dim=0)


def aggregate_mean(y: Tensor, w: Tensor, mask: Tensor | None) -> Tensor:
    """Weighted mean sum_i y_i / sum_i |w_i| (y already carries the weights)."""
    return aggregate_sum(y, w, mask) / w.abs().sum()


def aggregate_disjoint_mean(y: Tensor, w: Tensor, mask: Tensor | None) -> Tensor:
    """TIES "disjoint merge": mean over the adapters whose sign agrees with the elected one only."""
    if mask is None:
        return aggregate_mean(y, w, mask)
    den = (mask * w.abs()[:, None]).sum(dim=0)
    return _safe_divide((y * mask).sum(dim=0), den)


AGGREGATORS: dict[str, Callable[..., Tensor]] = {
    "sum": aggregate_sum,
    "mean": aggregate_mean,
    "disjoint_mean": aggregate_disjoint_mean,
}


def linear_merge(
    pool: Tensor,
    index: Tensor,
    *,
    normalise: bool,
    weights: Sequence[float] | None = None,
    lam: float = 1.0,
) -> Tensor:
    """The pipeline without sparsification or sign consensus, fused: a weighted sum of pool rows.

    ``normalise`` divides by sum(|w_i|) (aggregate "mean"), otherwise it is the plain sum ("sum").
    Equal to ``generalized_merge(pool[index], ...)`` up to float rounding; this is the sweep's hot path
    (AdapterSoup / Eq. 1 averages), so it avoids the [k, P] copy.
    """
    w = adapter_weights(weights, index.numel())
    out = weighted_row_sum(pool, index, None if weights is None else w)
    if normalise:
        out /= w.abs().sum()
    return out if lam == 1.0 else lam * out


@functools.cache
def step_parameters(step: Callable[..., Any]) -> tuple[str, ...]:
    """The parameters a step declares: its keyword-only arguments (read once per step)."""
    return tuple(
        name for name, prm in inspect.signature(step).parameters.items() if prm.kind is inspect.Parameter.KEYWORD_ONLY
    )


def all_step_parameters() -> set[str]:
    """Every parameter some step of the pipeline takes."""
    steps = [*SPARSIFIERS.values(), *(c for c in CONSENSUS.values() if c is not None), *AGGREGATORS.values()]
    return {name for step in steps for name in step_parameters(step)}


def own(step: Callable[..., Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """The subset of ``params`` that ``step`` declares."""
    return {k: params[k] for k in step_parameters(step) if k in params}


def generalized_merge(
    x: Tensor,
    keys: Sequence[str],
    *,
    sparsify: str = "none",
    consensus: str = "none",
    aggregate: str = "mean",
    weights: Sequence[float] | None = None,
    lam: float = 1.0,
    **step_params: Any,
) -> Tensor:
    """sparsify x sign consensus x aggregate over rows ``x`` [k, P] -> [P] (see the module docstring).

    ``step_params`` (e.g. ``density``, ``p``, ``seed``): each goes to the chosen step(s) that declare it
    (a parameter of a step not chosen is unused, as before); one that no step declares is an error.
    """
    unknown = sorted(set(step_params) - all_step_parameters())
    if unknown:
        raise ConfigError(f"unknown merge step parameter {unknown[0]!r}; steps take: "
                          f"{', '.join(sorted(all_step_parameters()))}")
    w = adapter_weights(weights, x.shape[0])
    sparsifier = pick(SPARSIFIERS, "sparsification", sparsify)
    y = sparsifier(x, keys, **own(sparsifier, step_params))
    if weights is not None:  # skip a [k, P] multiply on the common unweighted path
        y = y * w[:, None]
    elect = pick(CONSENSUS, "sign consensus", consensus)
    mask = None
    if elect is not None:
        gamma = elect(y, **own(elect, step_params))
        mask = (torch.sign(y) == gamma) & (y != 0)
    aggregator = pick(AGGREGATORS, "aggregation", aggregate)
    out = aggregator(y, w, mask, **own(aggregator, step_params))
    return out if lam == 1.0 else lam * out
