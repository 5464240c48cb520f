"""Tiny random-init encoders and tokenizers built in-process (no download), for fast tests.

Re-exported from :mod:`adaptermix.testing.tiny` (where ``bench/soak.py`` imports them from)."""

from __future__ import annotations

from adaptermix.testing.tiny import ARCHS, WORDS, _build, tiny_encoder, tiny_tokenizer

__all__ = ["ARCHS", "WORDS", "_build", "tiny_encoder", "tiny_tokenizer"]
