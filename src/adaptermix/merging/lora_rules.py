"""LoRA merge rules of peft's ``add_weighted_adapter``, and KnOTS: merging the updates dW = B A, not the factors.

Every rule here reads a pool of LoRA adapters as raw factors (per module ``lora_A`` [r, in] and ``lora_B``
[out, r]; :func:`lora_view` finds the pairs) and returns LoRA factors again. A pool without LoRA pairs is a
one-line ConfigError; so is the task-vector merge space (B A must be computed from the raw factors).

The LoRA scale cancels: every adapter of a pool shares alpha / r = c (the pool refuses mixed methods), so
merging the unscaled updates M_i = B_i A_i and writing the result under the same scale gives
``c B' A' = op(c M_1, ..., c M_k)`` for every operator below (all are positively homogeneous: sums, means,
magnitude ranks, sign votes, SVDs). peft merges the scaled updates and gives the new adapter alpha = r
(scale 1); its ``B'`` is ours times c, its ``A'`` is ours.

- ``svd``, ``ties_svd``, ``dare_linear_svd``, ``dare_ties_svd``, ``magnitude_prune_svd`` (peft
  ``tuners/lora/model.py`` ``_svd_generalized_task_arithmetic_weighted_adapter``, operators from
  ``utils/merge_utils.py``): apply the operator to the full updates M_i of each module, then truncate the
  merged update by SVD to the pool's rank r (``svd_rank`` lower): ``B' = U_r S_r``, ``A' = Vh_r``, with
  peft's optional ``svd_clamp`` quantile clamp of both factors. A non-LoRA tensor (none in this project's
  LoRA pools) is its own full update: it gets the operator and no SVD.
- ``cat`` (peft ``cat``): exact, rank sum(r_i): ``B' = [w_1 B_1 ... w_k B_k]``, ``A' = [A_1; ...; A_k]``
  (peft scales the A blocks by w_i c and sets scale 1; same product). ``normalize=true`` divides the
  weights by sum(|w_i|): the exact dW average, :func:`~adaptermix.merging.lora.average_lora_dw`.
- ``knots`` (Stoica et al. 2025, gstoica27/KnOTS ``task_merger.py`` ``SVDMerger``): per module, the SVD of
  the concatenation [M_1 ... M_k] = U S [V_1 ... V_k] (singular values above 1e-5), each task's
  S V_i merged across tasks by an ``inner`` rule (ties by default), and U (merged S V) as a LoRA of rank
  up to sum(r_i).

Deliberate differences from peft (each rule's docstring adds its own):

- Weights multiply before the sign election, and ``disjoint_mean`` divides by the |w_i| of the agreeing
  adapters (the package's TIES convention); peft elects on the unweighted tensors and divides by their
  count. Identical for unit weights (the default), which is what the peft agreement tests use.
- Magnitude pruning keeps ``round(density * n)`` entries per tensor (the package's exact-count rule with a
  stable tie break); peft keeps ``int(density * n)`` by ``topk``.
- DARE masks are seeded by (seed, adapter name) over the whole update row of an adapter (reproducible,
  order-free); peft draws from torch's global RNG, so its draws cannot be matched one for one.
- An exact sign balance elects no sign (nothing kept); peft elects "+".
- ``svd_clamp`` clamps the factors of the unscaled update (peft: of the update times c): equal when
  alpha = r. Components with a zero singular value are zeroed in both factors (peft keeps an arbitrary
  unit row in A'; it contributes nothing either way).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from adaptermix.core.errors import ConfigError
from adaptermix.deltas import AdapterDelta, ParamLayout
from adaptermix.merging import checks
from adaptermix.merging.base import MERGE_RULES, MergeContext, MergeRule
from adaptermix.merging.lora import concat_lora
from adaptermix.merging.per_tensor import join, split_rows
from adaptermix.merging.steps import drop_random, generalized_merge
from adaptermix.pruning.magnitude import prune_rows

PEFT = "huggingface/peft"
PEFT_SVD = f"{PEFT} tuners/lora/model.py add_weighted_adapter"
KNOTS_TOL = 1e-5  # KnOTS keeps singular values above this (absolute, as gstoica27/KnOTS)


@dataclass(frozen=True)
class LoraView:
    """Where a layout's LoRA pairs sit: (module prefix, index of lora_A, index of lora_B), other tensors."""

    pairs: tuple[tuple[str, int, int], ...]
    others: tuple[int, ...]


