"""Search: greedy word swaps in order of word importance by deletion (TextAttack ``GreedyWordSwapWIR``).

1. Query the clean input; a misclassified example is skipped.
2. Word importance: delete each attackable word (one that passes the pre-constraints and has at least
   one candidate) and measure the drop in the gold-class probability — all deletions of one example in
   ONE victim batch.
3. In decreasing importance: generate the candidates of the word, keep those passing every candidate
   constraint (POS, then sentence similarity; each sees only the previous survivors), score the
   survivors in ONE victim batch; if some flip the prediction, take the most similar one and stop;
   otherwise keep the candidate that lowers p(gold) most, if it lowers it at all.

The search is written as a generator (:meth:`GreedyWordSwapWIR.steps`) that *yields* what it needs from
the heavy models — a :class:`VictimRequest` (inputs to score, already cut to the query budget) or an
:class:`EncodeRequest` (texts for the sentence encoder) — and receives the answer back. :meth:`run` answers
one example's requests directly; :class:`adaptermix.attacks.textfooler.TextFoolerJin2019` advances several
examples in lock-step and answers all their pending requests with one victim call and one encoder call.
Each example's decisions depend only on its own answers, so both give the same result.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np

from adaptermix.attacks.constraints import AttackState, CandidateConstraint, PreConstraint, SentenceSimilarity
from adaptermix.attacks.goal import UntargetedClassification
from adaptermix.attacks.results import Status, Swap
from adaptermix.attacks.transformations import WordSwap
from adaptermix.attacks.victim import Input


@dataclass
class VictimRequest:
    """Score these inputs (already counted against the example's budget); answer: probabilities ``[m, C]``."""

    inputs: list[Input]


@dataclass
class EncodeRequest:
    """Unit sentence embeddings of ``texts`` for ``constraint``; answer: an array ``[len(texts), d]``.

    ``memo`` is the example's embedding memo (window strings already encoded for this example).
    """

    constraint: SentenceSimilarity
    texts: list[str]
    memo: dict[str, np.ndarray] = field(default_factory=dict)


Request = VictimRequest | EncodeRequest
T = TypeVar("T")
Steps = Generator[Request, np.ndarray, "SearchResult"]


@dataclass
class SearchResult:
    """Where the search ended: final text state, probabilities of clean and final text, status."""

    state: AttackState
    swaps: list[Swap]
    clean_probs: np.ndarray
    final_probs: np.ndarray
    status: Status


class GreedyWordSwapWIR:
    """Greedy search over word positions ranked by deletion importance."""

    def __init__(
        self,
        transformation: WordSwap,
        pre_constraints: Sequence[PreConstraint],
        constraints: Sequence[CandidateConstraint],
    ) -> None:
        self.transformation = transformation
        self.pre_constraints = list(pre_constraints)
        self.constraints = list(constraints)

    def attackable(self, state: AttackState) -> list[int]:
        """Word indices the search may try: pass every pre-constraint and have a candidate.

        Skipping words without candidates before the importance step saves their deletion queries and
        changes nothing else (such words can never be swapped).
        """
        return [
            i
            for i in range(state.current.num_words)
            if all(c.allows(state, i) for c in self.pre_constraints)
            and self.transformation.replacements(state.current.words[i])
        ]

    def importance_order(
        self, state: AttackState, goal: UntargetedClassification, clean: np.ndarray
    ) -> list[int]:
        """Attackable positions, most important first (drop of p(gold) when the word is deleted)."""
        return drive(self._importance_steps(state, goal, clean), goal)

    def _importance_steps(
        self, state: AttackState, goal: UntargetedClassification, clean: np.ndarray
    ) -> Generator[Request, np.ndarray, list[int]]:
        positions = self.attackable(state)
        probs = yield from query_steps(goal, state.inputs([state.current.delete(i) for i in positions]))
        drop = clean[goal.label] - probs[:, goal.label]
        order = np.argsort(-drop, kind="stable")
        return [positions[k] for k in order]

    def filter(self, state: AttackState, index: int, words: list[str]) -> tuple[list[str], np.ndarray]:
        """Candidates surviving every constraint, and their similarity scores (1.0 where unmeasured)."""
        return drive(self._filter_steps(state, index, words, {}), None)

    def _filter_steps(
        self, state: AttackState, index: int, words: list[str], memo: dict[str, np.ndarray]
    ) -> Generator[Request, np.ndarray, tuple[list[str], np.ndarray]]:
        texts = state.current.replace_many(index, words)
        sims = np.ones(len(words))
        for constraint in self.constraints:
            if not texts:
                break
            if isinstance(constraint, SentenceSimilarity):
                plan = constraint.plan(state, index, texts)
                emb = (yield EncodeRequest(constraint, plan.texts, memo)) if plan.texts else None
                verdict = constraint.verdict(plan, emb)
            else:
                verdict = constraint.check(state, index, texts)
            keep = np.flatnonzero(verdict.passed)
            if verdict.similarity is not None:
                sims = np.asarray(verdict.similarity, dtype=float)
            words, texts, sims = [words[k] for k in keep], [texts[k] for k in keep], sims[keep]
        return words, sims

    def run(self, state: AttackState, goal: UntargetedClassification) -> SearchResult:
        """The search on one example, its requests answered one at a time (see :func:`drive`)."""
        return drive(self.steps(state, goal), goal)

    def steps(self, state: AttackState, goal: UntargetedClassification, memo: dict | None = None) -> Steps:
        """The search as a generator of requests (see the module docstring); returns the result.

        ``memo``: the example's sentence-embedding memo (a fresh one by default).
        """
        memo = {} if memo is None else memo
        clean = (yield from query_steps(goal, state.inputs([state.current.text])))[0]
        swaps: list[Swap] = []
        if goal.succeeded(clean[None])[0]:
            return SearchResult(state, swaps, clean, clean, "skipped")
        current = clean
        order = yield from self._importance_steps(state, goal, clean)
        for index in order:
            if goal.exhausted:
                break
            words, sims = yield from self._filter_steps(
                state, index, self.transformation(state.current, index), memo
            )
            if not words:
                continue
            probs = yield from query_steps(goal, state.inputs([state.current.replace(index, w).text for w in words]))
            if len(probs) == 0:
                break
            words, sims = words[: len(probs)], sims[: len(probs)]
            won = np.flatnonzero(goal.succeeded(probs))
            if len(won):
                best = int(won[np.argmax(sims[won])])  # the most similar of the successful swaps
            else:
                best = int(np.argmax(goal.score(probs)))
                if goal.score(probs)[best] <= goal.score(current[None])[0]:
                    continue
            swaps.append(Swap(index, state.current.words[index], words[best]))
            state.current = state.current.replace(index, words[best])
            state.modified.add(index)
            current = probs[best]
            if len(won):
                return SearchResult(state, swaps, clean, current, "success")
        return SearchResult(state, swaps, clean, current, "failed")


def query_steps(goal: UntargetedClassification, inputs: list[Input]) -> Generator[Request, np.ndarray, np.ndarray]:
    """Ask for the scores of ``inputs`` within ``goal``'s budget (no request when nothing is left)."""
    admitted = goal.admit(inputs)
    if not admitted:
        return np.zeros((0, goal.victim.num_labels))
    return (yield VictimRequest(admitted))


def drive(gen: Generator[Request, np.ndarray, T], goal: UntargetedClassification | None) -> T:
    """Run one example's generator to its end, answering each request on its own (the per-example path)."""
    try:
        request = next(gen)  # a generator starts with no answer (what ``send(None)`` does)
        while True:
            if isinstance(request, VictimRequest):
                assert goal is not None
                answer = goal.score_inputs(request.inputs)
            else:
                answer = request.constraint.embed(request.texts, request.memo)
            request = gen.send(answer)
    except StopIteration as stop:
        return stop.value
