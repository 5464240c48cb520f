"""Exact averaging of LoRA adapters in effective-update space, kept as a LoRA.

Averaging LoRA *factors* (rule ``average`` on raw deltas, what Eq. 1 does to parameters) does not
average the updates: mean(B_i) @ mean(A_i) != mean(B_i @ A_i). The exact mean of the effective updates
dW_i = c_i B_i A_i (c_i = alpha_i / r_i) is itself a LoRA of rank sum(r_i), by concatenating factors:

    sum_i v_i c_i B_i A_i = c_out * [v_1 c_1/c_out B_1 ... v_k c_k/c_out B_k] @ [A_1; ...; A_k]

with v_i = w_i / sum(|w_i|) (uniform 1/k by default). So ``average_lora_dw`` returns a delta whose
``lora_B`` is [out, sum r_i] and ``lora_A`` is [sum r_i, in]: a different layout (rank) from its inputs.
To use it as an adapter, set the LoRA rank to sum(r_i) and alpha to ``out_alpha_over_r * sum(r_i)`` so
that alpha / r equals ``out_alpha_over_r``. Non-LoRA tensors, if any, are averaged with the same v_i.

The scales are the adapters' ``LoRAConfig.scale`` (``alpha / r``, computed only there); this module is pure
maths on the numbers it is given.

The dense equivalent is ``merge("average", stack([to_dw(d, c) for d in deltas]))`` (space "dw").
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from adaptermix.core.errors import ConfigError, IncompatibleAdaptersError
from adaptermix.deltas import AdapterDelta, ParamLayout
from adaptermix.merging.steps import adapter_weights


def _check_same_tensors(deltas: Sequence[AdapterDelta]) -> None:
    """Same tensor names and, for LoRA pairs, same in/out dimensions; ranks may differ."""
    first = deltas[0]
    for i, delta in enumerate(deltas[1:], start=1):
        for name, tensor in first.tensors.items():
            other = delta.tensors.get(name)
            rank_dim = {"lora_A": 0, "lora_B": 1}.get(name.rsplit(".", 1)[1])
            fixed = [d for d in range(tensor.dim()) if d != rank_dim]
            if other is None or [tensor.shape[d] for d in fixed] != [other.shape[d] for d in fixed]:
                got = "missing" if other is None else list(other.shape)
                raise IncompatibleAdaptersError(
                    f"LoRA adapters 0 and {i} are incompatible: tensor {name!r} is {list(tensor.shape)} vs {got}"
                )
        extra = sorted(set(delta.tensors) - set(first.tensors))
        if extra:
            raise IncompatibleAdaptersError(
                f"LoRA adapters 0 and {i} are incompatible: {extra[0]!r} only in {i}"
            )


def concat_lora(
    deltas: Sequence[AdapterDelta],
    alpha_over_r: float | Sequence[float],
    weights: Sequence[float] | None = None,
    out_alpha_over_r: float | None = None,
    *,
    normalise: bool,
) -> AdapterDelta:
    """The exact weighted combination of LoRA effective updates as one concatenated-factor LoRA (rank sum r_i).

    ``normalise``: the weights v_i are w_i / sum(|w_i|) (a weighted mean, :func:`average_lora_dw`), else
    w_i as given (a weighted sum, peft's ``cat``). Scales ``c_i`` (alpha_i / r_i) and weights go into the
    B blocks, so the result under ``out_alpha_over_r`` is sum_i v_i c_i B_i A_i; non-LoRA tensors are
    combined with the same v_i.
    """
    if not deltas:
        raise ConfigError("cannot average an empty set of adapters")
    _check_same_tensors(deltas)
    k = len(deltas)
    scales = [float(alpha_over_r)] * k if isinstance(alpha_over_r, (int, float)) else list(alpha_over_r)
    if len(scales) != k:
        raise ConfigError(f"alpha_over_r has {len(scales)} values for {k} adapters")
    if out_alpha_over_r is None:
        if len(set(scales)) != 1:
            raise ConfigError("adapters have different alpha/r: pass out_alpha_over_r")
        out_alpha_over_r = scales[0]
    w = adapter_weights(weights, k)
    v = (w / w.abs().sum() if normalise else w).tolist()
    out: dict[str, Tensor] = {}
    for name in deltas[0].tensors:
        param = name.rsplit(".", 1)[1]
        parts = [d.tensors[name].float() for d in deltas]
        if param == "lora_A":
            out[name] = torch.cat(parts, dim=0)
        elif param == "lora_B":
            out[name] = torch.cat(
                [vi * ci / out_alpha_over_r * p for vi, ci, p in zip(v, scales, parts, strict=True)], dim=1
            )
        else:
            out[name] = sum(vi * p for vi, p in zip(v, parts, strict=True))
    return AdapterDelta(out, deltas[0].space)


def average_lora_dw(
    deltas: Sequence[AdapterDelta],
    alpha_over_r: float | Sequence[float],
    weights: Sequence[float] | None = None,
    out_alpha_over_r: float | None = None,
) -> AdapterDelta:
    """Exact (weighted) mean of LoRA effective updates as one concatenated-factor LoRA (rank sum r_i).

    The merge rule ``cat`` with ``normalize=true`` computes the same on a pool of one alpha/r."""
    return concat_lora(deltas, alpha_over_r, weights, out_alpha_over_r, normalise=True)


def summed_rank_layout(layout: ParamLayout, k: int) -> ParamLayout:
    """The layout of a rank-growing merge of k adapters of ``layout``: every ``lora_A`` [r, in] becomes
    [k r, in] and every ``lora_B`` [out, r] becomes [out, k r]; other tensors keep their shapes."""
    shapes = []
    for name, shape in zip(layout.names, layout.shapes, strict=True):
        param = name.rsplit(".", 1)[-1]
        if param == "lora_A":
            shapes.append((shape[0] * k, *shape[1:]))
        elif param == "lora_B":
            shapes.append((shape[0], shape[1] * k))
        else:
            shapes.append(shape)
    return ParamLayout(layout.names, tuple(shapes))


def _rank_dim(name: str) -> int | None:
    """The rank dimension of a LoRA factor (``lora_A`` [r, in]: 0, ``lora_B`` [out, r]: 1), else None."""
    return {"lora_A": 0, "lora_B": 1}.get(name.rsplit(".", 1)[-1])


def rank_padding_index(src: ParamLayout, dst: ParamLayout) -> Tensor:
    """Where each entry of a ``src`` vector goes in a ``dst`` vector of larger (or equal) LoRA rank: [src.size].

    Both layouts hold the same tensors; a ``lora_A`` [r, in] fills the first r rows of ``dst``'s [R, in],
    a ``lora_B`` [out, r] the first r columns of [out, R]; other tensors keep their shapes. Writing a
    vector there over zeros is exact: the zero rows of A and zero columns of B add nothing to B A.
    """
    if src.names != dst.names:
        raise ConfigError("cannot pad a LoRA into another layout: the tensor names differ")
    parts: list[Tensor] = []
    for name, s_shape, d_shape, start in zip(src.names, src.shapes, dst.shapes, dst.offsets, strict=False):
        dim = _rank_dim(name)
        fixed = [i for i in range(len(s_shape)) if i != dim]
        if len(s_shape) != len(d_shape) or [s_shape[i] for i in fixed] != [d_shape[i] for i in fixed] or (
            dim is not None and s_shape[dim] > d_shape[dim]
        ):
            raise ConfigError(f"cannot pad tensor {name!r} of shape {list(s_shape)} into {list(d_shape)}")
        grid = torch.arange(int(torch.Size(d_shape).numel()), dtype=torch.long).view(d_shape)
        if dim is not None:
            grid = grid.narrow(dim, 0, s_shape[dim])
        parts.append(grid.reshape(-1) + start)
    return torch.cat(parts) if parts else torch.zeros(0, dtype=torch.long)


def pad_lora_rank(vector: Tensor, src: ParamLayout, dst: ParamLayout) -> Tensor:
    """``vector`` (in ``src``) zero-padded to the larger LoRA rank of ``dst`` (see :func:`rank_padding_index`);
    the LoRA it holds has the same update B A. Run under ``dst``'s rank, keep alpha / r as ``src``'s."""
    if vector.shape != (src.size,):
        raise ValueError(f"vector of shape {tuple(vector.shape)} does not match layout size {src.size}")
    out = vector.new_zeros(dst.size)
    out.index_copy_(0, rank_padding_index(src, dst), vector)
    return out
