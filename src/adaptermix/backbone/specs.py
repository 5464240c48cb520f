"""Per-architecture encoder specs: which modules adapters attach to.

Instead of copying upstream ``forward`` methods or swapping module classes (both break with every
transformers release), adapters are attached with forward hooks on the modules an :class:`EncoderSpec`
names. Adding an architecture is one ``ENCODER_SPECS.register`` line with dotted module paths.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from adaptermix.core.registry import Registry


@dataclass(frozen=True)
class EncoderSpec:
    """Dotted paths (relative to the bare encoder model) of the modules adapters attach to.

    ``layers`` is the ModuleList of transformer blocks; the other paths are relative to one block.
    ``attn_out`` / ``ffn_out`` are the output projections of the attention and feed-forward sub-layers
    (bottleneck adapters act on their output, before dropout + residual + LayerNorm, the Houlsby
    placement); ``query`` / ``key`` / ``value`` are the attention projections and ``ffn_in`` the
    feed-forward input projection, which LoRA may adapt too (its ``target_modules``).
    """

    model_type: str
    layers: str
    attn_out: str
    ffn_out: str
    query: str
    value: str
    hidden_size_attr: str = "hidden_size"
    key: str | None = None
    ffn_in: str | None = None
    intermediate_size_attr: str = "intermediate_size"
    # Optional: the whole output sub-block (dense -> dropout -> LayerNorm(x + residual)) and its LayerNorm,
    # for AdapterHub's "LayerNorm before the adapter" placement (SeqBnConfig, original_ln_before=True).
    # The block's forward must take (hidden_states, residual) positionally, as BERT/RoBERTa's do.
    attn_block: str | None = None
    ffn_block: str | None = None
    block_norm: str = "LayerNorm"

    def blocks(self, encoder: nn.Module) -> nn.ModuleList:
        """The transformer blocks of ``encoder``."""
        blocks = encoder.get_submodule(self.layers)
        if not isinstance(blocks, nn.ModuleList):
            from adaptermix.core.errors import ConfigError

            raise ConfigError(f"{self.layers} of a {self.model_type!r} model is a {type(blocks).__name__}, not a ModuleList")
        return blocks

    def block_module(self, encoder: nn.Module, layer: int, site: str) -> nn.Module:
        """The output sub-block of ``site`` (attn or ffn) in block ``layer``, if the spec names one."""
        path = {"attn": self.attn_block, "ffn": self.ffn_block}.get(site)
        if path is None:
            from adaptermix.core.errors import ConfigError

            raise ConfigError(f"architecture {self.model_type!r} does not support original_ln_before adapters")
        return self.blocks(encoder)[layer].get_submodule(path)

    def site_path(self, site: str) -> str:
        """The dotted path (relative to a block) of ``site``: attn, ffn, query, key, value or ffn_in."""
        paths = {"attn": self.attn_out, "ffn": self.ffn_out, "query": self.query, "value": self.value,
                 "key": self.key, "ffn_in": self.ffn_in}
        path = paths.get(site)
        if path is None:
            from adaptermix.core.errors import ConfigError

            known = ", ".join(s for s, p in paths.items() if p is not None)
            raise ConfigError(f"architecture {self.model_type!r} has no site {site!r} (it has: {known})")
        return path

    def site_module(self, encoder: nn.Module, layer: int, site: str) -> nn.Module:
        """The module for ``site`` (attn, ffn, query, key, value, ffn_in) in block ``layer``."""
        return self.blocks(encoder)[layer].get_submodule(self.site_path(site))


ENCODER_SPECS: Registry[EncoderSpec] = Registry("architecture")

_BERT_LIKE = dict(
    layers="encoder.layer",
    attn_out="attention.output.dense",
    ffn_out="output.dense",
    query="attention.self.query",
    value="attention.self.value",
    key="attention.self.key",
    ffn_in="intermediate.dense",
    attn_block="attention.output",
    ffn_block="output",
)
ENCODER_SPECS.register("bert", EncoderSpec(model_type="bert", **_BERT_LIKE))
ENCODER_SPECS.register("roberta", EncoderSpec(model_type="roberta", **_BERT_LIKE))
ENCODER_SPECS.register("xlm-roberta", EncoderSpec(model_type="xlm-roberta", **_BERT_LIKE))
ENCODER_SPECS.register("electra", EncoderSpec(model_type="electra", **_BERT_LIKE))
ENCODER_SPECS.register(
    "distilbert",
    EncoderSpec(
        model_type="distilbert",
        layers="transformer.layer",
        attn_out="attention.out_lin",
        ffn_out="ffn.lin2",
        query="attention.q_lin",
        value="attention.v_lin",
        key="attention.k_lin",
        ffn_in="ffn.lin1",
        hidden_size_attr="dim",
        intermediate_size_attr="hidden_dim",
    ),
)
