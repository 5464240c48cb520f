"""Constraints on word swaps (TextAttack's pre-transformation and transformation constraints).

Two kinds (an :class:`~adaptermix.attacks.attack.Attack` takes one list and sorts them by interface, as
TextAttack's ``Attack`` does):

- a :class:`PreConstraint` (TextAttack's pre-transformation constraint) decides whether a word may be touched at all (stop words, words already
  modified) — checked before any candidate is generated or any query is spent;
- a :class:`CandidateConstraint` checks a batch of candidate texts for one position at once (part of
  speech, sentence similarity) and returns a boolean mask, plus similarity scores where it has them
  (the search uses them to pick among successful swaps, as TextAttack's greedy search does). One that
  needs a heavy model (a sentence encoder) is also an :class:`EncodingConstraint`: it says what to encode
  (:meth:`~EncodingConstraint.plan`) and decides from the embeddings (:meth:`~EncodingConstraint.verdict`),
  so that the attack encodes the texts of all examples in flight in one call.

Only the attacked column is ever modified: for sentence pairs the search works on ``text_pair`` and
keeps ``text`` as fixed context (TextAttack's ``InputColumnModification`` for NLI).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

import numpy as np

from adaptermix.attacks.pos import PosTagger, pos_compatible
from adaptermix.attacks.victim import Input
from adaptermix.attacks.words import TokenizedText


@dataclass
class AttackState:
    """The attack on one example: original and current attacked text, context, modified words, swaps."""

    original: TokenizedText
    current: TokenizedText
    context: str | None = None  # the premise of a pair task (never modified); None for single texts
    modified: set[int] = field(default_factory=set)

    def inputs(self, texts: Sequence[str]) -> list[Input]:
        """Victim inputs for attacked-column ``texts``: (premise, hypothesis) or (text, None)."""
        return [(self.context, t) if self.context is not None else (t, None) for t in texts]


@dataclass(frozen=True)
class ConstraintVerdict:
    """Outcome of a candidate constraint: which candidates pass, and similarity scores if any."""

    passed: np.ndarray
    similarity: np.ndarray | None = None


@runtime_checkable
class PreConstraint(Protocol):
    """May word ``index`` be modified at all (checked before any candidate is generated)?"""

    @property
    def name(self) -> str: ...

    def allows(self, state: AttackState, index: int) -> bool: ...


@runtime_checkable
class CandidateConstraint(Protocol):
    """Which candidate texts for position ``index`` pass (checked after the transformation)."""

    @property
    def name(self) -> str: ...

    def check(self, state: AttackState, index: int, candidates: Sequence[TokenizedText]) -> ConstraintVerdict: ...


class EncodingPlan(Protocol):
    """What an :class:`EncodingConstraint` needs encoded for ``n`` candidates (no texts: nothing to do)."""

    @property
    def n(self) -> int: ...

    @property
    def texts(self) -> list[str]: ...


@runtime_checkable
class EncodingConstraint(Protocol):
    """A candidate constraint that needs texts encoded: plan, encode (batched across examples), decide.

    ``embed_groups`` encodes several examples' texts in ONE call, each example with its own memo of
    embeddings; ``embed`` is the one-example form.
    """

    @property
    def name(self) -> str: ...

    def check(self, state: AttackState, index: int, candidates: Sequence[TokenizedText]) -> ConstraintVerdict: ...

    def plan(self, state: AttackState, index: int, candidates: Sequence[TokenizedText]) -> EncodingPlan: ...

    def verdict(self, plan: EncodingPlan, embeddings: np.ndarray | None) -> ConstraintVerdict: ...

    def embed(self, texts: list[str], memo: dict[str, np.ndarray] | None = None) -> np.ndarray: ...

    def embed_groups(self, groups: Sequence[tuple[list[str], dict[str, np.ndarray]]]) -> list[np.ndarray]: ...


Constraint = PreConstraint | CandidateConstraint


@dataclass(frozen=True)
class StopwordModification:
    """Stop words are never replaced (looked up lower-cased)."""

    stopwords: frozenset[str]
    name: str = "stopword"

    def allows(self, state: AttackState, index: int) -> bool:
        return state.original.words[index].lower() not in self.stopwords


@dataclass(frozen=True)
class RepeatModification:
    """A word is replaced at most once."""

    name: str = "repeat"

    def allows(self, state: AttackState, index: int) -> bool:
        return index not in state.modified


@dataclass
class PartOfSpeech:
    """The candidate word must share a part of speech with the word it replaces."""

    tagger: PosTagger
    allow_verb_noun_swap: bool = True
    name: str = "pos"

    def check(self, state: AttackState, index: int, candidates: Sequence[TokenizedText]) -> ConstraintVerdict:
        before = self.tagger.tags_at([state.current.words], index)[0]
        after = self.tagger.tags_at([c.words for c in candidates], index)
        return ConstraintVerdict(
            np.array([pos_compatible(before, t, self.allow_verb_noun_swap) for t in after], dtype=bool)
        )


def angular_similarity(cos: np.ndarray) -> np.ndarray:
    """``1 - arccos(cos) / pi``: TextAttack's "angular" metric for sentence encoders (in [0, 1])."""
    return 1.0 - np.arccos(np.clip(cos, -1.0, 1.0)) / np.pi


