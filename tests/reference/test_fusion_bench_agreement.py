"""adaptermix's FusionBench ports agree with fusion-bench on the same tensors (``make test-reference``).

FusionBench's merging functions take task vectors (state dicts or flat [k, P] tensors); adaptermix gets the
same rows through ``merge_flat`` (rows merged as given, no base: what these functions compute is the merged
task vector). Where the two differ on purpose, the parameters are set so that both compute the same thing
and a comment says why (docs/reference-agreement.md).

Skipped (importorskip) where fusion-bench is not installed: run them in .venv-ref (scripts/reference-env.sh).
"""

from __future__ import annotations

import pytest
import torch
from ref_common import (
    SVD_ATOL,
    SVD_RTOL,
    assert_agree,
    flatten,
    make_pool,
    ours_raw,
    state_dicts,
)

pytest.importorskip("fusion_bench")
from fusion_bench.method.emr_merging.utils import emr_merge  # noqa: E402
from fusion_bench.method.isotropic_merging.iso_utils import iso_c, iso_cts  # noqa: E402
from fusion_bench.method.tall_mask.utils import generate_task_masks  # noqa: E402
from fusion_bench.method.task_singular_vector.utils.TSVM_utils import (  # noqa: E402
    compute_and_sum_svd_mem_reduction,
)
from fusion_bench.method.ties_merging.ties_merging_utils import ties_merging  # noqa: E402
from fusion_bench.utils.state_dict_arithmetic import state_dict_mul, state_dict_sum  # noqa: E402

pytestmark = pytest.mark.reference


@pytest.mark.parametrize("k", [2, 3, 4])
def test_tsv_m(k: int) -> None:
    # k = 2, 3, 4 on matrices of min dimension 5 and 6: FusionBench's int(r * (1 / k)) equals adaptermix's
    # r // k for these (it can round an exact quotient down, e.g. 49 * (1 / 49); adaptermix does not).
    pool = make_pool(k, seed=30 + k)
    ref = compute_and_sum_svd_mem_reduction(state_dicts(pool.tau, pool.layout), accelerator="cpu")
    assert_agree(ours_raw("tsv_m", pool.tau, pool), flatten(ref, pool.layout), SVD_RTOL, SVD_ATOL)


@pytest.mark.parametrize("k", [2, 3, 5])
def test_iso_c(k: int) -> None:
    pool = make_pool(k, seed=40 + k)
    ref = iso_c(state_dicts(pool.tau, pool.layout), accelerator="cpu")
    assert_agree(ours_raw("iso_c", pool.tau, pool), flatten(ref, pool.layout), SVD_RTOL, SVD_ATOL)


@pytest.mark.parametrize(("k", "fraction"), [(2, 0.8), (3, 0.8), (3, 0.5)])
def test_iso_cts(k: int, fraction: float) -> None:
    # Matrices large enough that FusionBench's split of the spectrum never goes negative (adaptermix's
    # iso_cts_split guards that case, FusionBench does not).
    pool = make_pool(k, seed=50 + k)
    ref = iso_cts(state_dicts(pool.tau, pool.layout), common_space_fraction=fraction, accelerator="cpu")
    ours = ours_raw("iso_cts", pool.tau, pool, common_space_fraction=fraction)
    assert_agree(ours, flatten(ref, pool.layout), SVD_RTOL, SVD_ATOL)


def test_emr() -> None:
    # rescale="tensor_mean" is what FusionBench computes (the sum over tensors of each tensor's mean |.|);
    # adaptermix's default "sum" is the paper's Eq. Random rows: no exact zero sums, where FusionBench
    # elects "-" and adaptermix no sign.
    pool = make_pool(4, seed=60)
    unified, masks, rescalers = emr_merge(state_dicts(pool.tau, pool.layout))
    for j, key in enumerate(pool.keys):
        view = {n: rescalers[j] * masks[n][j] * unified[n] for n in pool.layout.names}
        ours = ours_raw("emr", pool.tau, pool, target=key, rescale="tensor_mean")
        assert_agree(ours, flatten(view, pool.layout))


@pytest.mark.parametrize("mask_lambda", [0.2, 0.4, 0.6])
def test_tall_mask(mask_lambda: float) -> None:
    # FusionBench compares weights: |theta_0 - theta_t| > lambda |theta_MTL - theta_t|. With theta_0 = 0 the
    # weights are the task vectors themselves and the comparison is exactly adaptermix's on tau (a nonzero
    # theta_0 adds rounding that can flip entries at the threshold). adaptermix uses >= (the paper's
    # equation), FusionBench >: the same on random rows (no exact ties).
    pool = make_pool(4, seed=70)
    tau = pool.tau
    masks = generate_task_masks(tau, tau, torch.zeros(tau.shape[1]), tall_mask_lambda=mask_lambda)
    mtl = tau.sum(dim=0)
    for j, key in enumerate(pool.keys):
        ours = ours_raw("tall_mask", tau, pool, target=key, mask_lambda=mask_lambda)
        assert_agree(ours, masks[j] * mtl)


@pytest.mark.parametrize("min_agree", [1, 2, 3])
def test_consensus_ta(min_agree: int) -> None:
    # FusionBench's construct_consensus_mask reads stored TALL masks from disk; its counting step
    # (a parameter is kept when at least prun_thre_k tasks' masks select it) is applied here to the masks
    # of generate_task_masks.
    pool = make_pool(4, seed=71)
    tau = pool.tau
    masks = generate_task_masks(tau, tau, torch.zeros(tau.shape[1]), tall_mask_lambda=0.4)
    consensus = masks.float().sum(dim=0) >= min_agree
    ours = ours_raw("consensus_ta", tau, pool, mask_lambda=0.4, min_agree=min_agree)
    assert_agree(ours, consensus * tau.sum(dim=0))


def test_ties() -> None:
    # FusionBench's topk_values_mask keeps the entries >= the (P - int(P K))-th smallest |x|, i.e.
    # int(P K) + 1 entries per task; adaptermix keeps round(density P): density = (int(P K) + 1) / P.
    # Its disjoint mean counts the agreeing entries (unweighted): adaptermix's without weights.
    pool = make_pool(4, seed=80)
    tau = pool.tau
    p_total, keep = tau.shape[1], 0.25  # 84 * 0.25 = 21: FusionBench keeps 22
    ref = ties_merging(tau.clone(), reset_thresh=keep, merge_func="dis-mean")
    density = (int(p_total * keep) + 1) / p_total
    assert_agree(ours_raw("ties", tau, pool, density=density), ref)


def test_task_arithmetic() -> None:
    # FusionBench's task_arithmetic_merge: scaling_factor * sum of the task vectors (its state-dict steps).
    pool = make_pool(4, seed=90)
    ref = state_dict_mul(state_dict_sum(state_dicts(pool.tau, pool.layout)), 0.3)
    assert_agree(ours_raw("task_arithmetic", pool.tau, pool, lam=0.3), flatten(ref, pool.layout))