def lora_view(layout: ParamLayout, rule: str) -> LoraView:
    """The LoRA pairs of ``layout``; a one-line ConfigError for a layout without them or an unpaired factor."""
    index = {n: i for i, n in enumerate(layout.names)}
    pairs: list[tuple[str, int, int]] = []
    others: list[int] = []
    for i, name in enumerate(layout.names):
        prefix, _, param = name.rpartition(".")
        partner = {"lora_A": "lora_B", "lora_B": "lora_A"}.get(param)
        if partner is None:
            others.append(i)
        elif f"{prefix}.{partner}" not in index:
            raise ConfigError(f"merge rule {rule!r}: LoRA tensor {name!r} has no matching {partner}")
        elif param == "lora_A":
            pairs.append((prefix, i, index[f"{prefix}.lora_B"]))
    if not pairs:
        raise ConfigError(f"merge rule {rule!r} merges LoRA adapters, but these have no lora_A/lora_B pairs "
                          f"(first tensor {layout.names[0]!r})")
    return LoraView(tuple(pairs), tuple(others))


def _view(ctx: MergeContext, rule: str) -> tuple[ParamLayout, LoraView]:
    layout = ctx.require_layout(rule)
    return layout, lora_view(layout, rule)


def update_rows(x: Tensor, layout: ParamLayout, view: LoraView) -> tuple[Tensor, ParamLayout]:
    """The adapters' full updates as rows [k, P_dw] (float64): M_i = B_i A_i per module, then the other
    tensors as they are; and the layout of those rows (``{module}.dW`` [out, in], then the others)."""
    parts = split_rows(x.double(), layout)
    blocks = [parts[b] @ parts[a] for _, a, b in view.pairs]
    names = tuple(f"{prefix}.dW" for prefix, _, _ in view.pairs) + tuple(layout.names[i] for i in view.others)
    shapes = tuple(tuple(m.shape[1:]) for m in blocks) + tuple(layout.shapes[i] for i in view.others)
    rows = join(blocks + [parts[i] for i in view.others], dim=1)
    return rows, ParamLayout(names, shapes)


def truncate(m: Tensor, rank: int, r: int, clamp: float | None) -> tuple[Tensor, Tensor]:
    """(B [out, r], A [r, in]) with B A the best rank-``rank`` approximation of ``m`` (peft's SVD step):
    B = U S, A = Vh, zero-padded to r; ``clamp``: peft's quantile clamp of both factors."""
    u, s, vh = torch.linalg.svd(m, full_matrices=False)
    keep = min(rank, s.numel())
    live = (s[:keep] > 0).to(m.dtype)  # a zero singular value: zero both factors (peft keeps a unit row)
    b = u[:, :keep] * (s[:keep] * live)
    a = vh[:keep] * live[:, None]
    if clamp is not None:
        hi = torch.quantile(torch.cat([b.flatten(), a.flatten()]), clamp)
        b, a = b.clamp(-hi, hi), a.clamp(-hi, hi)
    out_b = torch.zeros(m.shape[0], r, dtype=m.dtype)
    out_a = torch.zeros(r, m.shape[1], dtype=m.dtype)
    out_b[:, :keep] = b
    out_a[:keep] = a
    return out_b, out_a


def _sparsify(y: Tensor, dw_layout: ParamLayout, keys: Sequence[str], how: str, density: float, seed: int) -> Tensor:
    """peft's per-update sparsifiers: ``magnitude`` per tensor (each module's update), ``random`` DARE with
    drop probability 1 - density and rescale 1 / density, one seeded mask per adapter row."""
    if how == "none":
        return y
    density = checks.density(density)
    if how == "magnitude":
        return prune_rows(y, dw_layout, 1.0 - density, "per_tensor")
    return drop_random(y, keys, p=1.0 - density, seed=seed)


