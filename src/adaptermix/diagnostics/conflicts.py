"""Fraction of Sign Difference (FSD, Alg. 3 of Nguyen & Le 2024), vectorised over a whole adapter pool.

FSD(a, b) = count(a * b < 0) / P: the fraction of parameters whose signs disagree, normalised by the
parameter count P. The k x k matrix S of a pool (Sec. 5.2, Fig. 4) is computed in ONE pass over the pool:
with s = sign(x) in {-1, 0, 1} and |s| its nonzero indicator ([N, P] each),

    conflicts = (|s| @ |s|.T - s @ s.T) / 2

(a pair of nonzero entries contributes 1 - 1 = 0 when the signs agree and 1 + 1 = 2 when they differ; a
zero contributes nothing). Both products come from ONE matrix product of the stacked [2N, C] block
[s; |s|] with itself, over column blocks of C = 16384: the block stays in cache, which makes the pass
~3x faster than whole-matrix indicators on CPU, and every block's entries are integers <= C < 2**24, so
float32 is exact; block totals are accumulated in float64.

Per-layer / per-site / per-module matrices use the same pass with blocks cut at tensor boundaries, giving
per-tensor counts that a segment sum turns into group counts, so groups add up exactly to the whole.

Deviation from the literal Alg. 3 (kept as :func:`literal_fsd` for tests and the benchmark): we compare
signs instead of testing the float product ``a * b < 0``. The two agree except when a product of two
nonzero values underflows to zero (|a * b| below ~1e-45 in float32), which the literal version counts as
"no conflict" although the signs differ.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from adaptermix.deltas import AdapterDelta, ParamLayout, StackedDeltas, require_same_layout

CHUNK_COLUMNS = 1 << 14


def segment_conflict_counts(x: Tensor, bounds: Sequence[int]) -> Tensor:
    """Sign-conflict counts of the rows of ``x`` [N, P] per column segment [bounds[t], bounds[t+1]).

    Returns int64 [T, N, N] with entry (t, i, j) = #{p in segment t : x_i[p] * x_j[p] < 0} (by signs).
    The loop runs over column blocks of at most CHUNK_COLUMNS (never over single parameters).
    """
    n = x.shape[0]
    buffer = torch.empty(2 * n, min(CHUNK_COLUMNS, max(x.shape[1], 1)))
    out = torch.zeros(len(bounds) - 1, n, n, dtype=torch.float64)
    for t, (lo, hi) in enumerate(itertools.pairwise(bounds)):
        for start in range(lo, hi, CHUNK_COLUMNS):
            stop = min(start + CHUNK_COLUMNS, hi)
            block = buffer[:, : stop - start]
            torch.sign(x[:, start:stop], out=block[:n])
            torch.abs(block[:n], out=block[n:])
            gram = block @ block.T  # [2N, 2N]: s s^T in the top-left, |s| |s|^T in the bottom-right
            out[t] += (gram[n:, n:] - gram[:n, :n]).double()
    return (out / 2).round().long()


def conflict_counts(x: Tensor) -> Tensor:
    """Pairwise sign-conflict counts (int64 [N, N]) of the rows of ``x`` [N, P]: #{p: x_i[p] x_j[p] < 0}."""
    return segment_conflict_counts(x, [0, x.shape[1]])[0]


def fsd_matrix_flat(x: Tensor) -> Tensor:
    """FSD matrix (float64 [N, N]) of the rows of ``x`` [N, P]; the fast path used by sweeps."""
    return conflict_counts(x).double() / x.shape[1]


def tensor_conflict_counts(x: Tensor, layout: ParamLayout) -> Tensor:
    """Sign-conflict counts per tensor of the layout: int64 [T, N, N], in the same single pass."""
    return segment_conflict_counts(x, layout.offsets)


def grouped_conflict_counts(x: Tensor, layout: ParamLayout, by: str) -> Tensor:
    """Sign-conflict counts per group of ``layout.groups(by)``: int64 [G, N, N] (segment sum of tensors)."""
    grouping = layout.groups(by)
    per_tensor = tensor_conflict_counts(x, layout)
    out = torch.zeros((len(grouping.keys), *per_tensor.shape[1:]), dtype=torch.long)
    return out.index_add_(0, torch.tensor(grouping.tensor_group, dtype=torch.long), per_tensor)


