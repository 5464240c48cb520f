"""Bottleneck adapters (Houlsby et al. 2019; Pfeiffer et al. 2021) as presets of one module.

``h <- h + up(act(down(dropout(h))))`` applied to the output of a sub-layer's output projection, before
that sub-layer's dropout, residual connection and LayerNorm. Houlsby adapts both sub-layers (attention
and feed-forward); Pfeiffer only the feed-forward one.

Deviation (documented): AdapterHub's Pfeiffer config (``SeqBnConfig``) additionally applies the block's
LayerNorm before the adapter (``original_ln_before=True``): ``LN(d + f(LN(d + r)) + r)``. By default
both presets here use the Houlsby placement (one hook on the output projection, every architecture);
``original_ln_before: true`` selects AdapterHub's placement exactly (a hook on the whole output sub-block,
BERT/RoBERTa), which is what importing an AdapterHub ``seq_bn`` adapter uses.
Initialisation (``method.init``, see :data:`adaptermix.methods.config.Init`): by default (``bert``, AdapterHub's
default) both projections are drawn from ``N(0, init_std)``; ``mam`` zero-initialises the up-projection (a
fresh adapter is the identity; adaptermix's only init before ``init`` existed); ``houlsby`` draws both from a
truncated ``N(0, 0.01)``. Every draw comes from one generator seeded by ``init_seed`` (shared across domains by
default), per site in layer order, down-projection first.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from adaptermix.methods.base import (
    ACTIVATIONS,
    AdapterBody,
    Method,
    SiteModule,
    register_method,
    seeded_generator,
)
from adaptermix.methods.config import BottleneckConfig, HoulsbyConfig, PfeifferConfig

HOULSBY_STD = 1e-2
"""AdapterHub's ``init_weights="houlsby"``: ``trunc_normal_(std=1e-2, a=-2e-2, b=2e-2)`` on both weights."""


