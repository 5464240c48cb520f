"""Goal function: untargeted misclassification, with the query budget of one example.

Score of a text = 1 - p(gold label): the greedy search maximises it; the attack succeeds as soon as the
victim's top class is no longer the gold label. Queries are counted as Jin et al. count them — every
input whose score the attack asks for — so the number does not depend on caching; ``model_calls`` (from
the :class:`CachedVictim`) says how many of them actually reached the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from adaptermix.attacks.victim import CachedVictim, Input, QueryStats


class GoalFunction(Protocol):
    """What a search asks of a goal (TextAttack's ``GoalFunction``), for ONE example at a time.

    A goal holds the example's gold label and query budget; :class:`~adaptermix.attacks.attack.Attack` makes
    one per example in flight with a :class:`GoalFactory`. Queries are admitted (:meth:`admit`, counted
    against the budget) before they are scored (:meth:`score_inputs`), so that the attack can answer the
    admitted queries of several examples in one victim call.
    """

    victim: CachedVictim
    label: int
    queries: int
    exhausted: bool

    def start(self, label: int) -> None: ...

    @property
    def model_calls(self) -> int: ...

    def admit(self, inputs: Sequence[Input]) -> list[Input]: ...

    def score_inputs(self, inputs: list[Input]) -> np.ndarray: ...

    def score(self, probs: np.ndarray) -> np.ndarray: ...

    def succeeded(self, probs: np.ndarray) -> np.ndarray: ...


class GoalFactory(Protocol):
    """Makes one example's goal: ``factory(victim, batch=..., max_queries=...)``; a goal class is one."""

    def __call__(self, victim: CachedVictim, *, batch: bool, max_queries: int | None) -> GoalFunction: ...


class UntargetedClassification:
    """Ask a victim for class probabilities within a per-example query budget."""

    def __init__(self, victim: CachedVictim, *, batch: bool = True, max_queries: int | None = None) -> None:
        self.victim = victim
        self.batch = batch
        self.max_queries = max_queries
        self.label = 0
        self.queries = 0
        self.exhausted = False
        self._start = QueryStats()

    def start(self, label: int) -> None:
        """Begin a new example with gold ``label``: reset the budget and the counters."""
        self.label = int(label)
        self.queries = 0
        self.exhausted = False
        self._start = QueryStats(**vars(self.victim.stats))

    @property
    def model_calls(self) -> int:
        return (self.victim.stats - self._start).model_calls

    def remaining(self) -> int | None:
        return None if self.max_queries is None else max(self.max_queries - self.queries, 0)

    def query(self, inputs: Sequence[Input]) -> np.ndarray:
        """Probabilities ``[m, C]`` for the first ``m <= len(inputs)`` inputs the budget allows.

        When the budget cuts the batch, :attr:`exhausted` is set and the search stops after this step.
        """
        inputs = self.admit(inputs)
        if not inputs:
            return np.zeros((0, self.victim.num_labels))
        return self.score_inputs(inputs)

    def admit(self, inputs: Sequence[Input]) -> list[Input]:
        """The first inputs the budget allows, counted as queries (sets :attr:`exhausted` on a cut)."""
        inputs = list(inputs)
        left = self.remaining()
        if left is not None and left < len(inputs):
            inputs = inputs[:left]
            self.exhausted = True
        self.queries += len(inputs)
        return inputs

    def score_inputs(self, inputs: list[Input]) -> np.ndarray:
        """The victim's probabilities for admitted ``inputs``: one batch, or one call per input."""
        if self.batch:
            return self.victim.predict_proba(inputs)
        return np.concatenate([self.victim.predict_proba([x]) for x in inputs])

    def score(self, probs: np.ndarray) -> np.ndarray:
        """1 - p(gold) per row: what the search maximises."""
        return 1.0 - probs[:, self.label]

    def succeeded(self, probs: np.ndarray) -> np.ndarray:
        """True per row where the predicted class is not the gold label."""
        return probs.argmax(axis=1) != self.label
