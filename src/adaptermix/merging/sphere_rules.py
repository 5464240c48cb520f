"""Spherical means per tensor: mergekit's ``karcher`` and ``multislerp``.

Both treat each weight tensor of each adapter as a point norm * direction: they average the directions on
the unit sphere and rescale by an average norm. Ported from arcee-ai/mergekit
``mergekit/merge_methods/karcher.py`` (``karcher_merge_tensors``) and
``mergekit/merge_methods/multislerp.py`` (``multislerp``), tensor by tensor as mergekit applies them.
Computed in float64 and returned as float32 (mergekit works in the tensors' dtype). Applied to the raw
adapter parameters (no base is subtracted; mergekit's karcher uses none, its multislerp's optional
``base_model`` is not offered).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from adaptermix.core.errors import ConfigError
from adaptermix.merging import checks
from adaptermix.merging.base import MERGE_RULES, MergeContext, MergeRule
from adaptermix.merging.per_tensor import map_tensors
from adaptermix.merging.steps import adapter_weights

MERGEKIT = "arcee-ai/mergekit"


def karcher_mean(points: Tensor, max_iter: int, tol: float) -> Tensor:
    """Karcher mean of the rows of ``points`` [k, n] with equal weights (mergekit ``karcher_merge_tensors``).

    Rows with norm <= tol are left out of the direction; the start is the normalised mean of the unit
    rows, then ``max_iter`` Riemannian gradient steps (exp map of the weighted log maps, terms with an
    angle below tol skipped) until the step norm falls below tol. The result is the mean direction times
    the mean norm of *all* rows (zero rows included), as mergekit.
    """
    k = points.shape[0]
    if k == 1:
        return points[0]
    norms: Tensor = torch.linalg.vector_norm(points, dim=1)
    valid = norms > tol
    if not bool(valid.any()):
        return torch.zeros_like(points[0])
    units = points[valid] / norms[valid, None]
    a = torch.full((units.shape[0],), 1.0 / units.shape[0], dtype=points.dtype)
    u = (a[:, None] * units).sum(dim=0)
    norm_u = float(torch.linalg.vector_norm(u))
    u = units[0].clone() if norm_u < tol else u / norm_u
    for _ in range(max_iter):
        dots = torch.clamp(units @ u, -1.0, 1.0)
        theta = torch.arccos(dots)
        active = theta >= tol
        coef = torch.where(active, a * theta / torch.where(active, torch.sin(theta), 1.0), 0.0)
        step = (coef[:, None] * (units - dots[:, None] * u)).sum(dim=0)
        norm_step = torch.linalg.vector_norm(step)
        if float(norm_step) < tol:
            break
        u = torch.cos(norm_step) * u + torch.sin(norm_step) * (step / norm_step)
        norm_u = float(torch.linalg.vector_norm(u))
        if norm_u > tol:
            u = u / norm_u
    return norms.mean() * u


def multislerp_mean(points: Tensor, w: Tensor, eps: float, name: str) -> Tensor:
    """Barycentric interpolation on the sphere of the rows of ``points`` [k, n] with weights ``w`` (sum of
    |w| = 1), as mergekit ``multislerp``: project the unit rows to the tangent space at their weighted
    mean direction, average there, map back with the exponential map, scale by the weighted mean norm.

    The tangent space is taken at the weighted mean direction m = M / |M| (M = sum_i w_i u_i), where the
    weighted tangent vectors sum to M - (M . m) m = 0: the exponential map returns m, so the result is the
    normalised weighted mean of the unit directions times the weighted mean norm (up to rounding). This is
    mergekit's algorithm as written, ported unchanged.

    When the weighted mean direction vanishes mergekit falls back to the linear mix for two inputs and
    raises otherwise; here all-zero inputs give zero (mergekit raises for k > 2), other cases as mergekit.
    """
    k = points.shape[0]
    if k == 1:
        return points[0]
    norms: Tensor = torch.linalg.vector_norm(points, dim=1, keepdim=True)
    units = points / (norms + eps)
    mean = (units * w[:, None]).sum(dim=0)
    mean_norm: Tensor = torch.linalg.vector_norm(mean)
    if float(mean_norm) < eps:
        if k == 2:
            return points[0] * w[0] + points[1] * w[1]
        if not bool(points.any()):
            return torch.zeros_like(points[0])
        raise ConfigError(
            f"multislerp: the weighted mean direction of tensor {name!r} is zero (antipodal inputs); "
            "use other weights"
        )
    mean = mean / mean_norm
    dots = (units * mean).sum(dim=-1, keepdim=True)
    tangent = ((units - dots * mean) * w[:, None]).sum(dim=0)
    tangent_norm: Tensor = torch.linalg.vector_norm(tangent) + eps
    result = mean * torch.cos(tangent_norm) + tangent * (torch.sin(tangent_norm) / tangent_norm)
    return result * (norms.squeeze(-1) * w).sum()


def karcher(ctx: MergeContext, max_iter: int, tol: float) -> Tensor:
    """Karcher mean per tensor (mergekit ``karcher``: equal weights, no base)."""
    max_iter = checks.count("max_iter", max_iter)
    tol = checks.positive("tol", tol)
    return map_tensors(
        ctx.rows().double(),
        ctx.require_layout("karcher"),
        lambda t, _: karcher_mean(t.reshape(t.shape[0], -1), max_iter, tol).reshape(t.shape[1:]),
    )


def multislerp(ctx: MergeContext, weights: Sequence[float] | None, eps: float) -> Tensor:
    """Multi-SLERP per tensor (mergekit ``multislerp``). Deviation: weights are normalised by sum(|w_i|),
    the package's convention (mergekit: by sum(w_i), or not at all with ``normalize_weights: false``,
    which is not offered); for positive weights the two agree."""
    eps = checks.positive("eps", eps)
    w = adapter_weights(weights, ctx.k).double()
    w = w / w.abs().sum()
    return map_tensors(
        ctx.rows().double(),
        ctx.require_layout("multislerp"),
        lambda t, name: multislerp_mean(t.reshape(t.shape[0], -1), w, eps, name).reshape(t.shape[1:]),
    )


MERGE_RULES.register(
    "karcher",
    MergeRule(
        name="karcher",
        reference=f"Karcher mean on the sphere; {MERGEKIT} merge_methods/karcher.py",
        description="per tensor: Riemannian (Karcher) mean of the unit directions times the mean norm",
        fn=karcher,
        params={"max_iter": 10, "tol": 1e-5},
    ),
)
MERGE_RULES.register(
    "multislerp",
    MergeRule(
        name="multislerp",
        reference=f"Goddard, multi-SLERP (goddard.blog); {MERGEKIT} merge_methods/multislerp.py",
        description="per tensor: weighted barycentric interpolation of directions on the sphere, weighted mean norm",
        fn=multislerp,
        params={"weights": None, "eps": 1e-8},
        per_adapter=("weights",),
    ),
)
