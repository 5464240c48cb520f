"""Per-tensor views of stacked rows, for rules defined tensor by tensor (mergekit, FusionBench).

mergekit and FusionBench merge one weight tensor at a time: sparsification thresholds, sphere norms and
SVDs are all per tensor. A rule sees the adapters as flat rows ``x`` [k, P]; :func:`split_rows` recovers
one ``[k, *shape]`` view per tensor of the :class:`~adaptermix.deltas.ParamLayout` (layout order, no
copy) and :func:`join` concatenates per-tensor results back into a flat vector.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from adaptermix.core.errors import ConfigError
from adaptermix.deltas import ParamLayout


def split_rows(x: Tensor, layout: ParamLayout) -> list[Tensor]:
    """Rows ``x`` [k, P] as one ``[k, *shape]`` view per tensor of ``layout`` (layout order)."""
    if x.shape[1] != layout.size:
        raise ConfigError(f"adapter rows have {x.shape[1]} parameters but the layout has {layout.size}")
    parts = torch.split(x, list(layout.numels), dim=1)
    return [p.reshape(x.shape[0], *shape) for p, shape in zip(parts, layout.shapes, strict=True)]


def join(parts: Sequence[Tensor], dim: int = 0) -> Tensor:
    """Concatenate per-tensor results flattened from ``dim`` on: [*shape] -> [P], [k, *shape] -> [k, P]."""
    return torch.cat([p.flatten(dim) for p in parts], dim=dim)


def map_tensors(x: Tensor, layout: ParamLayout, fn: Callable[[Tensor, str], Tensor]) -> Tensor:
    """``fn(view [k, *shape], tensor name) -> merged [*shape]`` for every tensor, joined into [P] float32."""
    merged = [fn(part, name) for part, name in zip(split_rows(x, layout), layout.names, strict=True)]
    return join(merged).to(torch.float32)


def map_rows(x: Tensor, layout: ParamLayout, fn: Callable[[Tensor], Tensor]) -> Tensor:
    """``fn(view [k, *shape]) -> [k, *shape]`` for every tensor (per-adapter steps), joined into [k, P]."""
    return join([fn(part) for part in split_rows(x, layout)], dim=1)
