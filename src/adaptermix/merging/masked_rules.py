"""Per-domain masks: EMR-Merging and TALL masks (one unified vector + a 1-bit mask and a scalar per domain).

Both methods merge once into a *unified* vector and keep, per domain t, a binary mask m_t (and for EMR a
scalar s_t); the domain's weights are ``base + s_t * (m_t ⊙ unified)``. The in-domain setting of Nguyen &
Le (2024) always knows the target (its head is used), so a mixture for target t is t's view. The rules
below register that view (``emr``, ``tall_mask``: ``needs_target``) and TALL's static consensus merge
(``consensus_ta``); :mod:`adaptermix.artefacts.masked` stores every domain's part in one artefact.

- **EMR-Merging** (Huang et al. 2024, "EMR-Merging: Tuning-Free High-Performance Model Merging";
  tanganke/fusion_bench ``method/emr_merging/utils.py::emr_merge``): elect the sign
  gamma = sign(sum_t tau_t); tau_uni = gamma * max |tau_t| over the tasks whose sign agrees with gamma;
  m_t = (tau_t ⊙ tau_uni > 0); s_t = sum|tau_t| / sum|m_t ⊙ tau_uni|.
- **TALL masks** (Wang et al. 2024, "Localizing Task Information for Improved Model Merging and
  Compression"; fusion_bench ``method/tall_mask``): tau_MTL = lam * sum_t tau_t (task arithmetic);
  m_t = |tau_t| >= lambda_t * |tau_MTL - tau_t|; the domain's vector is m_t ⊙ tau_MTL (no scalar).
- **Consensus merging** (same paper): keep the entries of tau_MTL that at least ``min_agree`` (2) domains'
  TALL masks select — drops "selfish" (one domain) and "catastrophic" (no domain) weights; static.

Space: the rules merge whatever rows they are given. In a sweep these are the raw adapter parameters
(base 0, like every other rule); ``mix --space tv`` / ``merge_flat(..., base=init)`` /
:func:`adaptermix.artefacts.masked.masked_merge` with ``space="tv"`` give them task vectors (weights minus the
pool's shared seeded initialisation), the space the papers define them in.

Deviations, all deliberate:

- EMR sign election: ``torch.sign``, so an exact tie (sum_t tau_t == 0) elects no sign and tau_uni is 0
  there; FusionBench/the official code treat a zero sum as negative (``(x > 0) * 2 - 1``).
- EMR rescaler: ``rescale="sum"`` (default) is the paper's Eq. (sums over all parameters);
  ``"tensor_mean"`` is what FusionBench and the official code compute (the sum over tensors of each
  tensor's mean |.|, so a small bias weighs as much as a matrix). Computed in float64. A domain whose
  masked unified vector is all zero gets s_t = 1 (its view is the base whatever s_t is; the reference
  divides by zero).
- TALL mask: ``>=`` as in the paper's equation; the reference code uses a strict ``>`` (different only on
  exact ties, e.g. lambda = 0 or entries where every task vector is 0). lambda_t is one ``mask_lambda`` for
  every domain or a mapping domain -> lambda; the paper picks each lambda_t from {0.2, ..., 0.6} on the
  domain's validation set (not done here: pass the chosen values). tau_MTL is task arithmetic only (the
  paper also builds it with TIES).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from adaptermix.core.errors import ConfigError
from adaptermix.deltas import ParamLayout
from adaptermix.merging import checks
from adaptermix.merging.base import MERGE_RULES, MergeContext, MergeRule

FUSION_BENCH = "tanganke/fusion_bench"
RESCALES = ("sum", "tensor_mean")


@dataclass(frozen=True)
class Unified:
    """One merge, every domain's part: ``view(j) = scales[j] * (masks[j] ⊙ body)`` (plus the base)."""

    body: Tensor  # [P] float32: tau_uni (EMR) or tau_MTL (TALL)
    masks: Tensor  # [k, P] bool, one row per input row
    scales: Tensor  # [k] float32 (TALL: ones)

    def view(self, j: int) -> Tensor:
        return masked_view(self.body, self.masks[j], self.scales[j])


