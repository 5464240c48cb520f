"""Part of speech for TextFooler's POS-consistency constraint: a protocol and two providers.

TextFooler keeps a swap only if the new word plays the same part of speech as the old one. The original
tags both sentences with NLTK's perceptron tagger, whose data cannot be downloaded here. Providers:

``wordnet`` (no extra install)
    Context-free: a word's possible parts of speech are those of its WordNet synsets (WordNet's morphy
    lemmatises inflected forms, so "runs" is NOUN and VERB). A swap is allowed when the two sets share a
    tag, or when WordNet knows neither word. Weaker than a tagger in context — it accepts a swap whose
    POS matches *some* reading of the original word — but needs only Debian's WordNet packages
    (``wordnet-base``, ``wordnet-sense-index``: the system-package list).
``wordnet-frequent`` (default, no extra install)
    The same, keeping only the parts of speech with >= 10% of the word's sense-tagged occurrences
    (WordNet's SemCor counts): rare readings such as the noun "takes" no longer let "takes" -> "good".
``spacy``
    Context-aware: spaCy's tagger on a window of 9 words around the swap (the original's window), if the
    ``spacy`` package and an English pipeline are installed (see ``docs/textfooler.md``).

Both return, for a batch of word sequences and one position, the set of coarse universal tags (NOUN,
VERB, ADJ, ADV, ...) the word at that position may have; :func:`pos_compatible` compares two such sets.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from adaptermix.core.errors import ResourceError
from adaptermix.core.registry import Registry

# WordNet's synset POS letters ('s' = satellite adjective) -> universal tags.
_WORDNET_TAGS = {"n": "NOUN", "v": "VERB", "a": "ADJ", "s": "ADJ", "r": "ADV"}
# spaCy's UPOS -> the coarse tags TextFooler compares (NLTK's universal tagset names).
_SPACY_TAGS = {"PROPN": "NOUN", "AUX": "VERB", "CCONJ": "CONJ", "SCONJ": "CONJ", "PART": "PRT", "PUNCT": "."}

Tags = frozenset[str]


class PosTagger(Protocol):
    """Possible coarse POS tags of the word at ``index`` in each of ``sentences`` (one batch)."""

    name: str

    def tags_at(self, sentences: Sequence[Sequence[str]], index: int) -> list[Tags]: ...


def pos_compatible(original: Tags, candidate: Tags, allow_verb_noun_swap: bool = True) -> bool:
    """True when two words may fill the same slot: a shared tag, or both unknown.

    ``allow_verb_noun_swap`` treats NOUN and VERB as interchangeable, as TextFooler's ``pos_filter`` and
    TextAttack's ``PartOfSpeech(allow_verb_noun_swap=True)`` do.
    """
    if not original and not candidate:
        return True
    if allow_verb_noun_swap:
        original, candidate = _widen(original), _widen(candidate)
    return bool(original & candidate)


def _widen(tags: Tags) -> Tags:
    return tags | {"NOUN", "VERB"} if tags & {"NOUN", "VERB"} else tags


class WordNetPos:
    """Context-free POS sets from WordNet synsets (needs only the WordNet database).

    ``min_share = 0``: every POS of the word's synsets (the plain fallback). ``min_share > 0``: only the
    parts of speech that carry at least that share of the word's sense-tagged occurrences in SemCor
    (WordNet's ``cntlist`` counts), so rare readings stop licensing swaps: "takes" is a VERB only (its
    noun sense never occurs), "good" an ADJ only (noun and adverb senses: 9% and 4%). A word whose senses
    were never counted keeps all its parts of speech.
    """

    def __init__(
        self, synset_pos: Callable[[str], Sequence[tuple[str, int]]], min_share: float = 0.0
    ) -> None:
        """``synset_pos(word)`` gives (POS letter, occurrence count) per synset (see :meth:`from_reader`)."""
        self._synset_pos = synset_pos
        self.min_share = min_share
        self.name = "wordnet" if min_share == 0 else "wordnet-frequent"
        self._cache: dict[str, Tags] = {}

    @classmethod
    def from_reader(cls, reader: Any, min_share: float = 0.0) -> WordNetPos:
        """From an NLTK ``WordNetCorpusReader`` (see :func:`adaptermix.attacks.resources.wordnet_reader`)."""

        def synset_pos(word: str) -> list[tuple[str, int]]:
            out = []
            for synset in reader.synsets(word):
                pos = synset.pos()
                base = {word, reader.morphy(word, "a" if pos == "s" else pos) or word}
                out.append(
                    (pos, sum(lemma.count() for lemma in synset.lemmas() if lemma.name().lower() in base))
                )
            return out

        return cls(synset_pos, min_share)

    def word_tags(self, word: str) -> Tags:
        key = word.lower()
        if key not in self._cache:
            counts: dict[str, int] = {}
            for letter, n in self._synset_pos(key):
                if letter in _WORDNET_TAGS:
                    tag = _WORDNET_TAGS[letter]
                    counts[tag] = counts.get(tag, 0) + n
            total = sum(counts.values())
            if self.min_share > 0 and total > 0:
                counts = {t: n for t, n in counts.items() if n >= self.min_share * total}
            self._cache[key] = frozenset(counts)
        return self._cache[key]

    def tags_at(self, sentences: Sequence[Sequence[str]], index: int) -> list[Tags]:
        return [self.word_tags(words[index]) for words in sentences]


class SpacyPos:
    """spaCy's tagger on a window of words around the position (context-aware)."""

    name = "spacy"

    def __init__(self, model: str = "en_core_web_sm", window: int = 4) -> None:
        try:
            spacy = importlib.import_module("spacy")
        except ImportError:
            raise ResourceError(
                "spaCy is not installed: pip install spacy (and an English pipeline)"
            ) from None
        try:
            self.nlp = spacy.load(model, exclude=["parser", "ner", "lemmatizer", "senter"])
        except OSError:
            raise ResourceError(
                f"spaCy pipeline {model!r} is not installed: python -m spacy download en_core_web_sm"
            ) from None
        self.window = window
        from spacy.tokens import Doc

        self._doc = Doc

    def tags_at(self, sentences: Sequence[Sequence[str]], index: int) -> list[Tags]:
        lo = max(0, index - self.window)
        docs = [
            self._doc(self.nlp.vocab, words=list(words[lo : index + self.window + 1])) for words in sentences
        ]
        return [
            frozenset({_SPACY_TAGS.get(d[index - lo].pos_, d[index - lo].pos_)}) for d in self.nlp.pipe(docs)
        ]


class NoPos:
    """No POS constraint: every swap is compatible (for ablations)."""

    name = "none"

    def tags_at(self, sentences: Sequence[Sequence[str]], index: int) -> list[Tags]:
        return [frozenset() for _ in sentences]


def spacy_available() -> bool:
    """True when the ``spacy`` package can be imported."""
    return importlib.util.find_spec("spacy") is not None


# POS providers by name; each factory takes a resource context (see textfooler.build_resources).
POS_TAGGERS: Registry[Callable[..., PosTagger]] = Registry("POS tagger")
POS_TAGGERS.register("wordnet", lambda ctx: WordNetPos.from_reader(ctx.wordnet()))
POS_TAGGERS.register("wordnet-frequent", lambda ctx: WordNetPos.from_reader(ctx.wordnet(), min_share=0.1))
POS_TAGGERS.register("spacy", lambda ctx: SpacyPos(ctx.config.spacy_model))
POS_TAGGERS.register("none", lambda ctx: NoPos())