def init_projections(
    down_shape: torch.Size, up_shape: torch.Size, gen: torch.Generator, init: str, std: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Initial (down, up) weights of one bottleneck site under ``init``; biases always start at zero.

    The draws follow AdapterHub's ``Adapter.__init__`` (adapter-hub/adapters, src/adapters/methods/modeling.py):
    ``bert`` = ``init_bert_weights`` (``normal_(0, 0.02)``; here ``init_std``, default 0.02) on both
    projections; ``houlsby`` = ``trunc_normal_(mean=0, std=1e-2, a=-2e-2, b=2e-2)`` on both; ``mam`` = zero
    up-projection (the down-projection from ``N(0, init_std)``: adaptermix's historical draw, where AdapterHub's
    ``mam_adapter`` uses Kaiming-uniform). The down-projection is always drawn first, so under ``mam`` the
    generator advances exactly as before ``init`` existed (old artefacts re-initialise bit for bit).
    """
    if init == "houlsby":
        down = nn.init.trunc_normal_(torch.empty(down_shape), 0.0, HOULSBY_STD, -2 * HOULSBY_STD, 2 * HOULSBY_STD,
                                     generator=gen)
        up = nn.init.trunc_normal_(torch.empty(up_shape), 0.0, HOULSBY_STD, -2 * HOULSBY_STD, 2 * HOULSBY_STD,
                                   generator=gen)
        return down, up
    down = torch.randn(down_shape, generator=gen) * std
    if init == "mam":
        return down, torch.zeros(up_shape)
    if init == "bert":
        return down, torch.randn(up_shape, generator=gen) * std
    raise ValueError(f"unknown bottleneck init {init!r}")


class Bottleneck(SiteModule):
    """One bottleneck adapter: down-projection, non-linearity, up-projection (init per ``method.init``)."""

    def __init__(self, hidden: int, bottleneck: int, activation: str, dropout: float) -> None:
        super().__init__()
        self.down = nn.Linear(hidden, bottleneck)
        self.act = ACTIVATIONS[activation]()
        self.up = nn.Linear(bottleneck, hidden)
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def reset(self, gen: torch.Generator, std: float, init: str = "mam") -> None:
        down, up = init_projections(self.down.weight.shape, self.up.weight.shape, gen, init, std)
        with torch.no_grad():
            self.down.weight.copy_(down)
            self.down.bias.zero_()
            self.up.weight.copy_(up)
            self.up.bias.zero_()

    def delta(self, h: torch.Tensor) -> torch.Tensor:
        """The adapter's change to ``h``, computed in ``h``'s dtype (the encoder's).

        With a bf16 encoder and fp32 adapter weights (training) the weights are cast to bf16 on the way in
        (differentiably: the gradients reach the fp32 master weights, which the optimizer updates) and the
        hidden state is not cast at all — casting the [batch, tokens, hidden] activations up and back at
        every site, as before, cost more than the adapter itself. In a sweep's live model the weights are
        already in the encoder's format and every cast is a no-op.
        """
        dt = h.dtype
        down, up = self.down, self.up
        z = F.linear(self.drop(h), down.weight.to(dt), down.bias.to(dt))
        out: torch.Tensor = F.linear(self.act(z), up.weight.to(dt), up.bias.to(dt))
        return out

    def hook(self, module: nn.Module, args: tuple[Any, ...], output: torch.Tensor) -> torch.Tensor:
        return output + self.delta(output)


class BlockBottleneck(Bottleneck):
    """AdapterHub ``SeqBnConfig`` placement: hooks the whole output sub-block ``LN(dropout(dense(x)) + r)``.

    AdapterHub (original_ln_before=True, residual_before_ln=True, original_ln_after=True) computes
    ``LN(d + f(LN(d + r)) + r)`` with ``d = dropout(dense(x))`` the sub-layer output and ``r`` the residual
    (the block's second positional input). The hook recomputes ``d`` from the block's input — one extra
    projection per site — which keeps it exact in training and evaluation without a second hook.
    """

    hooks_block = True

    def __init__(self, hidden: int, bottleneck: int, activation: str, dropout: float, norm_name: str) -> None:
        super().__init__(hidden, bottleneck, activation, dropout)
        self.norm_name = norm_name

    def hook(self, module: nn.Module, args: tuple[Any, ...], output: torch.Tensor) -> torch.Tensor:
        x, residual = args[0], args[1]
        dense, dropout = module.get_submodule("dense"), module.get_submodule("dropout")
        norm = module.get_submodule(self.norm_name)
        d: torch.Tensor = dropout(dense(x))
        out: torch.Tensor = norm(d + self.delta(norm(d + residual)) + residual)
        return out


def build_bottleneck(
    method: Method[Any], cfg: BottleneckConfig, hidden: int, num_layers: int, _intermediate: int | None = None
) -> AdapterBody:
    size = cfg.bottleneck_for(hidden)
    gen = seeded_generator(cfg.init_seed)

    def make(_layer: int, _site: str) -> Bottleneck:
        if cfg.original_ln_before:
            mod: Bottleneck = BlockBottleneck(hidden, size, cfg.activation, cfg.dropout, "LayerNorm")
        else:
            mod = Bottleneck(hidden, size, cfg.activation, cfg.dropout)
        mod.reset(gen, cfg.init_std, cfg.init or "bert")
        return mod

    return AdapterBody(num_layers, cfg.sites, make)


register_method(Method("houlsby", "bottleneck", HoulsbyConfig.BOTTLENECK_SITES,
                       "Houlsby et al. 2019: bottleneck adapters after attention and feed-forward", build_bottleneck,
                       HoulsbyConfig))
register_method(Method("pfeiffer", "bottleneck", PfeifferConfig.BOTTLENECK_SITES,
                       "Pfeiffer et al. 2021: one bottleneck adapter after the feed-forward block", build_bottleneck,
                       PfeifferConfig))