def svd_merge(
    ctx: MergeContext,
    rule: str,
    *,
    sparsify: str,
    consensus: str,
    aggregate: str,
    density: float,
    seed: int,
    weights: Sequence[float] | None,
    svd_rank: int | None,
    svd_clamp: float | None,
) -> Tensor:
    """Operator on the full updates of each module, then SVD back to the pool's rank (see the module docstring)."""
    layout, view = _view(ctx, rule)
    if svd_clamp is not None:
        svd_clamp = checks.fraction("svd_clamp", svd_clamp, open_low=False, open_high=False)
    rows, dw_layout = update_rows(ctx.rows(), layout, view)
    y = _sparsify(rows, dw_layout, ctx.keys, sparsify, density, seed)
    merged = generalized_merge(y, ctx.keys, consensus=consensus, aggregate=aggregate, weights=weights)
    merged_parts = torch.split(merged, list(dw_layout.numels))
    out: list[Tensor] = [torch.empty(0)] * len(layout.names)
    for (_, a, b), part, shape in zip(view.pairs, merged_parts, dw_layout.shapes, strict=False):
        r = layout.shapes[a][0]
        rank = r if svd_rank is None else checks.count("svd_rank", svd_rank, 1)
        if rank > r:
            raise ConfigError(f"svd_rank must be at most the adapters' rank {r}, got {rank}")
        out[b], out[a] = truncate(part.reshape(shape), rank, r, svd_clamp)
    for i, part in zip(view.others, merged_parts[len(view.pairs):], strict=True):
        out[i] = part
    return join(out).to(torch.float32)


def _aggregate(normalize: bool) -> str:
    return "mean" if checks.flag("normalize", normalize) else "sum"


def svd(ctx: MergeContext, weights: Sequence[float] | None, normalize: bool, svd_rank: int | None,
        svd_clamp: float | None) -> Tensor:
    """peft ``svd``: sum_i w_i B_i A_i per module (``normalize``: divided by sum(|w_i|)), truncated by SVD."""
    return svd_merge(ctx, "svd", sparsify="none", consensus="none", aggregate=_aggregate(normalize), density=1.0,
                     seed=0, weights=weights, svd_rank=svd_rank, svd_clamp=svd_clamp)


def ties_svd(ctx: MergeContext, density: float, consensus: str, weights: Sequence[float] | None,
             svd_rank: int | None, svd_clamp: float | None) -> Tensor:
    """peft ``ties_svd``: TIES on the full updates (trim per module update, elect, disjoint mean), then SVD."""
    return svd_merge(ctx, "ties_svd", sparsify="magnitude", consensus=consensus, aggregate="disjoint_mean",
                     density=density, seed=0, weights=weights, svd_rank=svd_rank, svd_clamp=svd_clamp)


def dare_linear_svd(ctx: MergeContext, density: float, seed: int, weights: Sequence[float] | None, normalize: bool,
                    svd_rank: int | None, svd_clamp: float | None) -> Tensor:
    """peft ``dare_linear_svd``: DARE (keep ``density``, rescale) on the full updates, weighted sum, SVD."""
    return svd_merge(ctx, "dare_linear_svd", sparsify="random", consensus="none", aggregate=_aggregate(normalize),
                     density=density, seed=seed, weights=weights, svd_rank=svd_rank, svd_clamp=svd_clamp)


def dare_ties_svd(ctx: MergeContext, density: float, seed: int, consensus: str, weights: Sequence[float] | None,
                  svd_rank: int | None, svd_clamp: float | None) -> Tensor:
    """peft ``dare_ties_svd``: DARE on the full updates, sign election, disjoint mean, SVD."""
    return svd_merge(ctx, "dare_ties_svd", sparsify="random", consensus=consensus, aggregate="disjoint_mean",
                     density=density, seed=seed, weights=weights, svd_rank=svd_rank, svd_clamp=svd_clamp)


def magnitude_prune_svd(ctx: MergeContext, density: float, weights: Sequence[float] | None, normalize: bool,
                        svd_rank: int | None, svd_clamp: float | None) -> Tensor:
    """peft ``magnitude_prune_svd``: each module update pruned to ``density`` by magnitude, weighted sum, SVD."""
    return svd_merge(ctx, "magnitude_prune_svd", sparsify="magnitude", consensus="none",
                     aggregate=_aggregate(normalize), density=density, seed=0, weights=weights, svd_rank=svd_rank,
                     svd_clamp=svd_clamp)


