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

from adaptermix.deltas import AdapterDelta, ParamLayout
from adaptermix.errors import ConfigError, IncompatibleAdaptersError
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
