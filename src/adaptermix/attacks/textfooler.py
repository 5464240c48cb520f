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

How it runs (no effect on results): :func:`textfooler` returns a generic
:class:`~adaptermix.attacks.attack.Attack`, whose :meth:`~adaptermix.attacks.attack.Attack.run` attacks
``examples_in_flight`` examples in lock-step (their victim queries in one call, the query cache shared, their
similarity windows in one encoder call), with the same adversarial texts, statuses and query counts as one
example at a time (``examples_in_flight: 1``, the implementation before issue 16). :class:`TextFoolerJin2019`,
the recipe as a class, is kept for compatibility: it is that Attack.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import PositiveInt

from adaptermix.attacks.attack import Attack, check_applicable
from adaptermix.attacks.constraints import (
    PartOfSpeech,
    RepeatModification,
    SentenceSimilarity,
    StopwordModification,
)
from adaptermix.attacks.goal import UntargetedClassification
from adaptermix.attacks.pos import POS_TAGGERS, PosTagger
from adaptermix.attacks.resources import Encode, ResourceConfig, ResourceContext
from adaptermix.attacks.results import AttackOutcome
from adaptermix.attacks.search import GreedyWordSwapWIR
from adaptermix.attacks.stopwords import STOPWORDS
from adaptermix.attacks.transformations import SYNONYM_SOURCES, SynonymSource, WordSwap
from adaptermix.core.config import StrictModel
from adaptermix.data.schema import Example


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


def textfooler(
    config: TextFoolerConfig | None = None, resources: TextFoolerResources | None = None
) -> Attack:
    """The TextFooler recipe as an :class:`Attack` (resources loaded per ``config`` unless given)."""
    return Attack(**_parts(config or TextFoolerConfig(), resources))


def _parts(cfg: TextFoolerConfig, resources: TextFoolerResources | None) -> dict[str, Any]:
    """The goal, constraints, transformation, search and settings of the recipe (``Attack``'s arguments)."""
    res = resources or build_resources(cfg)
    similarity = SentenceSimilarity(
        res.encode,
        threshold=cfg.sim_threshold,
        metric=cfg.sim_metric,
        window=cfg.sim_window,
        compare_against=cfg.sim_compare_against,
        skip_short_texts=cfg.skip_short_texts,
        batch=cfg.batch,
        cache=cfg.cache,
    )
    constraints = [
        RepeatModification(),
        StopwordModification(res.stopwords),
        PartOfSpeech(res.pos, cfg.allow_verb_noun_swap),
        similarity,
    ]
    return {
        "goal": UntargetedClassification,
        "constraints": constraints,
        "transformation": WordSwap(res.synonyms),
        "search": GreedyWordSwapWIR(),
        "name": "textfooler",
        "title": "TextFooler",
        "config": cfg,
        "max_queries": cfg.max_queries,
        "max_examples": cfg.max_examples,
        "batch": cfg.batch,
        "cache": cfg.cache,
        "examples_in_flight": cfg.examples_in_flight,
    }


class TextFoolerJin2019(Attack):
    """The TextFooler recipe as a class (kept for compatibility): the :class:`Attack` of :func:`textfooler`,
    with the recipe's ``config``, ``resources`` and ``similarity`` constraint at hand."""

    config: TextFoolerConfig

    def __init__(
        self, config: TextFoolerConfig | None = None, resources: TextFoolerResources | None = None
    ) -> None:
        cfg = config or TextFoolerConfig()
        self.resources = resources or build_resources(cfg)
        super().__init__(**_parts(cfg, self.resources))
        self.similarity = next(c for c in self.constraints if isinstance(c, SentenceSimilarity))

    def attack_example(
        self, example: Example, goal: UntargetedClassification, index: int = 0
    ) -> AttackOutcome:
        """Attack one example with a ``goal`` on the victim (its ``text_pair`` if it has one, else its
        ``text``), each request answered on its own."""
        self.similarity.reset()
        goal.start(int(example.label))
        return self.attack_with(example, goal, index)


__all__ = [
    "TextFoolerConfig",
    "TextFoolerJin2019",
    "TextFoolerResources",
    "build_resources",
    "check_applicable",
    "textfooler",
]