@dataclass
class SentenceSimilarity:
    """Sentence-encoder similarity of a window of words around the swap must reach ``threshold``.

    ``compare_against="original"`` compares with the unmodified text (Jin et al.'s Algorithm 1:
    Sim(X, X_adv)); ``"previous"`` with the text before this swap (what TextAttack's recipe and Jin's
    code do). ``skip_short_texts`` switches the constraint off for texts shorter than the window, as both
    of them do; by default we compare whole texts instead, which is stricter.
    """

    encode: Callable[[list[str]], np.ndarray]
    threshold: float = 0.840845057
    metric: Literal["angular", "cosine"] = "angular"
    window: int = 15
    compare_against: Literal["original", "previous"] = "original"
    skip_short_texts: bool = False
    batch: bool = True  # False: one encoder call per text (the benchmark's unbatched baseline)
    cache: bool = True  # memoise embeddings of window strings (cleared per example by reset())
    name: str = "similarity"
    _memo: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def reset(self) -> None:
        self._memo.clear()

    def embed(self, texts: list[str], memo: dict[str, np.ndarray] | None = None) -> np.ndarray:
        """Unit embeddings of ``texts``: cached ones reused, the rest encoded in one batch (or one by one).

        ``memo``: the example's memo of window embeddings (default: this constraint's own).
        """
        return self.embed_groups([(texts, self._memo if memo is None else memo)])[0]

    def embed_groups(self, groups: Sequence[tuple[list[str], dict[str, np.ndarray]]]) -> list[np.ndarray]:
        """:meth:`embed` for several examples at once, each ``(texts, memo)``: ONE encoder call for all.

        What each example gets is what :meth:`embed` would give it alone: its own memo decides what it
        reuses, and a text is encoded once however many examples ask for it.
        """
        if self.cache:
            todo = list(dict.fromkeys(t for texts, memo in groups for t in texts if t not in memo))
        else:
            todo = [t for texts, _ in groups for t in texts]
        if self.batch:
            fresh = [np.asarray(self.encode(todo))] if todo else []
        else:
            fresh = [np.asarray(self.encode([t])) for t in todo]
        rows = np.concatenate(fresh) if fresh else np.zeros((0, 1))
        rows = rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)
        if not self.cache:
            bounds = np.cumsum([0, *(len(texts) for texts, _ in groups)])
            return [rows[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
        computed = dict(zip(todo, rows, strict=True))
        out = []
        for texts, memo in groups:
            memo.update((t, computed[t]) for t in dict.fromkeys(texts) if t not in memo)
            out.append(np.stack([memo[t] for t in texts]) if texts else rows[:0])
        return out

    def scores(self, reference: str, texts: list[str]) -> np.ndarray:
        sims = self.verdict(SimilarityPlan(len(texts), [reference, *texts]), self.embed([reference, *texts])).similarity
        assert sims is not None  # a verdict on a non-empty plan always carries its similarities
        return sims

    def plan(self, state: AttackState, index: int, candidates: Sequence[TokenizedText]) -> SimilarityPlan:
        """What to encode for these candidates: the reference window first, then each candidate's window."""
        reference = state.original if self.compare_against == "original" else state.current
        if self.skip_short_texts and reference.num_words < self.window:
            return SimilarityPlan(len(candidates), [])
        windows = [c.window(index, self.window) for c in candidates]
        return SimilarityPlan(len(candidates), [reference.window(index, self.window), *windows])

    def verdict(self, plan: EncodingPlan, embeddings: np.ndarray | None) -> ConstraintVerdict:
        """The verdict from the plan's embeddings (every candidate passes when nothing was to encode)."""
        if not plan.texts or embeddings is None:
            return ConstraintVerdict(np.ones(plan.n, dtype=bool), np.ones(plan.n))
        cos = embeddings[1:] @ embeddings[0]
        sims = angular_similarity(cos) if self.metric == "angular" else cos
        return ConstraintVerdict(sims >= self.threshold, sims)

    def check(self, state: AttackState, index: int, candidates: Sequence[TokenizedText]) -> ConstraintVerdict:
        plan = self.plan(state, index, candidates)
        return self.verdict(plan, self.embed(plan.texts) if plan.texts else None)


@dataclass(frozen=True)
class SimilarityPlan:
    """The texts :class:`SentenceSimilarity` needs encoded for ``n`` candidates (empty: constraint off)."""

    n: int
    texts: list[str]


#: Deprecated name of :class:`ConstraintVerdict` ("verdict" of a report statement is
#: :class:`adaptermix.report.statements.Verdict`).
Verdict = ConstraintVerdict
