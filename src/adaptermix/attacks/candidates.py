"""The valid perturbations of a text: a transformation filtered by constraints (TextAttack's
``Attack.get_transformations`` and ``Attack.filter_transformations``).

An :class:`~adaptermix.attacks.attack.Attack` builds one :class:`Candidates` from its transformation and
constraints and hands it to its search, which asks it which words it may touch (:meth:`Candidates.attackable`)
and which replacements of a word survive every constraint (:meth:`Candidates.steps`). Filtering is a
generator: an :class:`~adaptermix.attacks.constraints.EncodingConstraint` yields an :class:`EncodeRequest`
for its texts and receives their embeddings, so the attack can encode the texts of several examples in one
call (see :mod:`adaptermix.attacks.search`).
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass, field

import numpy as np

from adaptermix.attacks.constraints import AttackState, CandidateConstraint, EncodingConstraint, PreConstraint
from adaptermix.attacks.transformations import Transformation
from adaptermix.attacks.victim import Input


@dataclass
class VictimRequest:
    """Score these inputs (already counted against the example's budget); answer: probabilities ``[m, C]``."""

    inputs: list[Input]


@dataclass
class EncodeRequest:
    """Unit embeddings of ``texts`` for ``constraint``; answer: an array ``[len(texts), d]``.

    ``memo`` is the example's embedding memo (texts already encoded for this example).
    """

    constraint: EncodingConstraint
    texts: list[str]
    memo: dict[str, np.ndarray] = field(default_factory=dict)


Request = VictimRequest | EncodeRequest
Filtered = Generator[Request, np.ndarray, tuple[list[str], np.ndarray]]


class Candidates:
    """A transformation with its pre-transformation and candidate constraints."""

    def __init__(
        self,
        transformation: Transformation,
        pre_constraints: Sequence[PreConstraint],
        constraints: Sequence[CandidateConstraint],
    ) -> None:
        self.transformation = transformation
        self.pre_constraints = list(pre_constraints)
        self.constraints = list(constraints)
        # each constraint with itself again if it needs an encoder (decided once: a runtime protocol check
        # per candidate batch is slow)
        self._checks: list[tuple[CandidateConstraint, EncodingConstraint | None]] = [
            (c, c if isinstance(c, EncodingConstraint) else None) for c in self.constraints
        ]

    def attackable(self, state: AttackState) -> list[int]:
        """Word indices a search may try: pass every pre-constraint and have a candidate.

        Skipping words without candidates before a search scores them saves their queries and changes
        nothing else (such words can never be swapped).
        """
        return [
            i
            for i in range(state.current.num_words)
            if all(c.allows(state, i) for c in self.pre_constraints) and self.transformation(state.current, i)
        ]

    def steps(self, state: AttackState, index: int, memo: dict[str, np.ndarray]) -> Filtered:
        """The transformation's replacements of word ``index`` that pass every constraint (a generator)."""
        return self.filter_steps(state, index, self.transformation(state.current, index), memo)

    def filter_steps(
        self, state: AttackState, index: int, words: list[str], memo: dict[str, np.ndarray]
    ) -> Filtered:
        """``words`` (replacements at ``index``) surviving every constraint, each seeing only the previous
        survivors, and their similarity scores (1.0 where no constraint measured one)."""
        texts = state.current.replace_many(index, words)
        sims = np.ones(len(words))
        for constraint, encoding in self._checks:
            if not texts:
                break
            if encoding is not None:
                plan = encoding.plan(state, index, texts)
                emb = (yield EncodeRequest(encoding, plan.texts, memo)) if plan.texts else None
                verdict = encoding.verdict(plan, emb)
            else:
                verdict = constraint.check(state, index, texts)
            keep = np.flatnonzero(verdict.passed)
            if verdict.similarity is not None:
                sims = np.asarray(verdict.similarity, dtype=float)
            words, texts, sims = [words[k] for k in keep], [texts[k] for k in keep], sims[keep]
        return words, sims
