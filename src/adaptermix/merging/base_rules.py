"""Rules defined only relative to a base model: mergekit's ``model_stock``, ``ram`` and ``ramplus_tl``.

Model Stock weighs the average fine-tuning offset by the angle *between the offsets*; RAM keeps the
entries only one model changed and averages the ones several changed. Both are meaningless on raw
parameters (the angle between raw weights measures mostly the shared init; every raw entry is "changed",
so RAM degenerates to the plain mean). adaptermix's base is the pool's shared seeded initialisation
(:mod:`adaptermix.artefacts.task_vectors`): these rules declare ``needs_base``, receive task-vector rows
tau_i = theta_i - theta_0 and return the merged task vector; :func:`~adaptermix.merging.base.merge_flat`
adds the base back and refuses without one (``[task vectors]`` in ``adaptermix list rules``).

Ported from arcee-ai/mergekit 0.1.5:

- ``model_stock``: ``mergekit/merge_methods/model_stock.py`` (Jang et al. 2024, "Model Stock: All we need
  is just a few fine-tuned models"). Per tensor, cos = the mean over pairs i < j of
  clamp(<tau_i, tau_j> / clamp(|tau_i| |tau_j|, 1e-6), -1, 1); t = k cos / (1 + (k - 1) cos), t = 0 where
  |1 + (k - 1) cos| < 1e-6 (mergekit keeps the base there); result t * mean_i tau_i, i.e. mergekit's
  t * mean(theta_i) + (1 - t) * theta_0 once the base is added back. ``filter_wise``: one angle (and t) per
  row along the tensor's last dimension (a 1-D tensor is one row), as mergekit.
- ``ram``: ``mergekit/merge_methods/ram.py`` ``ram_merge`` (Reinforced Agent Merging, arXiv 2601.13572).
  Entries with |tau_i| <= epsilon count as unchanged and are dropped; an entry changed by exactly one
  model keeps that model's value, one changed by c > 1 models gets their mean. Elementwise, so the
  layout does not matter.
- ``ramplus_tl``: ``ramplus_tl_merge`` (RAM+, tensor-local): as ``ram``, but each model's unique entries
  in a tensor are scaled by lambda_i = 1 + r * clamp(rho_i, 0, alpha), rho_i = (its shared entries) /
  max(its unique entries, epsilon), counted per tensor.

Deviations, all deliberate: Model Stock's angles and t are computed in float64 (mergekit: in the tensors'
dtype) and the result is float32; one adapter is returned unchanged (t = 1: an offset's angle with itself
is 0), where mergekit requires a base plus at least two models. RAM's arithmetic is mergekit's, in float32.
RAM+: a model with no unique entries in a tensor gets lambda = 1 (it scales nothing; mergekit computes
0 / epsilon there, NaN at epsilon 0). The adapters are taken in the package's canonical (name) order,
which fixes the order of every sum.
"""

from __future__ import annotations

import torch
from torch import Tensor

from adaptermix.core.errors import ConfigError
from adaptermix.merging import checks
from adaptermix.merging.base import MERGE_RULES, MergeContext, MergeRule
from adaptermix.merging.per_tensor import map_tensors

MERGEKIT = "arcee-ai/mergekit"
_NORM_CLAMP = 1e-6  # mergekit model_stock: norm products and the denominator of t


# -- Model Stock ----------------------------------------------------------------------------------------
def stock_ratio(rows: Tensor) -> Tensor:
    """Model Stock's interpolation ratio t for offsets ``rows`` [k, R, n] (R groups of n entries) -> [R].

    cos is the mean of the pairwise cosines (clamped as mergekit); t = k cos / (1 + (k - 1) cos), 0 at the
    singularity. k = 1 gives t = 1.
    """
    k = rows.shape[0]
    if k == 1:
        return torch.ones(rows.shape[1], dtype=rows.dtype)
    gram = torch.einsum("irn,jrn->rij", rows, rows)  # [R, k, k]
    norms = torch.linalg.vector_norm(rows, dim=-1).T  # [R, k]
    cos = (gram / (norms[:, :, None] * norms[:, None, :]).clamp(min=_NORM_CLAMP)).clamp(-1.0, 1.0)
    upper = torch.triu_indices(k, k, offset=1)
    cos_theta = cos[:, upper[0], upper[1]].mean(dim=1)
    denominator = 1 + (k - 1) * cos_theta
    singular = denominator.abs() < _NORM_CLAMP
    safe = torch.where(singular, torch.ones_like(denominator), denominator)
    return torch.where(singular, torch.zeros_like(cos_theta), k * cos_theta / safe)


