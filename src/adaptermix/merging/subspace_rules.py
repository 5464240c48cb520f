"""Singular-subspace rules per weight matrix: TSV-Merge, Iso-C and Iso-CTS (FusionBench ports).

Every 2-D tensor of the layout is merged through SVDs; every other tensor (biases) is the plain mean of
the adapters, as FusionBench does. The result is multiplied by ``alpha`` (FusionBench's scaling factor).

Ported from tanganke/fusion_bench:

- ``tsv_m``: ``fusion_bench/method/task_singular_vector/utils/TSVM_utils.py``
  (``compute_and_sum_svd_mem_reduction``, used by ``TSVM.py``); Gargiulo et al. 2025, "Task Singular
  Vectors: Reducing Task Interference in Model Merging".
- ``iso_c``, ``iso_cts``: ``fusion_bench/method/isotropic_merging/iso_utils.py`` (``iso_c``, ``iso_cts``);
  Marczak et al. 2025, "No Task Left Behind: Isotropic Model Merging with Common and Task-Specific
  Subspaces". Defaults as ``config/method/isotropic_merging/iso_c*.yaml`` (scaling 1.0, common space
  fraction 0.8).

Space: these methods are defined on task vectors (fine-tuned weights minus the pre-trained ones).
adaptermix applies them to the raw adapter parameters, as its TIES and DARE rules do: the adapters'
shared seeded initialisation is not subtracted (``[raw parameters]`` in ``adaptermix list rules``).
Note that Iso-C and Iso-CTS spectra come from the *sum* of the adapters' matrices (biases: the mean), so
on raw parameters a merged matrix has about k times an adapter's scale unless alpha compensates.

Common deviations: SVDs run in float64 (FusionBench: float32) and the result is float32; the k adapters
are taken in the package's canonical (name) order, which fixes where each one's block sits in the
concatenations.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from adaptermix.merging import checks
from adaptermix.merging.base import MERGE_RULES, MergeContext, MergeRule
from adaptermix.merging.per_tensor import map_tensors

FUSION_BENCH = "tanganke/fusion_bench"


def polar(m: Tensor) -> Tensor:
    """The orthogonal polar factor U @ Vh of ``m`` (FusionBench's "orthogonalise" step)."""
    u: Tensor
    vh: Tensor
    u, _, vh = torch.linalg.svd(m, full_matrices=False)
    return u @ vh


def tsv_matrix(t: Tensor) -> Tensor:
    """TSV-M on one matrix stack [k, m, n] -> [m, n].

    Each adapter keeps its top ``r // k`` singular triplets (r = min(m, n)); the kept U columns, singular
    values and Vh rows are concatenated block after block (unused slots zero), U and Vh are replaced by
    their polar factors, and the matrix is rebuilt as polar(U) diag(S) polar(Vh). Deviation: FusionBench
    computes ``int(r * (1 / k))``, which floating point can round down for an exact quotient (49 * (1/49)
    is 0.999...); this uses the integer quotient. As in FusionBench, k > r keeps no component and the
    matrix merges to zero (e.g. LoRA factors of rank 4 with 5 or more adapters).
    """
    k, m, n = t.shape
    u, s, vh = torch.linalg.svd(t, full_matrices=False)
    r = s.shape[1]
    per_task = r // k
    used = k * per_task
    sum_u = torch.zeros(m, r, dtype=t.dtype)
    sum_s = torch.zeros(r, dtype=t.dtype)
    sum_vh = torch.zeros(r, n, dtype=t.dtype)
    sum_u[:, :used] = u[:, :, :per_task].permute(1, 0, 2).reshape(m, used)
    sum_s[:used] = s[:, :per_task].reshape(used)
    sum_vh[:used] = vh[:, :per_task, :].reshape(used, n)
    return polar(sum_u) @ torch.diag(sum_s) @ polar(sum_vh)


def iso_c_matrix(t: Tensor) -> Tensor:
    """Iso-C on one matrix stack [k, m, n]: SVD of the sum, every singular value replaced by their mean."""
    u: Tensor
    vh: Tensor
    u, s, vh = torch.linalg.svd(t.sum(dim=0), full_matrices=False)
    return u @ torch.diag(torch.full_like(s, float(s.mean()))) @ vh


def iso_cts_split(r: int, k: int, common_space_fraction: float) -> tuple[int, int]:
    """(common directions, directions per adapter) for a matrix of min dimension r (FusionBench ``iso_cts``).

    The task-specific total is rounded to a multiple of k; deviation: when that rounding goes above the
    r - int(r * fraction) available (tiny matrices) it is rounded down instead, which FusionBench does
    not guard (its common size would be negative).
    """
    common = int(r * common_space_fraction)
    task_total = round((r - common) / k) * k
    if task_total > r:
        task_total = ((r - common) // k) * k
    return r - task_total, task_total // k


def iso_cts_matrix(t: Tensor, common_space_fraction: float) -> Tensor:
    """Iso-CTS on one matrix stack [k, m, n] -> [m, n].

    The common subspace is the top ``common`` left/right singular vectors of the sum; each adapter adds
    the top ``per_task`` singular triplets of its matrix with the common left subspace projected out.
    All blocks are concatenated (adapters first, common last, as FusionBench), U and Vh replaced by their
    polar factors, and every singular value by the mean of all concatenated singular values.
    """
    k, m, n = t.shape
    r = min(m, n)
    common, per_task = iso_cts_split(r, k, common_space_fraction)
    u, s, vh = torch.linalg.svd(t.sum(dim=0), full_matrices=False)
    cu, cs, cvh = u[:, :common], s[:common], vh[:common, :]
    specific = t - cu @ (cu.T @ t)
    u_ts, s_ts, vh_ts = torch.linalg.svd(specific, full_matrices=False)
    used = k * per_task
    comb_u = torch.cat([u_ts[:, :, :per_task].permute(1, 0, 2).reshape(m, used), cu], dim=1)
    comb_s = torch.cat([s_ts[:, :per_task].reshape(used), cs])
    comb_vh = torch.cat([vh_ts[:, :per_task, :].reshape(used, n), cvh], dim=0)
    return polar(comb_u) @ torch.diag(torch.full_like(comb_s, float(comb_s.mean()))) @ polar(comb_vh)


def _per_matrix(ctx: MergeContext, rule: str, alpha: float, matrix_fn: Callable[[Tensor], Tensor]) -> Tensor:
    """``matrix_fn`` on every 2-D tensor, the mean on the others, times alpha (float64 inside)."""
    alpha = checks.number("alpha", alpha)

    def merge_tensor(t: Tensor, _: str) -> Tensor:
        return matrix_fn(t) if t.dim() == 3 else t.mean(dim=0)

    out = map_tensors(ctx.rows().double(), ctx.require_layout(rule), merge_tensor)
    return out if alpha == 1.0 else alpha * out


def tsv_m(ctx: MergeContext, alpha: float) -> Tensor:
    """TSV-M (FusionBench ``TaskSingularVectorMerging`` with a scalar alpha). One adapter is returned
    unchanged times alpha, TSV-M's exact result (its SVD round trip would only add rounding)."""
    if ctx.k == 1:
        checks.number("alpha", alpha)
        row = ctx.rows()[0]
        return row if alpha == 1.0 else alpha * row
    return _per_matrix(ctx, "tsv_m", alpha, tsv_matrix)


def iso_c(ctx: MergeContext, alpha: float) -> Tensor:
    """Iso-C (FusionBench ``IsotropicMergingInCommonSubspace``)."""
    return _per_matrix(ctx, "iso_c", alpha, iso_c_matrix)


def iso_cts(ctx: MergeContext, alpha: float, common_space_fraction: float) -> Tensor:
    """Iso-CTS (FusionBench ``IsotropicMergingInCommonAndTaskSubspace``)."""
    fraction = checks.fraction(
        "common_space_fraction", common_space_fraction, open_low=False, open_high=False
    )
    return _per_matrix(ctx, "iso_cts", alpha, lambda t: iso_cts_matrix(t, fraction))


MERGE_RULES.register(
    "tsv_m",
    MergeRule(
        name="tsv_m",
        reference=f"Gargiulo et al. 2025 (TSV-Merge); {FUSION_BENCH} task_singular_vector/utils/TSVM_utils.py",
        description="per matrix: each adapter's top 1/k singular triplets, concatenated, U and V orthogonalised",
        fn=tsv_m,
        params={"alpha": 1.0},
        idempotent=False,  # copies of one adapter share directions: the orthogonalised blocks differ from it
    ),
)
MERGE_RULES.register(
    "iso_c",
    MergeRule(
        name="iso_c",
        reference=f"Marczak et al. 2025 (Iso-C); {FUSION_BENCH} isotropic_merging/iso_utils.py",
        description="per matrix: SVD of the summed adapters with a flat spectrum (mean singular value)",
        fn=iso_c,
        params={"alpha": 1.0},
        idempotent=False,  # flattens the spectrum, and sums: never returns its input
        identity_params=None,
    ),
)
MERGE_RULES.register(
    "iso_cts",
    MergeRule(
        name="iso_cts",
        reference=f"Marczak et al. 2025 (Iso-CTS); {FUSION_BENCH} isotropic_merging/iso_utils.py",
        description="per matrix: common subspace of the sum plus task-specific subspaces, flat spectrum",
        fn=iso_cts,
        params={"alpha": 1.0, "common_space_fraction": 0.8},
        idempotent=False,
        identity_params=None,
    ),
)
