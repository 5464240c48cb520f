"""Search: greedy word swaps in order of word importance by deletion (TextAttack ``GreedyWordSwapWIR``).

1. Query the clean input; a misclassified example is skipped.
2. Word importance: delete each attackable word (one that passes the pre-constraints and has at least
   one candidate) and measure the drop in the gold-class probability — all deletions of one example in
   ONE victim batch.
3. In decreasing importance: generate the candidates of the word, keep those passing every candidate
   constraint (POS, then sentence similarity; each sees only the previous survivors), score the
   survivors in ONE victim batch; if some flip the prediction, take the most similar one and stop;
   otherwise keep the candidate that lowers p(gold) most, if it lowers it at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from adaptermix.attacks.constraints import AttackState, CandidateConstraint, PreConstraint
from adaptermix.attacks.goal import UntargetedClassification
from adaptermix.attacks.results import Swap
from adaptermix.attacks.transformations import WordSwap


@dataclass
class SearchResult:
    """Where the search ended: final text state, probabilities of clean and final text, status."""

    state: AttackState
    swaps: list[Swap]
    clean_probs: np.ndarray
    final_probs: np.ndarray
    status: str


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
        positions = self.attackable(state)
        probs = goal.query(state.inputs([state.current.delete(i) for i in positions]))
        drop = clean[goal.label] - probs[:, goal.label]
        order = np.argsort(-drop, kind="stable")
        return [positions[k] for k in order]

    def filter(self, state: AttackState, index: int, words: list[str]) -> tuple[list[str], np.ndarray]:
        """Candidates surviving every constraint, and their similarity scores (1.0 where unmeasured)."""
        texts = state.current.replace_many(index, words)
        sims = np.ones(len(words))
        for constraint in self.constraints:
            if not texts:
                break
            verdict = constraint.check(state, index, texts)
            keep = np.flatnonzero(verdict.passed)
            if verdict.similarity is not None:
                sims = np.asarray(verdict.similarity, dtype=float)
            words, texts, sims = [words[k] for k in keep], [texts[k] for k in keep], sims[keep]
        return words, sims

    def run(self, state: AttackState, goal: UntargetedClassification) -> SearchResult:
        clean = goal.query(state.inputs([state.current.text]))[0]
        swaps: list[Swap] = []
        if goal.succeeded(clean[None])[0]:
            return SearchResult(state, swaps, clean, clean, "skipped")
        current = clean
        order = self.importance_order(state, goal, clean)
        for index in order:
            if goal.exhausted:
                break
            words, sims = self.filter(state, index, self.transformation(state.current, index))
            if not words:
                continue
            probs = goal.query(state.inputs([state.current.replace(index, w).text for w in words]))
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