def masked_view(body: Tensor, mask: Tensor, scale: Tensor | float) -> Tensor:
    """``scale * (mask ⊙ body)`` [P]: one domain's vector (the rule's result; add the base for weights).

    The single function both the rules and :func:`adaptermix.artefacts.masked.for_domain` call, so that a stored
    artefact's view equals the in-sweep result bit for bit.
    """
    return torch.where(mask, body, torch.zeros((), dtype=body.dtype)) * scale


# -- EMR ----------------------------------------------------------------------------------------------
def _abs_sums(a: Tensor, rescale: str, layout: ParamLayout | None) -> Tensor:
    """Per row of ``a`` [k, P]: sum of |a| ("sum"), or the sum over tensors of each tensor's mean |a|."""
    mags = a.abs().double()
    if rescale == "sum":
        return mags.sum(dim=1)
    if layout is None:
        raise ConfigError("EMR rescale 'tensor_mean' needs the adapters' parameter layout")
    grouping = layout.groups("tensor")
    sums = torch.zeros(a.shape[0], len(grouping.keys), dtype=torch.float64)
    sums.index_add_(1, layout.element_groups("tensor"), mags)
    return (sums / torch.tensor(grouping.sizes, dtype=torch.float64)).sum(dim=1)


def emr_unify(x: Tensor, rescale: str = "sum", layout: ParamLayout | None = None) -> Unified:
    """EMR-Merging of rows ``x`` [k, P]: elect, mask, rescale (see the module docstring)."""
    rescale = checks.choice("EMR rescale", rescale, RESCALES)
    gamma = torch.sign(x.sum(dim=0))
    agree = (x * gamma) > 0
    body = gamma * torch.where(agree, x.abs(), torch.zeros((), dtype=x.dtype)).amax(dim=0)
    masks = (x * body) > 0
    num = _abs_sums(x, rescale, layout)
    den = _abs_sums(torch.where(masks, body, torch.zeros((), dtype=x.dtype)), rescale, layout)
    scales = torch.where(den > 0, num / torch.where(den > 0, den, torch.ones_like(den)), torch.ones_like(den))
    return Unified(body, masks, scales.to(torch.float32))


# -- TALL -----------------------------------------------------------------------------------------------
def _row_lambdas(mask_lambda: float | Mapping[str, float], keys: Sequence[str]) -> Tensor:
    """lambda_t per row [k, 1]: one number for every domain, or a mapping domain -> lambda."""
    if isinstance(mask_lambda, Mapping):
        missing = [k for k in keys if k not in mask_lambda]
        if missing:
            raise ConfigError(f"mask_lambda gives no value for domain {missing[0]!r}")
        values = [checks.number(f"mask_lambda[{k!r}]", mask_lambda[k]) for k in keys]
    else:
        values = [checks.number("mask_lambda", mask_lambda)] * len(keys)
    if any(v < 0 for v in values):
        raise ConfigError(f"mask_lambda must be >= 0, got {min(values)}")
    return torch.tensor(values, dtype=torch.float32)[:, None]


def task_arithmetic_sum(x: Tensor, lam: float) -> Tensor:
    """tau_MTL = lam * sum_t tau_t (the rows in the given, canonical order)."""
    lam = checks.number("lam", lam)
    total = x.sum(dim=0)
    return total if lam == 1.0 else lam * total


def tall_masks(x: Tensor, mtl: Tensor, lambdas: Tensor) -> Tensor:
    """m_t = |tau_t| >= lambda_t * |tau_MTL - tau_t| for every row [k, P] (bool)."""
    return x.abs() >= lambdas * (mtl - x).abs()