@dataclass(frozen=True)
class FSDMatrix:
    """The k x k FSD matrix S of a pool, with the adapter names and the space it was computed in."""

    values: Tensor  # float64 [N, N], symmetric, zero diagonal, entries in [0, 1]
    names: tuple[str, ...]
    space: str
    n_params: int

    def row_means(self) -> Tensor:
        """``mean(S, axis=1)`` as in Alg. 1 line 3 (the zero diagonal is included, as in the paper)."""
        return self.values.mean(dim=1)

    def as_dict(self) -> dict[str, Any]:
        return {
            "space": self.space,
            "n_params": self.n_params,
            "names": list(self.names),
            "fsd": self.values.tolist(),
        }


@dataclass(frozen=True)
class GroupedFSD:
    """One FSD matrix per group (layer, site, module or tensor): ``values[g]`` is [N, N] for ``keys[g]``."""

    values: Tensor  # float64 [G, N, N]
    keys: tuple[str, ...]
    sizes: tuple[int, ...]
    by: str
    names: tuple[str, ...]
    space: str

    def weighted_total(self) -> Tensor:
        """Whole-adapter FSD recovered as the size-weighted mean of the group matrices."""
        sizes = torch.tensor(self.sizes, dtype=torch.float64)
        return (self.values * sizes[:, None, None]).sum(0) / sizes.sum()

    def as_dict(self) -> dict[str, Any]:
        return {
            "space": self.space,
            "by": self.by,
            "names": list(self.names),
            "groups": {
                k: {"n_params": s, "fsd": v.tolist()}
                for k, s, v in zip(self.keys, self.sizes, self.values, strict=True)
            },
        }


def fsd_matrix(stacked: StackedDeltas) -> FSDMatrix:
    """FSD matrix S of every pair of the pool, in one vectorised pass."""
    return FSDMatrix(fsd_matrix_flat(stacked.matrix), stacked.names, stacked.space, stacked.layout.size)


def grouped_fsd(stacked: StackedDeltas, by: str = "layer") -> GroupedFSD:
    """FSD matrices per group; ``by`` is "layer", "site", "module" or "tensor" (see ParamLayout.groups)."""
    grouping = stacked.layout.groups(by)
    counts = grouped_conflict_counts(stacked.matrix, stacked.layout, by).double()
    sizes = torch.tensor(grouping.sizes, dtype=torch.float64)
    return GroupedFSD(
        counts / sizes[:, None, None], grouping.keys, grouping.sizes, by, stacked.names, stacked.space
    )


def per_layer_fsd(stacked: StackedDeltas) -> GroupedFSD:
    return grouped_fsd(stacked, "layer")


def per_site_fsd(stacked: StackedDeltas) -> GroupedFSD:
    return grouped_fsd(stacked, "site")


def _as_vector(x: AdapterDelta | Tensor) -> Tensor:
    return x.flatten() if isinstance(x, AdapterDelta) else x.reshape(-1)


def fsd(a: AdapterDelta | Tensor, b: AdapterDelta | Tensor) -> float:
    """FSD of two adapters (deltas of one layout, or flat vectors of equal length)."""
    if isinstance(a, AdapterDelta) and isinstance(b, AdapterDelta):
        require_same_layout([a.layout, b.layout], ["a", "b"])
    va, vb = _as_vector(a), _as_vector(b)
    if va.shape != vb.shape:
        raise ValueError(f"vectors of different lengths: {va.numel()} vs {vb.numel()}")
    conflicts = ((va > 0) & (vb < 0)) | ((va < 0) & (vb > 0))
    return int(conflicts.sum()) / va.numel()


def literal_fsd(a: Mapping[str, Tensor] | AdapterDelta, b: Mapping[str, Tensor] | AdapterDelta) -> float:
    """Alg. 3 transcribed literally (a Python loop over items); the reference for tests and the benchmark."""
    theta_a = a.tensors if isinstance(a, AdapterDelta) else a
    theta_b = b.tensors if isinstance(b, AdapterDelta) else b
    s = sum(v.numel() for v in theta_a.values())  # 1: total parameters
    c = {}  # 2
    for k in theta_a:  # 5-6: element-wise product for each "layer" (state-dict item)
        c[k] = torch.mul(theta_a[k], theta_b[k])
    counter = 0
    for value in c.values():  # 9-10: count the products smaller than 0
        counter += int((value < 0).sum())
    return counter / s  # 11
