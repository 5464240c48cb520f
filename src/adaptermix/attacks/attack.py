"""A word-level attack composed of parts: goal function, constraints, transformation, search (TextAttack's
``Attack``).

=================  =========================================================================================
part               interface (and the implementations in this package)
=================  =========================================================================================
goal               :class:`~adaptermix.attacks.goal.GoalFactory`: makes one example's
                   :class:`~adaptermix.attacks.goal.GoalFunction` (``UntargetedClassification``)
constraints        one list, sorted by interface as TextAttack does: pre-transformation
                   (:class:`~adaptermix.attacks.constraints.PreConstraint`: ``RepeatModification``,
                   ``StopwordModification``) and post-transformation
                   (:class:`~adaptermix.attacks.constraints.CandidateConstraint`: ``PartOfSpeech``,
                   ``SentenceSimilarity``, in list order, each seeing the previous survivors)
transformation     :class:`~adaptermix.attacks.transformations.Transformation`: replacements of one word
                   (``WordSwap`` over a synonym source)
search             :class:`~adaptermix.attacks.search.SearchMethod` (``GreedyWordSwapWIR``, ``GreedySearch``)
=================  =========================================================================================

A recipe is a function that builds one (:func:`adaptermix.attacks.textfooler.textfooler`).

How it runs (:meth:`Attack.run`; no effect on results): ``examples_in_flight`` examples are attacked in
lock-step. Each example's search is a generator of requests; every round, the pending victim queries of all
examples in flight go to the victim in ONE call (length-sorted batches, the query cache of the
:class:`~adaptermix.attacks.victim.CachedVictim` shared) and their texts for each encoding constraint (the
sentence-similarity windows) to its encoder in ONE call. Each example sees exactly the answers it would get
alone, so adversarial texts, statuses and query counts are those of the one-example-at-a-time run
(``examples_in_flight=1``); only ``model_calls`` may be charged to a different example when two examples
share a text (their sum is the same). With a real model the answers can differ in the last bits, as batch
composition (padding) changes floating-point sums — the same caveat as batching within one example.
``batch=False`` is the benchmark's baseline: one example at a time, one input per victim call.

Differences from TextAttack's ``Attack``: the query budget (``max_queries``) and the example cap
(``max_examples``) are the attack's settings, not the goal function's and the attack loop's; an attack
modifies only the attacked column (``text_pair`` of a sentence pair, else ``text``), where TextAttack
expresses that as a pre-transformation constraint (``InputColumnModification``); a transformation replaces
one word by one word (positions never shift).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from adaptermix.attacks.candidates import Candidates, EncodeRequest, VictimRequest
from adaptermix.attacks.constraints import AttackState, CandidateConstraint, Constraint, PreConstraint
from adaptermix.attacks.goal import GoalFactory, GoalFunction
from adaptermix.attacks.results import AttackOutcome, AttackReport, AttackSummary
from adaptermix.attacks.search import SearchMethod, SearchResult, Steps, drive
from adaptermix.attacks.transformations import Transformation
from adaptermix.attacks.victim import CachedVictim, Victim
from adaptermix.attacks.words import TokenizedText
from adaptermix.core.errors import ConfigError, DataError
from adaptermix.data.schema import Example, TaskInfo


class Attack:
    """An attack from parts; :meth:`run` attacks a list of examples against a :class:`Victim`.

    ``name`` is what reports record (``"textfooler"``), ``title`` what error messages say (``"TextFooler"``);
    ``config`` (a pydantic model) is recorded in every report, else a description of the parts is.
    """

    def __init__(
        self,
        goal: GoalFactory,
        constraints: Sequence[Constraint],
        transformation: Transformation,
        search: SearchMethod,
        *,
        name: str = "attack",
        title: str | None = None,
        config: Any = None,
        max_queries: int | None = None,
        max_examples: int | None = None,
        batch: bool = True,
        cache: bool = True,
        examples_in_flight: int = 16,
    ) -> None:
        pre: list[PreConstraint] = []
        post: list[CandidateConstraint] = []
        for c in constraints:
            if isinstance(c, PreConstraint):
                pre.append(c)
            elif isinstance(c, CandidateConstraint):
                post.append(c)
            else:
                raise ConfigError(f"constraint {c!r} has neither allows(state, i) nor check(state, i, texts)")
        if examples_in_flight < 1:
            raise ConfigError(f"examples_in_flight must be >= 1, got {examples_in_flight}")
        self.goal = goal
        self.transformation = transformation
        self.search = search
        self.candidates = Candidates(transformation, pre, post)
        self.name = name
        self.title = title or name
        self.config = config
        self.max_queries = max_queries
        self.max_examples = max_examples
        self.batch = batch
        self.cache = cache
        self.examples_in_flight = examples_in_flight

    @property
    def pre_transformation_constraints(self) -> list[PreConstraint]:
        return self.candidates.pre_constraints

    @property
    def constraints(self) -> list[CandidateConstraint]:
        """The post-transformation constraints, in the order they are checked."""
        return self.candidates.constraints

    def describe(self) -> dict[str, Any]:
        """What a report records: the recipe's config, or the parts and settings of a composed attack."""
        if self.config is not None:
            return dict(self.config.model_dump(mode="json"))
        return {
            "search": getattr(self.search, "name", type(self.search).__name__),
            "transformation": type(self.transformation).__name__,
            "constraints": [c.name for c in self.pre_transformation_constraints]
            + [c.name for c in self.constraints],
            "max_queries": self.max_queries,
            "max_examples": self.max_examples,
            "batch": self.batch,
            "cache": self.cache,
            "examples_in_flight": self.examples_in_flight,
        }

    def new_goal(self, victim: CachedVictim, label: int) -> GoalFunction:
        """One example's goal, started on its gold ``label``."""
        goal = self.goal(victim, batch=self.batch, max_queries=self.max_queries)
        goal.start(int(label))
        return goal

    def attack(self, example: Example, victim: Victim | CachedVictim, index: int = 0) -> AttackOutcome:
        """Attack one example on its own (its ``text_pair`` if it has one, else its ``text``)."""
        cached = victim if isinstance(victim, CachedVictim) else CachedVictim(victim, cache=self.cache)
        goal = self.new_goal(cached, int(example.label))
        return self.attack_with(example, goal, index)

    def attack_with(self, example: Example, goal: GoalFunction, index: int = 0) -> AttackOutcome:
        """Attack one example with a started ``goal``, each request answered on its own."""
        column, attacked, context = attacked_column(example)
        state = AttackState(attacked, attacked, context)
        result = drive(self.search.steps(state, goal, self.candidates, {}), goal)
        return outcome_of(index, example, column, attacked, goal, result, goal.model_calls)

    def run(
        self,
        examples: Sequence[Example],
        victim: Victim | CachedVictim,
        task: TaskInfo | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> AttackReport:
        """Attack the first ``max_examples`` of ``examples``; misclassified ones are skipped, not attacked.

        Pass a :class:`CachedVictim` to share its cache across runs (one per mixture, or switch its
        identity); a plain victim is wrapped in a fresh one (caching per ``cache``).
        ``progress(done, total)`` is called as examples finish (in lock-step they may finish out of order;
        the report lists them in input order).
        """
        check_applicable(victim, task, examples, self.title)
        cached = victim if isinstance(victim, CachedVictim) else CachedVictim(victim, cache=self.cache)
        chosen = list(examples)[: self.max_examples] if self.max_examples else list(examples)
        outcomes = self._attack_in_lockstep(chosen, cached, progress)
        caps = {
            "max_examples": self.max_examples,
            "max_queries": self.max_queries,
            "examples_available": len(examples),
        }
        return AttackReport(self.name, self.describe(), AttackSummary.of(outcomes, caps), tuple(outcomes))

    def _attack_in_lockstep(
        self, chosen: list[Example], cached: CachedVictim, progress: Callable[[int, int], None] | None
    ) -> list[AttackOutcome]:
        """Attack ``chosen`` with up to ``examples_in_flight`` searches advancing together (module doc).

        Each round answers every example's pending request: victim queries of all examples in one
        :meth:`CachedVictim.predict_groups` call, each encoding constraint's texts in one encoder call.
        Finished examples make room for the next ones, in input order.
        """
        flight = self.examples_in_flight if self.batch else 1
        queue = deque(enumerate(chosen))
        outcomes: list[AttackOutcome | None] = [None] * len(chosen)
        active: list[_InFlight] = []
        done = 0

        def advance(slot: _InFlight, answer: np.ndarray | None) -> bool:
            nonlocal done
            try:
                slot.request = slot.steps.send(answer)  # type: ignore[arg-type]  # None only at the start
                return True
            except StopIteration as stop:
                outcomes[slot.index] = outcome_of(
                    slot.index, slot.example, slot.column, slot.attacked, slot.goal, stop.value,
                    slot.model_calls,
                )
                done += 1
                if progress:
                    progress(done, len(chosen))
                return False

        while queue or active:
            while queue and len(active) < flight:
                i, example = queue.popleft()
                column, attacked, context = attacked_column(example)
                goal = self.new_goal(cached, int(example.label))
                memo: dict[str, np.ndarray] = {}
                state = AttackState(attacked, attacked, context)
                steps = self.search.steps(state, goal, self.candidates, memo)
                slot = _InFlight(i, example, column, attacked, goal, steps, memo=memo)
                if advance(slot, None):
                    active.append(slot)
            answers: dict[int, np.ndarray] = {}
            asking = [(s, s.request) for s in active if isinstance(s.request, VictimRequest)]
            if self.batch and asking:
                probs, charged = cached.predict_groups([r.inputs for _, r in asking])
                for (s, _), p, c in zip(asking, probs, charged, strict=True):
                    answers[id(s)], s.model_calls = p, s.model_calls + c
            for s, r in asking if not self.batch else []:  # the unbatched baseline: one input per call
                rows = []
                for x in r.inputs:
                    (p,), (c,) = cached.predict_groups([[x]])
                    rows.append(p)
                    s.model_calls += c
                answers[id(s)] = np.concatenate(rows)
            encoding = [(s, s.request) for s in active if isinstance(s.request, EncodeRequest)]
            for constraint in {id(r.constraint): r.constraint for _, r in encoding}.values():
                mine = [(s, r) for s, r in encoding if r.constraint is constraint]
                embs = constraint.embed_groups([(r.texts, r.memo) for _, r in mine])
                answers.update((id(s), e) for (s, _), e in zip(mine, embs, strict=True))
            active = [s for s in active if advance(s, answers[id(s)])]
        return [o for o in outcomes if o is not None]


@dataclass
class _InFlight:
    """One example being attacked: its search generator, the request it waits on, its charged calls."""

    index: int
    example: Example
    column: str
    attacked: TokenizedText
    goal: GoalFunction
    steps: Steps
    request: VictimRequest | EncodeRequest | None = None
    model_calls: int = 0
    memo: dict[str, np.ndarray] = field(default_factory=dict)


def attacked_column(example: Example) -> tuple[str, TokenizedText, str | None]:
    """(attacked column, its tokenised text, the fixed context): ``text_pair`` if there is one."""
    if example.text_pair is not None:
        return "text_pair", TokenizedText.from_text(example.text_pair), example.text
    return "text", TokenizedText.from_text(example.text), None


def outcome_of(
    index: int,
    example: Example,
    column: str,
    attacked: TokenizedText,
    goal: GoalFunction,
    result: SearchResult,
    model_calls: int,
) -> AttackOutcome:
    """One example's :class:`AttackOutcome` from where its search ended."""
    return AttackOutcome(
        index=index,
        label=int(example.label),
        text=example.text,
        text_pair=example.text_pair,
        attacked_column="text_pair" if column == "text_pair" else "text",
        adversarial=result.state.current.text,
        original_pred=int(np.argmax(result.clean_probs)),
        adversarial_pred=int(np.argmax(result.final_probs)),
        original_gold_prob=float(result.clean_probs[goal.label]),
        adversarial_gold_prob=float(result.final_probs[goal.label]),
        n_words=attacked.num_words,
        swaps=tuple(result.swaps),
        queries=goal.queries,
        model_calls=model_calls,
        status=result.status,
        budget_exhausted=goal.exhausted and result.status == "failed",
    )


def check_applicable(
    victim: Victim | CachedVictim,
    task: TaskInfo | None,
    examples: Sequence[Example],
    title: str = "the attack",
) -> None:
    """A classification attack needs class labels: a regression task (or a one-output victim) is a one-line
    error, as is a sentence-pair victim with an example lacking ``text_pair``."""
    if (task is not None and task.problem == "regression") or victim.num_labels < 2:
        name = f" {task.name!r}" if task is not None else ""
        raise ConfigError(f"{title} needs a classification task; task{name} is a regression task")
    if victim.is_pair and any(e.text_pair is None for e in examples):
        raise DataError(f"{title} on a sentence-pair victim needs text_pair on every example")