def magnitude_prune(ctx: MergeContext, density: float, weights: Sequence[float] | None, normalize: bool) -> Tensor:
    """peft ``magnitude_prune`` for every adapter method: each tensor of each adapter pruned to ``density``
    by magnitude (``round``, see the module docstring), then the weighted sum (``normalize``: mean).

    On LoRA factors this is peft's factor-space rule: with weights sqrt(w_i) (w_i >= 0) it gives peft's
    B' A' / c exactly (peft puts sqrt(w_i c) on both factors and scale 1). That product is not
    sum_i w_i B_i A_i: the cross terms B_i A_j stay (see docs/lora-merging.md)."""
    density = checks.density(density)
    y = prune_rows(ctx.rows(), ctx.require_layout("magnitude_prune"), 1.0 - density, "per_tensor")
    return generalized_merge(y, ctx.keys, aggregate=_aggregate(normalize), weights=weights)


# -- rank-growing rules ----------------------------------------------------------------------------------
def cat(ctx: MergeContext, weights: Sequence[float] | None, normalize: bool) -> Tensor:
    """peft ``cat``: the exact weighted sum of the updates as a LoRA of rank sum(r_i); weights sit on the B
    blocks (peft: on A, with w_i c, and scale 1: the same product). ``normalize``: the exact dW average."""
    layout, _ = _view(ctx, "cat")
    deltas = [AdapterDelta.unflatten(row, layout) for row in ctx.rows()]
    out = concat_lora(deltas, 1.0, weights, normalise=checks.flag("normalize", normalize))
    return join([out.tensors[n] for n in layout.names]).to(torch.float32)


# inner rule -> (sparsifier, sign election, aggregation) of the shared pipeline
KNOTS_INNER: dict[str, tuple[str, bool, str]] = {
    "ties": ("magnitude", True, "disjoint_mean"),
    "dare_ties": ("random", True, "disjoint_mean"),
    "average": ("none", False, "mean"),
    "task_arithmetic": ("none", False, "sum"),
}


def knots(ctx: MergeContext, inner: str, density: float, p: float, seed: int, consensus: str,
          weights: Sequence[float] | None, lam: float) -> Tensor:
    """KnOTS (Stoica et al. 2025): align the updates in the joint SVD basis, merge there, rank sum(r_i).

    Per module, [M_1 ... M_k] = U S [V_1 ... V_k] (columns with S > 1e-5); task i's row holds S V_i of every
    module (the reference's ``s_on_V``; computed as U^T M_i, equal to it, so that equal updates give
    bit-equal rows) and its non-LoRA tensors; the rows are merged by ``inner``: ``ties``
    (trim each row to ``density`` by magnitude over the whole row, as the reference's ``topK``; elect;
    disjoint mean), ``dare_ties`` (DARE with drop probability ``p``, seeded by adapter; elect; disjoint
    mean), ``average`` or ``task_arithmetic``; times ``lam`` (the reference's scaling coefficient). The
    result is B' = U and A' = the merged S V, zero-padded to rank sum(r_i).

    Deviations: defaults density 1 (the reference's LLaMA configs use ``topK: 100``, no trim), p 0.5;
    the reference leaves non-LoRA tensors out of the merge (here the inner rule merges them too); its sign
    election resolves an exact zero to the majority sign of the whole vector (here nothing is kept there);
    its trim keeps entries >= the k-th magnitude (here exactly round(density * n), stable tie break); its
    1e-5 cut applies to the scaled update (here to B A without alpha / r).
    """
    inner = checks.choice("KnOTS inner rule", inner, tuple(KNOTS_INNER))
    sparsify, elect, aggregate = KNOTS_INNER[inner]
    layout, view = _view(ctx, "knots")
    k = ctx.k
    parts = split_rows(ctx.rows().double(), layout)
    bases: list[Tensor] = []
    task_parts: list[Tensor] = []  # [k, m, in] per module, then the other tensors [k, *shape]
    for _, a, b in view.pairs:
        m = parts[b] @ parts[a]  # [k, out, in]
        joint = torch.cat(list(m), dim=1)  # [out, k in]
        u, s, _ = torch.linalg.svd(joint, full_matrices=False)
        u = u[:, s > KNOTS_TOL]
        bases.append(u)
        # S V_i = U^T M_i (U^T [M_1 ... M_k] = S V): computed per task, equal tasks give bit-equal blocks
        task_parts.append(u.T @ m)
    task_parts += [parts[i] for i in view.others]
    rows = join(task_parts, dim=1)
    merged = generalized_merge(rows, ctx.keys, sparsify=sparsify, consensus=consensus if elect else "none",
                               aggregate=aggregate, weights=weights, lam=lam, density=density, p=p, seed=seed)
    merged_parts = torch.split(merged, [t[0].numel() for t in task_parts])
    out: list[Tensor] = [torch.empty(0)] * len(layout.names)
    for (_, a, b), u, part in zip(view.pairs, bases, merged_parts, strict=False):
        rank = layout.shapes[a][0] * k
        used = min(u.shape[1], rank)
        out_b = torch.zeros(u.shape[0], rank, dtype=u.dtype)
        out_a = torch.zeros(rank, layout.shapes[a][1], dtype=u.dtype)
        out_b[:, :used] = u[:, :used]
        out_a[:used] = part.reshape(u.shape[1], -1)[:used]
        out[a], out[b] = out_a, out_b
    for i, part in zip(view.others, merged_parts[len(view.pairs):], strict=True):
        out[i] = part
    return join(out).to(torch.float32)