def model_stock_tensor(t: Tensor, filter_wise: bool) -> Tensor:
    """Model Stock on one tensor of task vectors [k, *shape] -> the merged task vector [*shape]."""
    k = t.shape[0]
    if filter_wise:
        rows = t.reshape(k, 1, -1) if t.dim() <= 2 else t.reshape(k, -1, t.shape[-1])
    else:
        rows = t.reshape(k, 1, -1)
    ratio = stock_ratio(rows)  # [R]
    return (ratio[:, None] * rows.mean(dim=0)).reshape(t.shape[1:])


def model_stock(ctx: MergeContext, filter_wise: bool) -> Tensor:
    """Model Stock (mergekit ``model_stock``), tensor by tensor, on task-vector rows (see the module)."""
    filter_wise = checks.flag("filter_wise", filter_wise)
    return map_tensors(
        ctx.rows().double(),
        ctx.require_layout("model_stock"),
        lambda t, _: model_stock_tensor(t, filter_wise),
    )


# -- RAM ------------------------------------------------------------------------------------------------
def _epsilon(value: object) -> float:
    eps = checks.number("epsilon", value)
    if eps < 0:
        raise ConfigError(f"epsilon must be >= 0, got {value}")
    return eps


def ram_rows(x: Tensor, epsilon: float) -> tuple[Tensor, Tensor]:
    """mergekit ``_prepare_ram_vectors`` on rows [k, n]: (entries kept [k, n] = x where |x| > epsilon,
    else 0; contributor counts [n])."""
    changed = x.abs() > epsilon
    return x * changed, changed.sum(dim=0)


def ram(ctx: MergeContext, epsilon: float) -> Tensor:
    """RAM (mergekit ``ram``): unique entries kept, entries changed by several adapters averaged."""
    kept, counts = ram_rows(ctx.rows(), _epsilon(epsilon))
    return (kept / counts.clamp(min=1)).sum(dim=0)


def ramplus_tensor(t: Tensor, r: float, alpha: float, epsilon: float) -> Tensor:
    """RAM+ (tensor-local) on one tensor [k, *shape] -> [*shape] (mergekit ``ramplus_tl_merge``)."""
    k = t.shape[0]
    kept, counts = ram_rows(t.reshape(k, -1), epsilon)
    changed = kept != 0  # = |x| > epsilon (kept entries are nonzero)
    overlap, unique = counts > 1, counts == 1
    shared_counts = (changed & overlap).sum(dim=1)
    unique_counts = (changed & unique).sum(dim=1)
    rho = shared_counts / unique_counts.clamp(min=epsilon)
    # A model with no unique entries has no use for lambda; 1 there avoids mergekit's 0/0 at epsilon 0.
    lam = torch.where(unique_counts > 0, 1 + r * rho.clamp(min=0, max=alpha), 1.0)
    merged = (kept * unique * lam[:, None]) + (kept * overlap / counts.clamp(min=1))
    return merged.sum(dim=0).reshape(t.shape[1:])


def ramplus_tl(ctx: MergeContext, r: float, alpha: float, epsilon: float) -> Tensor:
    """RAM+ tensor-local (mergekit ``ramplus_tl``): RAM with each adapter's unique entries reinforced by
    its share of overlapping entries in the tensor."""
    r, alpha, epsilon = checks.number("r", r), checks.number("alpha", alpha), _epsilon(epsilon)
    layout = ctx.require_layout("ramplus_tl")
    return map_tensors(ctx.rows(), layout, lambda t, _: ramplus_tensor(t, r, alpha, epsilon))


MERGE_RULES.register(
    "model_stock",
    MergeRule(
        name="model_stock",
        reference=f"Jang et al. 2024 (Model Stock); {MERGEKIT} merge_methods/model_stock.py",
        description="per tensor: mean task vector times k c / (1 + (k-1) c), c the mean pairwise cosine",
        fn=model_stock,
        params={"filter_wise": False},
        space="task vectors",
        needs_base=True,
    ),
)
MERGE_RULES.register(
    "ram",
    MergeRule(
        name="ram",
        reference=f"Reinforced Agent Merging (arXiv 2601.13572); {MERGEKIT} merge_methods/ram.py",
        description="entries changed (|tau| > epsilon) by one adapter kept, by several averaged",
        fn=ram,
        params={"epsilon": 1e-5},
        space="task vectors",
        needs_base=True,
        identity_params={"epsilon": 0.0},
    ),
)
MERGE_RULES.register(
    "ramplus_tl",
    MergeRule(
        name="ramplus_tl",
        reference=f"RAM+ tensor-local (arXiv 2601.13572); {MERGEKIT} merge_methods/ram.py ramplus_tl_merge",
        description="RAM, each adapter's unique entries scaled by 1 + r min(shared/unique, alpha)",
        fn=ramplus_tl,
        params={"r": 0.1, "alpha": 0.2, "epsilon": 1e-5},
        space="task vectors",
        needs_base=True,
        identity_params={"epsilon": 0.0},
    ),
)
