"""Transformations: the candidate replacements for one word (TextAttack's ``WordSwap`` family).

A :class:`SynonymSource` maps a lower-case word to candidate words, best first. :class:`WordSwap` turns
it into replacements for a word of a text: single words only (so word positions never shift), never the
word itself, with the original's capitalisation restored.

Sources: ``counter-fitted`` (TextFooler's: the N nearest neighbours in the counter-fitted embedding space
with cosine >= a threshold), ``wordnet`` (lemmas of the word's WordNet synsets, TextAttack's
``WordSwapWordNet``), and :class:`StaticSynonyms` (a hand-built table, for tests and ablations).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from adaptermix.attacks.embeddings import NeighbourTable
from adaptermix.attacks.words import TokenizedText, is_single_word, recover_case
from adaptermix.core.registry import Registry


class Transformation(Protocol):
    """The words that may replace word ``index`` of ``text`` (TextAttack's ``Transformation``, word level).

    Replacements are single words, so word positions never shift; an empty list means the word cannot be
    changed (the search then never spends a query on it).
    """

    def __call__(self, text: TokenizedText, index: int) -> list[str]: ...


class SynonymSource(Protocol):
    """Candidate replacements of a lower-case word, best first."""

    def candidates(self, word: str) -> list[str]: ...


class EmbeddingSynonyms:
    """The ``max_candidates`` nearest neighbours in a word-embedding space with cosine >= the table's."""

    def __init__(self, table: NeighbourTable, max_candidates: int = 50) -> None:
        self.table = table
        self.max_candidates = max_candidates

    def candidates(self, word: str) -> list[str]:
        return [w for w, _ in self.table.lookup(word)[: self.max_candidates]]


class WordNetSynonyms:
    """Lemma names of the word's WordNet synsets, in WordNet's sense order (single words only)."""

    def __init__(self, reader: Any, max_candidates: int = 50) -> None:
        self.reader = reader
        self.max_candidates = max_candidates
        self._cache: dict[str, list[str]] = {}

    def candidates(self, word: str) -> list[str]:
        if word not in self._cache:
            names = (name.lower() for s in self.reader.synsets(word) for name in s.lemma_names())
            found = [n for n in dict.fromkeys(names) if n != word and "_" not in n]
            self._cache[word] = found[: self.max_candidates]
        return self._cache[word]


class StaticSynonyms:
    """A fixed word -> candidates table (keys lower-case)."""

    def __init__(self, table: Mapping[str, Sequence[str]]) -> None:
        self.table = {k.lower(): list(v) for k, v in table.items()}

    def candidates(self, word: str) -> list[str]:
        return list(self.table.get(word, []))


class WordSwap:
    """Replace one word of a text by each candidate of a :class:`SynonymSource`."""

    def __init__(self, source: SynonymSource) -> None:
        self.source = source

    def replacements(self, word: str) -> list[str]:
        """Candidate words for ``word``: single words, not ``word`` itself, in ``word``'s case."""
        low = word.lower()
        out = (
            recover_case(c, word)
            for c in self.source.candidates(low)
            if c.lower() != low and is_single_word(c)
        )
        return list(dict.fromkeys(out))

    def __call__(self, text: TokenizedText, index: int) -> list[str]:
        """The :class:`Transformation` interface: replacements of the word at ``index``."""
        return self.replacements(text.words[index])


# Synonym sources by name; each factory takes (resource context, attack config).
SYNONYM_SOURCES: Registry[Callable[..., SynonymSource]] = Registry("synonym source")
SYNONYM_SOURCES.register(
    "counter-fitted",
    lambda ctx, cfg: EmbeddingSynonyms(
        ctx.neighbours(cfg.max_candidates, cfg.min_cos_sim), cfg.max_candidates
    ),
)
SYNONYM_SOURCES.register("wordnet", lambda ctx, cfg: WordNetSynonyms(ctx.wordnet(), cfg.max_candidates))