_WEIGHTS = ("weights",)
_SVD: dict[str, Any] = {"svd_rank": None, "svd_clamp": None}


def _register(name: str, reference: str, description: str, fn: Any, params: dict[str, Any], **flags: Any) -> None:
    fields: dict[str, Any] = {"per_adapter": _WEIGHTS, "needs_lora": True, "idempotent": False,
                              "identity_params": None, **flags}
    MERGE_RULES.register(name, MergeRule(name=name, reference=reference, description=description, fn=fn,
                                         params=params, **fields))


# The SVD rules re-derive the factors (another gauge of the same update): no parameters return an input's
# factors unchanged, hence identity_params None and idempotent False (the update is kept; the tests check it).
_register("svd", f"{PEFT_SVD} combination_type='svd'",
          "LoRA: weighted sum of the updates B_i A_i per module, truncated by SVD to the pool's rank",
          svd, {"weights": None, "normalize": False, **_SVD})
_register("ties_svd", f"Yadav et al. 2023 (TIES) on updates; {PEFT_SVD} 'ties_svd'",
          "LoRA: TIES on the updates B_i A_i (trim per module, elect, disjoint mean), SVD to the pool's rank",
          ties_svd, {"density": 0.2, "consensus": "sum", "weights": None, **_SVD})
_register("dare_linear_svd", f"Yu et al. 2023 (DARE) on updates; {PEFT_SVD} 'dare_linear_svd'",
          "LoRA: DARE (keep density, seeded per adapter) on the updates, weighted sum, SVD to the pool's rank",
          dare_linear_svd, {"density": 0.5, "seed": 0, "weights": None, "normalize": False, **_SVD})
_register("dare_ties_svd", f"Yu et al. 2023 + Yadav et al. 2023 on updates; {PEFT_SVD} 'dare_ties_svd'",
          "LoRA: DARE on the updates, sign election, disjoint mean, SVD to the pool's rank",
          dare_ties_svd, {"density": 0.5, "seed": 0, "consensus": "sum", "weights": None, **_SVD})
_register("magnitude_prune_svd", f"{PEFT_SVD} 'magnitude_prune_svd'",
          "LoRA: each update pruned to density by magnitude, weighted sum, SVD to the pool's rank",
          magnitude_prune_svd, {"density": 0.2, "weights": None, "normalize": False, **_SVD})
_register("cat", f"{PEFT_SVD} combination_type='cat'",
          "LoRA: exact weighted sum of the updates, factors concatenated (rank = sum of ranks)",
          cat, {"weights": None, "normalize": False}, rank_sum=True, identity_params={})
_register("knots", "Stoica et al. 2025 (KnOTS); gstoica27/KnOTS task_merger.py SVDMerger",
          "LoRA: joint SVD of the updates, per-task S V_i merged by an inner rule (ties), rank = sum of ranks",
          knots, {"inner": "ties", "density": 1.0, "p": 0.5, "seed": 0, "consensus": "sum", "weights": None,
                  "lam": 1.0}, rank_sum=True)
MERGE_RULES.register(
    "magnitude_prune",
    MergeRule(
        name="magnitude_prune",
        reference=f"{PEFT} utils/merge_utils.py magnitude_prune",
        description="each tensor of each adapter pruned to density by magnitude, then the weighted sum",
        fn=magnitude_prune,
        params={"density": 0.2, "weights": None, "normalize": False},
        per_adapter=_WEIGHTS,
        idempotent=False,  # a sum (normalize=true: a mean)
        identity_params={"density": 1.0},
    ),
)