def tall_unify(
    x: Tensor, keys: Sequence[str], lam: float = 1.0, mask_lambda: float | Mapping[str, float] = 0.4
) -> Unified:
    """TALL masks over rows ``x`` [k, P] named ``keys``: tau_MTL and each domain's mask (scales 1)."""
    mtl = task_arithmetic_sum(x, lam)
    masks = tall_masks(x, mtl, _row_lambdas(mask_lambda, keys))
    return Unified(mtl, masks, torch.ones(x.shape[0], dtype=torch.float32))


# -- the rules ------------------------------------------------------------------------------------------
def unify(rule: str, x: Tensor, keys: Sequence[str], layout: ParamLayout | None, **params: Any) -> Unified:
    """The unified vector and every row's mask and scalar of the masked rule ``rule`` (``emr``/``tall_mask``)."""
    if rule == "emr":
        return emr_unify(x, layout=layout, **params)
    if rule == "tall_mask":
        return tall_unify(x, keys, **params)
    raise ConfigError(f"{rule!r} is not a masked merge rule; valid: emr, tall_mask")


def emr_rule(ctx: MergeContext, rescale: str) -> Tensor:
    """The target's EMR view s_t * (m_t ⊙ tau_uni)."""
    j = ctx.require_target("emr")
    layout = ctx.require_layout("emr") if rescale == "tensor_mean" else ctx.layout
    return unify("emr", ctx.rows(), ctx.keys, layout, rescale=rescale).view(j)


def tall_mask_rule(ctx: MergeContext, lam: float, mask_lambda: float | Mapping[str, float]) -> Tensor:
    """The target's TALL view m_t ⊙ tau_MTL."""
    j = ctx.require_target("tall_mask")
    return unify("tall_mask", ctx.rows(), ctx.keys, ctx.layout, lam=lam, mask_lambda=mask_lambda).view(j)


def consensus_ta(
    ctx: MergeContext, lam: float, mask_lambda: float | Mapping[str, float], min_agree: int
) -> Tensor:
    """Consensus task arithmetic: tau_MTL where at least ``min_agree`` domains' TALL masks agree, else 0."""
    min_agree = checks.count("min_agree", min_agree)
    u = tall_unify(ctx.rows(), ctx.keys, lam, mask_lambda)
    keep = u.masks.sum(dim=0) >= min_agree
    return torch.where(keep, u.body, torch.zeros((), dtype=u.body.dtype))


MERGE_RULES.register(
    "emr",
    MergeRule(
        name="emr",
        reference=f"Huang et al. 2024 (EMR-Merging); {FUSION_BENCH} method/emr_merging/utils.py",
        description="target's view of the EMR merge: s_t * (m_t * tau_uni), tau_uni elected by sign and max |x|",
        fn=emr_rule,
        params={"rescale": "sum"},
        needs_target=True,
        # a single adapter: tau_uni = x, mask = x != 0, s = 1 (exact); copies of one adapter: the same.
    ),
)
MERGE_RULES.register(
    "tall_mask",
    MergeRule(
        name="tall_mask",
        reference=f"Wang et al. 2024 (TALL masks); {FUSION_BENCH} method/tall_mask",
        description="target's view m_t * tau_MTL, m_t = |x_t| >= lambda * |tau_MTL - x_t|, tau_MTL = lam * sum",
        fn=tall_mask_rule,
        params={"lam": 1.0, "mask_lambda": 0.4},
        needs_target=True,
        idempotent=False,  # tau_MTL is a sum: copies of one adapter give k times it where the mask keeps it
        identity_params={"lam": 1.0},
    ),
)
MERGE_RULES.register(
    "consensus_ta",
    MergeRule(
        name="consensus_ta",
        reference=f"Wang et al. 2024 (Consensus merging); {FUSION_BENCH} method/tall_mask/utils.py",
        description="lam * sum kept where >= min_agree domains' TALL masks select it (static, no per-domain part)",
        fn=consensus_ta,
        params={"lam": 1.0, "mask_lambda": 0.4, "min_agree": 2},
        idempotent=False,  # a sum
        identity_params={"min_agree": 1},  # one adapter: its own mask keeps every entry (lam 1)
    ),
)
