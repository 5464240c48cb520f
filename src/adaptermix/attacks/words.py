"""Words of a text for word-level attacks: a tokenizer that keeps punctuation apart and rebuilds exactly.

The data pack's texts are mostly pre-tokenized ("it 's a good film ."), so the tokenizer only has to
separate words from punctuation. A :class:`TokenizedText` keeps the separators between tokens, so joining
the tokens with their separators gives back the input *exactly*: an unattacked text reaches the victim
byte for byte as in clean evaluation (and hits the same cache entries), and a swap changes one word only.

"Words" are the tokens holding a letter or digit; punctuation tokens are kept but never counted or
attacked (as in TextAttack, whose ``AttackedText.words`` drops punctuation).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

# A word: letters/digits joined by inner apostrophes or hyphens ("don't", "n't", "movie-making"); a clitic
# such as "'s"; otherwise a single punctuation character.
TOKEN_RE = re.compile(r"\w+(?:['’\-]\w+)*|['’]\w+|[^\w\s]", re.UNICODE)
_WORD_RE = re.compile(r"\w+(?:['’\-]\w+)*|['’]\w+", re.UNICODE)


def is_word(token: str) -> bool:
    """True for a token holding a letter or digit (punctuation tokens are not words)."""
    return any(ch.isalnum() for ch in token)


def is_single_word(text: str) -> bool:
    """True when ``text`` tokenizes to exactly one word (a valid replacement for one word)."""
    return _WORD_RE.fullmatch(text) is not None and is_word(text)


def recover_case(candidate: str, original: str) -> str:
    """Give ``candidate`` the capitalisation pattern of ``original`` (ALL CAPS, Title or lower)."""
    if len(original) > 1 and original.isupper():
        return candidate.upper()
    if original[:1].isupper():
        return candidate[:1].upper() + candidate[1:]
    return candidate


def window_bounds(index: int, n_words: int, size: int) -> tuple[int, int]:
    """Word range ``[lo, hi)`` of ``size`` words around ``index``, shifted to stay inside the text.

    Same windows as Jin et al.'s ``attack_classification.py`` (half = (size - 1) // 2 on each side, moved
    inward at the ends); the whole text when it is shorter than the window.
    """
    half = (size - 1) // 2
    lo = max(0, index - half)
    hi = min(n_words, lo + size)
    lo = max(0, hi - size)
    return lo, hi


@dataclass(frozen=True)
class TokenizedText:
    """Tokens of a text with the separators around them: ``seps[0] tok[0] seps[1] ... tok[-1] seps[-1]``."""

    tokens: tuple[str, ...]
    seps: tuple[str, ...]

    @classmethod
    def from_text(cls, text: str) -> TokenizedText:
        tokens: list[str] = []
        seps: list[str] = []
        end = 0
        for m in TOKEN_RE.finditer(text):
            seps.append(text[end : m.start()])
            tokens.append(m.group())
            end = m.end()
        seps.append(text[end:])
        return cls(tuple(tokens), tuple(seps))

    @cached_property
    def text(self) -> str:
        parts = [self.seps[0]]
        for tok, sep in zip(self.tokens, self.seps[1:], strict=True):
            parts += [tok, sep]
        return "".join(parts)

    @cached_property
    def word_tokens(self) -> tuple[int, ...]:
        """Token index of each word."""
        return tuple(i for i, tok in enumerate(self.tokens) if is_word(tok))

    @property
    def words(self) -> tuple[str, ...]:
        return tuple(self.tokens[i] for i in self.word_tokens)

    @property
    def num_words(self) -> int:
        return len(self.word_tokens)

    def replace(self, index: int, word: str) -> TokenizedText:
        """This text with word ``index`` replaced by ``word`` (one word: see :func:`is_single_word`)."""
        t = self.word_tokens[index]
        return TokenizedText(self.tokens[:t] + (word,) + self.tokens[t + 1 :], self.seps)

    def replace_many(self, index: int, words: Sequence[str]) -> list[TokenizedText]:
        """One text per replacement of word ``index``."""
        return [self.replace(index, w) for w in words]

    def delete(self, index: int) -> str:
        """The text without word ``index`` (and one of the two separators around it)."""
        t = self.word_tokens[index]
        before, after = self.seps[t], self.seps[t + 1]
        joined = after if len(after) >= len(before) else before
        if t == 0:
            joined = before  # keep leading whitespace as it was, drop the gap after the word
        elif t == len(self.tokens) - 1:
            joined = after
        seps = self.seps[:t] + (joined,) + self.seps[t + 2 :]
        return TokenizedText(self.tokens[:t] + self.tokens[t + 1 :], seps).text

    def window(self, index: int, size: int) -> str:
        """The substring spanning the ``size`` words around word ``index`` (see :func:`window_bounds`)."""
        lo, hi = window_bounds(index, self.num_words, size)
        first, last = self.word_tokens[lo], self.word_tokens[hi - 1]
        parts = [self.tokens[first]]
        for t in range(first + 1, last + 1):
            parts += [self.seps[t], self.tokens[t]]
        return "".join(parts)
