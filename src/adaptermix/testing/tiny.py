"""Tiny random-init encoders and tokenizers built in-process (no download), for fast tests and benchmarks."""

from __future__ import annotations

import functools
from pathlib import Path

import torch
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import (
    BertConfig,
    BertModel,
    DistilBertConfig,
    DistilBertModel,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    PreTrainedTokenizerFast,
    RobertaConfig,
    RobertaModel,
)

from adaptermix.backbone.loading import Encoder, wrap_encoder

WORDS = (
    "the a an is was good bad great awful movie film plot actor fun boring not very really "
    "cat dog sat on mat happy sad love hate this that it and or but with of to in fine nice terrible "
    "excellent poor best worst story acting music scene time people day way man woman"
).split()


def tiny_tokenizer() -> PreTrainedTokenizerFast:
    """A word-level tokenizer with BERT-style special tokens over a small vocabulary."""
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab = {w: i for i, w in enumerate(specials + WORDS)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="[PAD]",
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )


def _build(arch: str) -> torch.nn.Module:
    torch.manual_seed(0)
    vocab = 5 + len(WORDS)
    if arch == "bert":
        return BertModel(
            BertConfig(
                vocab_size=vocab,
                hidden_size=32,
                num_hidden_layers=2,
                num_attention_heads=2,
                intermediate_size=37,
                max_position_embeddings=64,
            ),
            add_pooling_layer=False,
        )
    if arch == "roberta":
        return RobertaModel(
            RobertaConfig(
                vocab_size=vocab,
                hidden_size=32,
                num_hidden_layers=2,
                num_attention_heads=2,
                intermediate_size=37,
                max_position_embeddings=70,
                pad_token_id=0,
            ),
            add_pooling_layer=False,
        )
    if arch == "distilbert":
        return DistilBertModel(
            DistilBertConfig(
                vocab_size=vocab, dim=32, n_layers=2, n_heads=2, hidden_dim=37, max_position_embeddings=64
            )
        )
    raise ValueError(arch)


ARCHS = ("bert", "roberta", "distilbert")


@functools.cache
def tiny_encoder(arch: str = "bert") -> Encoder:
    """A frozen tiny random-init encoder of ``arch`` (cached per process; never mutate its weights)."""
    tok = tiny_tokenizer()
    if arch == "distilbert":
        tok.model_input_names = ["input_ids", "attention_mask"]
    return wrap_encoder(f"tiny-{arch}", _build(arch), tok)


def save_encoder(encoder: Encoder, path: Path) -> Path:
    """Save a (tiny) transformers encoder and its tokenizer to ``path`` in the Hugging Face layout."""
    model, tokenizer = encoder.model, encoder.tokenizer
    if not isinstance(model, PreTrainedModel) or not isinstance(tokenizer, PreTrainedTokenizerBase):
        raise TypeError(f"{encoder.name}: only a transformers model and tokenizer can be saved")
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def save_tiny_model(path: Path, arch: str = "bert") -> Path:
    """Save a tiny random-init encoder and its tokenizer to ``path`` (for code that loads by path)."""
    return save_encoder(tiny_encoder(arch), path)
