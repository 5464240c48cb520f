"""Per-architecture encoder specs: which modules adapters attach to.

Instead of copying upstream ``forward`` methods or swapping module classes (both break with every
transformers release), adapters are attached with forward hooks on the modules an :class:`EncoderSpec`
names. Adding an architecture is one ``ENCODER_SPECS.register`` line with dotted module paths.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from adaptermix.registry import Registry


@dataclass(frozen=True)
class EncoderSpec:
    """Dotted paths (relative to the bare encoder model) of the modules adapters attach to.

    ``layers`` is the ModuleList of transformer blocks; the other paths are relative to one block.
    ``attn_out`` / ``ffn_out`` are the output projections of the attention and feed-forward sub-layers
    (bottleneck adapters act on their output, before dropout + residual + LayerNorm, the Houlsby
    placement); ``query`` / ``value`` are the attention projections LoRA adapts.
    """

    model_type: str
    layers: str
    attn_out: str
    ffn_out: str
    query: str
    value: str
    hidden_size_attr: str = "hidden_size"
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
            from adaptermix.errors import ConfigError

            raise ConfigError(f"{self.layers} of a {self.model_type!r} model is a {type(blocks).__name__}, not a ModuleList")
        return blocks

    def block_module(self, encoder: nn.Module, layer: int, site: str) -> nn.Module:
        """The output sub-block of ``site`` (attn or ffn) in block ``layer``, if the spec names one."""
        path = {"attn": self.attn_block, "ffn": self.ffn_block}.get(site)
        if path is None:
            from adaptermix.errors import ConfigError

            raise ConfigError(f"architecture {self.model_type!r} does not support original_ln_before adapters")
        return self.blocks(encoder)[layer].get_submodule(path)

    def site_module(self, encoder: nn.Module, layer: int, site: str) -> nn.Module:
        """The module for ``site`` (attn, ffn, query, value) in block ``layer``."""
        path = {"attn": self.attn_out, "ffn": self.ffn_out, "query": self.query, "value": self.value}[site]
        return self.blocks(encoder)[layer].get_submodule(path)


ENCODER_SPECS: Registry[EncoderSpec] = Registry("architecture")

_BERT_LIKE = dict(
    layers="encoder.layer",
    attn_out="attention.output.dense",
    ffn_out="output.dense",
    query="attention.self.query",
    value="attention.self.value",
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
        hidden_size_attr="dim",
    ),
)
