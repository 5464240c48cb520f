"""TextFooler (Jin et al., AAAI 2020) as a recipe of parts: goal + constraints + transformation + search.

Built like TextAttack's ``TextFoolerJin2019`` recipe, with the settings of Nguyen & Le (2024, Sec. 4.1 and
App. A.3): word-embedding cosine >= 0.8 and sentence-encoder similarity >= 0.84.

========================  ==========================================================================
goal                      untargeted: the victim's top class is no longer the gold label
transformation            swap a word for one of its N = 50 nearest neighbours in a counter-fitted
                          embedding space with cosine >= 0.8 (the paper's value; TextAttack uses 0.5)
constraints               no stop word replaced; no word replaced twice; part of speech kept; sentence
                          similarity >= 0.84 in a window of 15 words around the swap; for sentence
                          pairs only the second text (hypothesis) is modified
search                    greedy, words in order of importance by deletion, until the prediction flips
========================  ==========================================================================

Deviations from the original, each forced by working offline or chosen for a stated reason:

- Counter-fitted space: GloVe 6B 50-d counter-fitted by us with the paper's constraints (Mrkšić et al.
  2016), not the released 300-d Paragram-based ``counter-fitted-vectors.txt`` (not available offline; a
  user who has it can pass it via ``resources.counter_fitted_path``). 50-d neighbours are noisier, so
  more candidates are left for the POS and similarity constraints to reject.
- Sentence encoder: all-MiniLM-L6-v2 (the packaged copy) instead of the Universal Sentence Encoder
  (TensorFlow Hub, unavailable). Similarity is TextAttack's "angular" similarity 1 - arccos(cos)/pi with
  TextAttack's threshold 0.840845057 (= 1 - 0.5/pi, i.e. embedding angle <= 0.5 rad), the value the paper's
  "0.84" refers to. MiniLM's cosine scale differs from USE's, so the same threshold is not equally strict.
- The similarity window is compared with the *original* text (Jin et al.'s Algorithm 1), not the text
  before the swap (Jin's code and TextAttack); texts shorter than the window are compared whole instead of
  switching the constraint off (both references skip it). Both are configurable.
- Part of speech: WordNet's POS sets, restricted to each word's frequent parts of speech, by default
  (NLTK's tagger data cannot be downloaded), or spaCy in context when installed (``pos: spacy``); nouns
  and verbs may swap, as in the original's ``pos_filter``.
- Counter-fitting starts from mean-centred GloVe with its top principal component removed
  (``counterfit.remove_components``, see ``counterfit.all_but_the_top``).
- Importance by deletion: the word is removed (TextAttack's ``wir_method="delete"``), where Jin's code
  replaces it with "<oov>"; the score is the drop in p(gold) only (Jin adds a term for deletions that
  flip the label).
- Constraints are checked before querying the victim, so only valid candidates cost queries (Jin's code
  queries every candidate and masks afterwards).
- Words without any candidate are not scored for importance (saves queries, changes no result).
- Queries are counted as in Jin's code (every input scored), whatever the cache saved; ``model_calls``
  counts inputs that reached the model. ``max_queries`` caps queries per example (TextAttack's
  ``query_budget``); ``max_examples`` caps the examples attacked.

How it runs (no effect on results): ``examples_in_flight`` examples are attacked in lock-step. Each
example's greedy search is a generator of requests (:meth:`GreedyWordSwapWIR.steps`); every round, the
pending victim queries of all examples in flight go to the victim in ONE call (length-sorted batches, the
query cache shared) and their sentence-similarity windows to the encoder in ONE call. Each example sees
exactly the answers it would get alone, so adversarial texts, statuses and query counts are those of the
one-example-at-a-time run (``examples_in_flight: 1``, the implementation before issue 16); only
``model_calls`` may be charged to a different example when two examples share a text (their sum is the
same). With a real model the answers can differ in the last bits, as batch composition (padding) changes
floating-point sums — the same caveat as batching within one example.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from pydantic import PositiveInt

from adaptermix.attacks.constraints import (
    AttackState,
    PartOfSpeech,
    RepeatModification,
    SentenceSimilarity,
    StopwordModification,
)
from adaptermix.attacks.goal import UntargetedClassification
from adaptermix.attacks.pos import POS_TAGGERS, PosTagger
from adaptermix.attacks.resources import Encode, ResourceConfig, ResourceContext
from adaptermix.attacks.results import AttackOutcome, AttackReport, AttackSummary
from adaptermix.attacks.search import EncodeRequest, GreedyWordSwapWIR, SearchResult, Steps, VictimRequest
from adaptermix.attacks.stopwords import STOPWORDS
from adaptermix.attacks.transformations import SYNONYM_SOURCES, SynonymSource, WordSwap
from adaptermix.attacks.victim import CachedVictim, Victim
from adaptermix.attacks.words import TokenizedText
from adaptermix.config import StrictModel
from adaptermix.data.schema import Example, TaskInfo
from adaptermix.errors import ConfigError, DataError


class TextFoolerConfig(StrictModel):
    """TextFooler settings: what the attack is (paper values by default) and how it runs."""

    # transformation
    synonyms: str = "counter-fitted"  # SYNONYM_SOURCES: counter-fitted | wordnet
    max_candidates: PositiveInt = 50
    min_cos_sim: float = 0.8  # paper (Nguyen & Le 2024, Jin et al. 2020); TextAttack's recipe uses 0.5
    # constraints
    pos: str = "wordnet-frequent"  # POS_TAGGERS: wordnet-frequent | wordnet | spacy | none
    allow_verb_noun_swap: bool = True
    sim_threshold: float = 0.840845057
    sim_metric: Literal["angular", "cosine"] = "angular"
    sim_window: PositiveInt = 15
    sim_compare_against: Literal["original", "previous"] = "original"
    skip_short_texts: bool = False
    # budget (recorded in every summary)
    max_examples: PositiveInt | None = None
    max_queries: PositiveInt | None = None
    # how to run: batch=False / cache=False give the benchmark's one-input-at-a-time baseline
    batch: bool = True
    cache: bool = True
    # examples attacked in lock-step, their queries batched together (1 = one example at a time); with
    # batch=False it is always 1
    examples_in_flight: PositiveInt = 16
    resources: ResourceConfig = ResourceConfig()


@dataclass
class TextFoolerResources:
    """The heavy parts, injectable: synonym source, POS tagger, sentence encoder, stop words."""

    synonyms: SynonymSource
    pos: PosTagger
    encode: Encode
    stopwords: frozenset[str] = STOPWORDS


def build_resources(cfg: TextFoolerConfig, context: ResourceContext | None = None) -> TextFoolerResources:
    """The offline resources named by ``cfg`` (loaded through ``context``, shared across attacks)."""
    ctx = context or ResourceContext(cfg.resources)
    return TextFoolerResources(
        synonyms=SYNONYM_SOURCES.get(cfg.synonyms)(ctx, cfg),
        pos=POS_TAGGERS.get(cfg.pos)(ctx),
        encode=ctx.encoder(),
    )


class TextFoolerJin2019:
    """The TextFooler recipe; :meth:`run` attacks a list of examples against a :class:`Victim`."""

    name = "textfooler"

    def __init__(
        self, config: TextFoolerConfig | None = None, resources: TextFoolerResources | None = None
    ) -> None:
        self.config = cfg = config or TextFoolerConfig()
        self.resources = res = resources or build_resources(cfg)
        self.transformation = WordSwap(res.synonyms)
        self.similarity = SentenceSimilarity(
            res.encode,
            threshold=cfg.sim_threshold,
            metric=cfg.sim_metric,
            window=cfg.sim_window,
            compare_against=cfg.sim_compare_against,
            skip_short_texts=cfg.skip_short_texts,
            batch=cfg.batch,
            cache=cfg.cache,
        )
        self.search = GreedyWordSwapWIR(
            self.transformation,
            pre_constraints=[RepeatModification(), StopwordModification(res.stopwords)],
            constraints=[PartOfSpeech(res.pos, cfg.allow_verb_noun_swap), self.similarity],
        )

    def attack_example(
        self, example: Example, goal: UntargetedClassification, index: int = 0
    ) -> AttackOutcome:
        """Attack one example (its ``text_pair`` if it has one, else its ``text``)."""
        column, attacked, context = _attacked(example)
        self.similarity.reset()
        goal.start(int(example.label))
        result = self.search.run(AttackState(attacked, attacked, context), goal)
        return _outcome(index, example, column, attacked, goal, result, goal.model_calls)

    def run(
        self,
        examples: Sequence[Example],
        victim: Victim | CachedVictim,
        task: TaskInfo | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> AttackReport:
        """Attack the first ``max_examples`` of ``examples``; misclassified ones are skipped, not attacked.

        Pass a :class:`CachedVictim` to share its cache across runs (one per mixture, or switch its
        identity); a plain victim is wrapped in a fresh one (caching per ``config.cache``).
        ``progress(done, total)`` is called as examples finish (in lock-step they may finish out of order;
        the report lists them in input order).
        """
        check_applicable(victim, task, examples)
        cfg = self.config
        cached = victim if isinstance(victim, CachedVictim) else CachedVictim(victim, cache=cfg.cache)
        chosen = list(examples)[: cfg.max_examples] if cfg.max_examples else list(examples)
        outcomes = self._attack_in_lockstep(chosen, cached, progress)
        caps = {
            "max_examples": cfg.max_examples,
            "max_queries": cfg.max_queries,
            "examples_available": len(examples),
        }
        return AttackReport(
            self.name, cfg.model_dump(mode="json"), AttackSummary.of(outcomes, caps), tuple(outcomes)
        )

    def _attack_in_lockstep(
        self, chosen: list[Example], cached: CachedVictim, progress: Callable[[int, int], None] | None
    ) -> list[AttackOutcome]:
        """Attack ``chosen`` with up to ``examples_in_flight`` searches advancing together (see module doc).

        Each round answers every example's pending request: victim queries of all examples in one
        :meth:`CachedVictim.predict_groups` call, similarity windows in one encoder call. Finished
        examples make room for the next ones, in input order.
        """
        cfg = self.config
        flight = cfg.examples_in_flight if cfg.batch else 1
        queue = deque(enumerate(chosen))
        outcomes: list[AttackOutcome | None] = [None] * len(chosen)
        active: list[_InFlight] = []
        done = 0

        def advance(slot: _InFlight, answer: np.ndarray | None) -> bool:
            nonlocal done
            try:
                # A generator starts with no answer: next() is what send(None) does.
                slot.request = next(slot.steps) if answer is None else slot.steps.send(answer)
                return True
            except StopIteration as stop:
                outcomes[slot.index] = _outcome(
                    slot.index, slot.example, slot.column, slot.attacked, slot.goal, stop.value, slot.model_calls
                )
                done += 1
                if progress:
                    progress(done, len(chosen))
                return False

        while queue or active:
            while queue and len(active) < flight:
                i, example = queue.popleft()
                column, attacked, context = _attacked(example)
                goal = UntargetedClassification(cached, batch=cfg.batch, max_queries=cfg.max_queries)
                goal.start(int(example.label))
                memo: dict[str, np.ndarray] = {}
                steps = self.search.steps(AttackState(attacked, attacked, context), goal, memo)
                slot = _InFlight(i, example, column, attacked, goal, steps, memo=memo)
                if advance(slot, None):
                    active.append(slot)
            answers: dict[int, np.ndarray] = {}
            asking = [(s, r) for s in active if isinstance(r := s.request, VictimRequest)]
            if cfg.batch and asking:
                probs, charged = cached.predict_groups([r.inputs for _, r in asking])
                for (s, _), p, c in zip(asking, probs, charged, strict=True):
                    answers[id(s)], s.model_calls = p, s.model_calls + c
            for s, r in asking if not cfg.batch else []:  # the unbatched baseline: one input per call
                rows = []
                for x in r.inputs:
                    (p,), (c,) = cached.predict_groups([[x]])
                    rows.append(p)
                    s.model_calls += c
                answers[id(s)] = np.concatenate(rows)
            encoding = [(s, r) for s in active if isinstance(r := s.request, EncodeRequest)]
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
    column: Column
    attacked: TokenizedText
    goal: UntargetedClassification
    steps: Steps
    request: VictimRequest | EncodeRequest | None = None
    model_calls: int = 0
    memo: dict[str, np.ndarray] = field(default_factory=dict)


Column = Literal["text", "text_pair"]


def _attacked(example: Example) -> tuple[Column, TokenizedText, str | None]:
    """(attacked column, its tokenised text, the fixed context): ``text_pair`` if there is one."""
    if example.text_pair is not None:
        return "text_pair", TokenizedText.from_text(example.text_pair), example.text
    return "text", TokenizedText.from_text(example.text), None


def _outcome(
    index: int,
    example: Example,
    column: Column,
    attacked: TokenizedText,
    goal: UntargetedClassification,
    result: SearchResult,
    model_calls: int,
) -> AttackOutcome:
    return AttackOutcome(
        index=index,
        label=int(example.label),
        text=example.text,
        text_pair=example.text_pair,
        attacked_column=column,
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
    victim: Victim | CachedVictim, task: TaskInfo | None, examples: Sequence[Example]
) -> None:
    """TextFooler needs class labels: a regression task (or a one-output victim) is a one-line error."""
    if (task is not None and task.problem == "regression") or victim.num_labels < 2:
        name = f" {task.name!r}" if task is not None else ""
        raise ConfigError(f"TextFooler needs a classification task; task{name} is a regression task")
    if victim.is_pair and any(e.text_pair is None for e in examples):
        raise DataError("TextFooler on a sentence-pair victim needs text_pair on every example")
