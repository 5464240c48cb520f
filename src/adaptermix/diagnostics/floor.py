"""FSD you can read: split by tensor kind, restricted to large weights, and measured against a noise floor.

A whole-adapter FSD mixes tensors that behave very differently. Under the ``mam`` init (zero up-projection)
the up-projection weights take their signs from the first gradients and disagree about half the time, while
the down-projection keeps the signs of its shared init; the total is a parameter-weighted mix of the two.
:func:`fsd_by_kind` splits every pair's FSD by tensor kind (bottleneck: ``down.weight``, ``up.weight``,
``down.bias``, ``up.bias``; LoRA: ``lora_A``, ``lora_B``, and the effective update ``dW`` in space "dw"); in
one space the kinds add back to the whole as their parameter-count-weighted mean.

A cross-domain FSD means something only against the **noise floor**: the FSD between two adapters of the
*same* domain that differ only by training seed and training sample (same init). :func:`noise_floor` takes a
pool matrix whose names include such replicates and returns, per domain, its floor (mean FSD to its
replicates), and per domain pair the excess ``FSD(i, j) - (floor_i + floor_j) / 2``.

:func:`top_fraction_fsd` is an FSD variant (ours, not the paper's): per pair, only the parameters that are in
the top ``fraction`` by magnitude of *both* adapters are compared, normalised by their number.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from adaptermix.core.errors import ConfigError
from adaptermix.deltas import StackedDeltas, parse_name, stack, to_dw
from adaptermix.diagnostics.conflicts import GroupedFSD, grouped_fsd

KIND_ALL = "all"


def tensor_kind(name: str) -> str:
    """The kind of a body tensor: its parameter name without layer and site (``up.weight``, ``lora_A``)."""
    return parse_name(name)[2]


def fsd_by_kind(stacked: StackedDeltas) -> GroupedFSD:
    """Every pair's FSD per tensor kind (one [N, N] matrix per kind), in ``stacked``'s space.

    ``GroupedFSD.weighted_total()`` (parameter-count-weighted mean over kinds) is the whole-adapter FSD.
    """
    return grouped_fsd(stacked, "kind")


def fsd_kind_rows(stacked: StackedDeltas, lora_scale: float | None = None) -> list[dict[str, Any]]:
    """Rows ``{adapter_a, adapter_b, kind, n_params, fsd, space}`` for every pair and kind, plus kind "all".

    With ``lora_scale`` (alpha / r of a LoRA pool in space "raw") the rows of the effective update ``dW``
    (space "dw") follow those of ``lora_A`` and ``lora_B``.
    """
    groups = [fsd_by_kind(stacked)]
    if lora_scale is not None:
        dw = stack([to_dw(d, lora_scale) for d in stacked.unstack()], stacked.names)
        groups.append(fsd_by_kind(dw))
    rows: list[dict[str, Any]] = []
    names = stacked.names
    for grouped in groups:
        total = grouped.weighted_total()
        kinds = [*zip(grouped.keys, grouped.sizes, grouped.values, strict=True),
                 (KIND_ALL, sum(grouped.sizes), total)]
        for i in range(len(names)):
            for j in range(i + 1, len(names)):
                for kind, size, values in kinds:
                    rows.append({"adapter_a": names[i], "adapter_b": names[j], "kind": kind, "n_params": int(size),
                                 "fsd": float(values[i, j]), "space": grouped.space})
    return rows


def top_fraction_fsd(x: Tensor, fraction: float) -> Tensor:
    """FSD over large weights only: float64 [N, N] for the rows of ``x`` [N, P].

    Entry (i, j) = #{p in M_ij : x_i[p] x_j[p] < 0} / |M_ij| with M_ij the parameters in the top ``fraction``
    by |value| of row i AND of row j (ties at the threshold included). ``fraction`` = 1 is the ordinary FSD
    except that exact zeros are still counted in the denominator (as Alg. 3 does).
    """
    if not 0 < fraction <= 1:
        raise ConfigError(f"top fraction must be in (0, 1], got {fraction}")
    n, p = x.shape
    keep = max(1, int(round(fraction * p)))
    mags = x.abs()
    thresholds = mags.kthvalue(p - keep + 1, dim=1).values if keep < p else torch.zeros(n)
    masks = mags >= thresholds[:, None]
    signs = torch.sign(x)
    out = torch.zeros(n, n, dtype=torch.float64)
    for i in range(n):
        for j in range(i + 1, n):
            both = masks[i] & masks[j]
            count = int(both.sum())
            if count:
                conflicts = int(((signs[i] * signs[j]) < 0)[both].sum())
                out[i, j] = out[j, i] = conflicts / count
    return out


@dataclass(frozen=True)
class NoiseFloor:
    """Per domain, the FSD to its own replicates; per domain pair, the FSD in excess of the floor."""

    domains: tuple[str, ...]
    floor: dict[str, float | None]  # mean FSD(domain, replicate); None = no replicate given
    replicate_fsd: dict[str, list[float]]  # each replicate's FSD to its domain adapter
    fsd: Tensor  # float64 [D, D]: the cross-domain matrix
    excess: Tensor  # float64 [D, D]: fsd - mean(floor_i, floor_j); NaN where a floor is missing

    def as_dict(self) -> dict[str, Any]:
        return {
            "domains": list(self.domains),
            "floor": self.floor,
            "replicate_fsd": self.replicate_fsd,
            "excess": [[None if v != v else v for v in row] for row in self.excess.tolist()],
        }

    def rows(self) -> list[dict[str, Any]]:
        """One row per domain pair: cross-domain FSD, both floors and the excess (None when unknown)."""
        out = []
        for i, a in enumerate(self.domains):
            for j in range(i + 1, len(self.domains)):
                b = self.domains[j]
                ex = float(self.excess[i, j])
                out.append({"adapter_a": a, "adapter_b": b, "fsd": float(self.fsd[i, j]),
                            "floor_a": self.floor[a], "floor_b": self.floor[b], "excess": None if ex != ex else ex})
        return out


def noise_floor(values: Tensor, names: Sequence[str], replicate_of: Mapping[str, str]) -> NoiseFloor:
    """Split a pool matrix over domain adapters + replicates into the domain matrix, floors and excess.

    ``values`` [N, N] is the FSD matrix of ``names``; ``replicate_of`` maps a replicate's name to the name
    of its domain adapter (which must be in ``names``). Every other name is a domain adapter.
    """
    index = {n: i for i, n in enumerate(names)}
    for rep, dom in replicate_of.items():
        if rep not in index:
            raise ConfigError(f"replicate {rep!r} is not in the pool")
        if dom not in index or dom in replicate_of:
            raise ConfigError(f"replicate {rep!r} names {dom!r}, which is not a domain adapter of the pool")
    domains = tuple(n for n in names if n not in replicate_of)
    per: dict[str, list[float]] = {d: [] for d in domains}
    for rep, dom in replicate_of.items():
        per[dom].append(float(values[index[rep], index[dom]]))
    floor = {d: (sum(v) / len(v) if v else None) for d, v in per.items()}
    idx = torch.tensor([index[d] for d in domains], dtype=torch.long)
    fsd = values.index_select(0, idx).index_select(1, idx).double()
    f = torch.tensor([float("nan") if floor[d] is None else floor[d] for d in domains], dtype=torch.float64)
    excess = fsd - (f[:, None] + f[None, :]) / 2
    excess.fill_diagonal_(0.0)
    return NoiseFloor(domains, floor, per, fsd, excess)
