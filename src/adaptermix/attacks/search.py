"""Search methods: how an attack explores the valid perturbations (TextAttack's ``SearchMethod``).

A search is written as a generator (:meth:`SearchMethod.steps`) that *yields* what it needs from the heavy
models — a :class:`VictimRequest` (inputs to score, already cut to the query budget) or an
:class:`EncodeRequest` (texts for a sentence encoder) — and receives the answer back. :func:`drive`
answers one example's requests directly; :class:`adaptermix.attacks.attack.Attack` advances several
examples in lock-step and answers all their pending requests with one victim call and one encoder call.
Each example's decisions depend only on its own answers, so both give the same result. A search gets the
attack's goal (one per example) and its :class:`~adaptermix.attacks.candidates.Candidates` (the
transformation with the constraints), as TextAttack's ``Attack`` hands its search ``get_transformations``.

:class:`GreedyWordSwapWIR` (TextFooler's search; TextAttack ``GreedyWordSwapWIR`` with
``wir_method="delete"``):

1. Query the clean input; a misclassified example is skipped.
2. Word importance: delete each attackable word (one that passes the pre-constraints and has at least
   one candidate) and measure the drop in the gold-class probability — all deletions of one example in
   ONE victim batch.
3. In decreasing importance: generate the candidates of the word, keep those passing every candidate
   constraint (POS, then sentence similarity; each sees only the previous survivors), score the
   survivors in ONE victim batch; if some flip the prediction, take the most similar one and stop;
   otherwise keep the candidate that lowers p(gold) most, if it lowers it at all.

:class:`GreedySearch` (TextAttack ``GreedySearch``, i.e. ``BeamSearch`` with beam width 1): every round,
the valid replacements at every attackable position are scored together in ONE victim batch and the best
one is kept, until the prediction flips, no candidate is left, or the budget runs out.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Protocol, TypeVar

import numpy as np

from adaptermix.attacks.candidates import Candidates, EncodeRequest, Request, VictimRequest
from adaptermix.attacks.constraints import AttackState
from adaptermix.attacks.goal import GoalFunction
from adaptermix.attacks.results import Status, Swap
from adaptermix.attacks.victim import Input

__all__ = [
    "EncodeRequest",
    "GreedySearch",
    "GreedyWordSwapWIR",
    "Request",
    "SearchMethod",
    "SearchResult",
    "Steps",
    "VictimRequest",
    "drive",
    "query_steps",
]

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


class SearchMethod(Protocol):
    """A search over the valid perturbations of one example, as a generator of requests."""

    @property
    def name(self) -> str: ...

    def steps(
        self, state: AttackState, goal: GoalFunction, candidates: Candidates, memo: dict[str, np.ndarray]
    ) -> Steps:
        """Search from ``state`` (its ``current`` text is modified in place); return the result.

        ``memo``: the example's embedding memo, passed on to :meth:`Candidates.steps`.
        """
        ...


class GreedyWordSwapWIR:
    """Greedy search over word positions ranked by deletion importance."""

    name = "greedy-wir"

    def importance_order(
        self, state: AttackState, goal: GoalFunction, candidates: Candidates, clean: np.ndarray
    ) -> list[int]:
        """Attackable positions, most important first (drop of p(gold) from ``clean`` when the word is
        deleted)."""
        return drive(self._importance_steps(state, goal, candidates, clean), goal)

    def _importance_steps(
        self, state: AttackState, goal: GoalFunction, candidates: Candidates, clean: np.ndarray
    ) -> Generator[Request, np.ndarray, list[int]]:
        positions = candidates.attackable(state)
        probs = yield from query_steps(goal, state.inputs([state.current.delete(i) for i in positions]))
        drop = clean[goal.label] - probs[:, goal.label]
        order = np.argsort(-drop, kind="stable")
        return [positions[k] for k in order]

    def run(self, state: AttackState, goal: GoalFunction, candidates: Candidates) -> SearchResult:
        """The search on one example, its requests answered one at a time (see :func:`drive`)."""
        return run_alone(self, state, goal, candidates)

    def steps(
        self, state: AttackState, goal: GoalFunction, candidates: Candidates, memo: dict[str, np.ndarray]
    ) -> Steps:
        clean, skipped = yield from clean_steps(state, goal)
        if skipped is not None:
            return skipped
        swaps: list[Swap] = []
        current = clean
        order = yield from self._importance_steps(state, goal, candidates, clean)
        for index in order:
            if goal.exhausted:
                break
            words, sims = yield from candidates.steps(state, index, memo)
            if not words:
                continue
            texts = [state.current.replace(index, w).text for w in words]
            probs = yield from query_steps(goal, state.inputs(texts))
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


class GreedySearch:
    """Best single swap over all positions per round (TextAttack's ``GreedySearch`` = beam width 1).

    As in TextAttack, the best candidate is kept even when it does not lower p(gold) (the pre-constraint
    that a word is replaced at most once bounds the rounds); among successful swaps the most similar one is
    taken (TextAttack takes the highest score; with two classes every successful swap outscores the rest,
    and similarity is the tie-break our greedy word-swap search uses too).
    """

    name = "greedy"

    def run(self, state: AttackState, goal: GoalFunction, candidates: Candidates) -> SearchResult:
        """The search on one example, its requests answered one at a time (see :func:`drive`)."""
        return run_alone(self, state, goal, candidates)

    def steps(
        self, state: AttackState, goal: GoalFunction, candidates: Candidates, memo: dict[str, np.ndarray]
    ) -> Steps:
        clean, skipped = yield from clean_steps(state, goal)
        if skipped is not None:
            return skipped
        swaps: list[Swap] = []
        current = clean
        while not goal.exhausted:
            options: list[tuple[int, str, float]] = []
            for index in candidates.attackable(state):
                words, sims = yield from candidates.steps(state, index, memo)
                options += [(index, w, float(s)) for w, s in zip(words, sims, strict=True)]
            if not options:
                break
            texts = [state.current.replace(i, w).text for i, w, _ in options]
            probs = yield from query_steps(goal, state.inputs(texts))
            if len(probs) == 0:
                break
            options = options[: len(probs)]
            won = np.flatnonzero(goal.succeeded(probs))
            if len(won):
                best = int(won[np.argmax([options[k][2] for k in won])])
            else:
                best = int(np.argmax(goal.score(probs)))
            index, word, _ = options[best]
            swaps.append(Swap(index, state.current.words[index], word))
            state.current = state.current.replace(index, word)
            state.modified.add(index)
            current = probs[best]
            if len(won):
                return SearchResult(state, swaps, clean, current, "success")
        return SearchResult(state, swaps, clean, current, "failed")



def clean_steps(
    state: AttackState, goal: GoalFunction
) -> Generator[Request, np.ndarray, tuple[np.ndarray, SearchResult | None]]:
    """Every search's first step: the example's clean probabilities, and a ``skipped`` result when the victim
    already misclassifies it (nothing to attack)."""
    clean = (yield from query_steps(goal, state.inputs([state.current.text])))[0]
    if goal.succeeded(clean[None])[0]:
        return clean, SearchResult(state, [], clean, clean, "skipped")
    return clean, None


def run_alone(search: SearchMethod, state: AttackState, goal: GoalFunction, candidates: Candidates) -> SearchResult:
    """``search`` on one example, its requests answered one at a time (see :func:`drive`)."""
    return drive(search.steps(state, goal, candidates, {}), goal)

def query_steps(goal: GoalFunction, inputs: list[Input]) -> Generator[Request, np.ndarray, np.ndarray]:
    """Ask for the scores of ``inputs`` within ``goal``'s budget (no request when nothing is left)."""
    admitted = goal.admit(inputs)
    if not admitted:
        return np.zeros((0, goal.victim.num_labels))
    return (yield VictimRequest(admitted))


def drive(gen: Generator[Request, np.ndarray, T], goal: GoalFunction | None) -> T:
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
