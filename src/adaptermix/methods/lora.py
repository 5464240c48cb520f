"""LoRA (Hu et al. 2022) on the linear modules its config's ``target_modules`` names (default: the attention
query and value projections, as Hu et al. and peft's BERT default).

``W x <- W x + (alpha / r) * B A dropout(x)`` with ``A`` [r, in] drawn with a seeded generator
(Kaiming-uniform, as peft) and ``B`` [out, r] zero-initialised, so a fresh adapter is the identity.
Tensor names ``lora_A`` / ``lora_B`` match peft's, which keeps import/export a renaming. The sites are
those of :data:`adaptermix.methods.config.LORA_MODULES`: ``query`` / ``key`` / ``value`` / ``attn`` (attention
output) are hidden x hidden, ``ffn_in`` hidden -> intermediate, ``ffn`` intermediate -> hidden. Every site's
``A`` is drawn from one generator seeded by ``init_seed``, per layer in site order (as before
``target_modules`` existed for the default query/value).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from adaptermix.core.errors import ConfigError
from adaptermix.methods.base import AdapterBody, Method, SiteModule, register_method, seeded_generator
from adaptermix.methods.config import LoRAConfig


class LoRA(SiteModule):
    """A low-rank additive update of one linear projection."""

    def __init__(self, in_features: int, out_features: int, rank: int, scale: float, dropout: float) -> None:
        super().__init__()
        self.lora_A = nn.Parameter(torch.zeros(rank, in_features))
        self.lora_B = nn.Parameter(torch.zeros(out_features, rank))
        self.scale = scale
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


def site_features(site: str, hidden: int, intermediate: int | None) -> tuple[int, int]:
    """(in, out) features of the linear module at ``site`` of an encoder of these widths."""
    if site in ("ffn_in", "ffn"):
        if intermediate is None:
            raise ConfigError(
                f"LoRA on {site!r} needs the encoder's feed-forward width (intermediate_size), which is unknown here"
            )
        return (hidden, intermediate) if site == "ffn_in" else (intermediate, hidden)
    return hidden, hidden


def build_lora(
    method: Method[LoRAConfig], cfg: LoRAConfig, hidden: int, num_layers: int, intermediate: int | None = None
) -> AdapterBody:
    gen = seeded_generator(cfg.init_seed)

    def make(_layer: int, site: str) -> LoRA:
        mod = LoRA(*site_features(site, hidden, intermediate), cfg.rank, cfg.scale, cfg.dropout)
        mod.reset(gen)
        return mod

    return AdapterBody(num_layers, cfg.sites, make)


register_method(Method("lora", "lora", LoRAConfig().sites,
                       "Hu et al. 2022: low-rank updates of linear modules (target_modules; default query, value)",
                       build_lora, LoRAConfig))
