"""LoRA (Hu et al. 2022) on the attention query and value projections.

``W x <- W x + (alpha / r) * B A dropout(x)`` with ``A`` [r, in] drawn with a seeded generator
(Kaiming-uniform, as peft) and ``B`` [out, r] zero-initialised, so a fresh adapter is the identity.
Tensor names ``lora_A`` / ``lora_B`` match peft's, which keeps import/export a renaming.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from adaptermix.methods.base import AdapterBody, Method, SiteModule, register_method, seeded_generator
from adaptermix.methods.config import MethodConfig


class LoRA(SiteModule):
    """A low-rank additive update of one linear projection."""

    def __init__(self, in_features: int, out_features: int, rank: int, alpha: float, dropout: float) -> None:
        super().__init__()
        self.lora_A = nn.Parameter(torch.zeros(rank, in_features))
        self.lora_B = nn.Parameter(torch.zeros(out_features, rank))
        self.scale = alpha / rank
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def reset(self, gen: torch.Generator) -> None:
        bound = 1.0 / math.sqrt(self.lora_A.shape[1])  # kaiming_uniform_(a=sqrt(5)) on [r, in]
        with torch.no_grad():
            self.lora_A.copy_(torch.rand(self.lora_A.shape, generator=gen) * 2 * bound - bound)
            self.lora_B.zero_()

    def hook(self, module: nn.Module, args: tuple[Any, ...], output: torch.Tensor) -> torch.Tensor:
        # Computed in the encoder's dtype: fp32 master weights over a bf16 encoder are cast (differentiably)
        # to bf16, the activations are not cast at all (see Bottleneck.delta).
        dt = output.dtype
        x = self.drop(args[0]).to(dt)
        delta: torch.Tensor = (x @ self.lora_A.to(dt).T @ self.lora_B.to(dt).T) * self.scale
        return output + delta


def build_lora(method: Method, cfg: MethodConfig, hidden: int, num_layers: int) -> AdapterBody:
    gen = seeded_generator(cfg.init_seed)

    def make(_layer: int, _site: str) -> LoRA:
        # q and v of BERT-family encoders are hidden x hidden projections.
        mod = LoRA(hidden, hidden, cfg.rank, cfg.alpha, cfg.dropout)
        mod.reset(gen)
        return mod

    return AdapterBody(num_layers, method.sites, make)


register_method(Method("lora", "lora", ("query", "value"),
                       "Hu et al. 2022: low-rank updates of attention query and value", build_lora))
