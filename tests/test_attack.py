"""The generic Attack: TextFooler as a recipe gives exactly the results of before; a second recipe from the
same parts (another search, a constraint written here) runs through the same lock-step ``Attack.run``; an
attack registered as an evaluation kind runs on a model."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pytest

from adaptermix.attacks.attack import Attack
from adaptermix.attacks.check import verify_report
from adaptermix.attacks.constraints import (
    AttackState,
    PartOfSpeech,
    RepeatModification,
    SentenceSimilarity,
    StopwordModification,
)
from adaptermix.attacks.goal import UntargetedClassification
from adaptermix.attacks.search import GreedySearch, GreedyWordSwapWIR
from adaptermix.attacks.stopwords import STOPWORDS
from adaptermix.attacks.textfooler import TextFoolerConfig, TextFoolerJin2019, textfooler
from adaptermix.attacks.transformations import StaticSynonyms, WordSwap
from adaptermix.attacks.victim import CachedVictim
from adaptermix.config import StrictModel
from adaptermix.data.schema import Example, TaskInfo
from adaptermix.errors import ConfigError
from attack_golden import GOLDEN, golden_runs
from test_textfooler import (
    LOCKSTEP_EXAMPLES,
    SYNONYMS,
    CountingEncode,
    FakePos,
    KeywordVictim,
    LexiconVictim,
    fake_encode,
    resources,
    spec,
)

# --------------------------------------------------------------------------- TextFooler, before and after


@pytest.mark.parametrize("build", [textfooler, TextFoolerJin2019], ids=["recipe", "class"])
def test_textfooler_recipe_gives_the_results_of_before(build) -> None:
    """33 runs (11 settings x 3 victims) equal, field for field, the reports of TextFooler's own loop before
    the generic Attack (recorded in tests/fixtures/attack_golden.json), victim and encoder call counts too."""
    want = json.loads(GOLDEN.read_text())
    got = golden_runs(build)
    assert sorted(got) == sorted(want)
    for key in want:
        assert got[key] == want[key], key


def test_the_recipe_is_an_attack_of_textattack_parts() -> None:
    cfg = TextFoolerConfig(max_queries=7, max_examples=3, examples_in_flight=2)
    attack = textfooler(cfg, resources())
    assert isinstance(attack, Attack) and isinstance(TextFoolerJin2019(cfg, resources()), Attack)
    assert [c.name for c in attack.pre_transformation_constraints] == ["repeat", "stopword"]
    assert [c.name for c in attack.constraints] == ["pos", "similarity"]
    assert isinstance(attack.transformation, WordSwap) and isinstance(attack.search, GreedyWordSwapWIR)
    assert (attack.name, attack.title, attack.max_queries, attack.max_examples) == ("textfooler", "TextFooler", 7, 3)
    assert attack.describe() == cfg.model_dump(mode="json")


def test_one_example_on_its_own_equals_the_lockstep_run() -> None:
    attack = textfooler(TextFoolerConfig(max_queries=9), resources())
    report = attack.run(LOCKSTEP_EXAMPLES, LexiconVictim())
    alone = [attack.attack(e, LexiconVictim(), i) for i, e in enumerate(LOCKSTEP_EXAMPLES)]
    # model_calls aside: the run shares one cache, so a repeated example costs no model call there
    assert [o.to_dict() | {"model_calls": 0} for o in alone] == [
        o.to_dict() | {"model_calls": 0} for o in report.outcomes
    ]
    legacy = TextFoolerJin2019(TextFoolerConfig(max_queries=9), resources())
    goal = UntargetedClassification(CachedVictim(LexiconVictim()), max_queries=9)
    assert legacy.attack_example(LOCKSTEP_EXAMPLES[0], goal).to_dict() == alone[0].to_dict()


# --------------------------------------------------------------------------- a second recipe


@dataclass(frozen=True)
class MaxWordsPerturbed:
    """A pre-transformation constraint written only here: at most ``n`` words replaced."""

    n: int
    name: str = "max-words"

    def allows(self, state: AttackState, index: int) -> bool:
        return len(state.modified) < self.n


def greedy_swap(
    max_words: int | None = None, examples_in_flight: int = 16, batch: bool = True, encode=fake_encode,
    max_queries: int | None = None,
) -> Attack:
    """A recipe from TextFooler's parts with TextAttack's GreedySearch (best swap over all positions per
    round) instead of importance ranking, and optionally a cap on the words replaced."""
    similarity = SentenceSimilarity(encode, batch=batch)
    pre = [RepeatModification(), StopwordModification(STOPWORDS)]
    pre += [MaxWordsPerturbed(max_words)] if max_words else []
    return Attack(
        UntargetedClassification,
        [*pre, PartOfSpeech(FakePos()), similarity],
        WordSwap(StaticSynonyms(SYNONYMS)),
        GreedySearch(),
        name="greedy-swap",
        max_queries=max_queries,
        batch=batch,
        examples_in_flight=examples_in_flight,
    )


def test_second_recipe_finds_the_hand_checked_swap() -> None:
    """"Good" -> "Nice": positions movie (film, picture) and Good (nice, fine; goods fails POS, awful the
    similarity) are scored in one batch of 4; nice and fine flip the victim, nice is the more similar."""
    (o,) = greedy_swap().run([Example("The movie is too Good .", 1)], KeywordVictim()).outcomes
    assert o.status == "success" and [(s.original, s.new) for s in o.swaps] == [("Good", "Nice")]
    assert o.queries == 1 + 4


@pytest.mark.parametrize("max_words", [None, 1])
def test_second_recipe_runs_in_lockstep_with_the_same_results(max_words: int | None) -> None:
    """The composed attack gets the fast path: in lock-step the same reports, fewer victim and encoder calls;
    every adversarial example passes the independent constraint checker."""
    runs = {}
    for flight in (1, 3, 16):
        victim, encode = CachedVictim(LexiconVictim()), CountingEncode()
        report = greedy_swap(max_words, flight, encode=encode).run(LOCKSTEP_EXAMPLES, victim)
        assert verify_report(report, spec(TextFoolerConfig())) == {}
        runs[flight] = (report, victim.stats, encode.calls)
    one, one_stats, one_enc = runs[1]
    for flight in (3, 16):
        many, stats, enc = runs[flight]
        assert [o.to_dict() | {"model_calls": 0} for o in many.outcomes] == [
            o.to_dict() | {"model_calls": 0} for o in one.outcomes
        ]
        assert stats.model_calls == one_stats.model_calls and stats.batches < one_stats.batches
        assert enc < one_enc
    statuses = [o.status for o in one.outcomes]
    assert "skipped" in statuses
    if max_words:  # this victim needs two swaps or more on every example
        assert all(o.n_perturbed <= 1 for o in one.outcomes) and "success" not in statuses
        assert any(o.n_perturbed == 1 for o in one.outcomes)
    else:
        assert "success" in statuses
    assert one.attack == "greedy-swap"
    assert one.config["search"] == "greedy" and one.config["constraints"][-2:] == ["pos", "similarity"]
    # the searches differ: importance ranking and greedy-over-all-positions need different queries
    wir = textfooler(TextFoolerConfig(), resources()).run(LOCKSTEP_EXAMPLES, LexiconVictim())
    assert [o.queries for o in wir.outcomes] != [o.queries for o in one.outcomes]


def test_second_recipe_budget_and_unbatched_baseline() -> None:
    capped = greedy_swap(max_queries=4).run(LOCKSTEP_EXAMPLES, LexiconVictim())
    assert all(o.queries <= 4 for o in capped.outcomes) and capped.summary.n_budget_exhausted > 0
    single = KeywordVictim(("good", "great", "fine"))
    a = greedy_swap().run(LOCKSTEP_EXAMPLES, KeywordVictim(("good", "great", "fine")))
    b = greedy_swap(batch=False).run(LOCKSTEP_EXAMPLES, CachedVictim(single, cache=False))
    assert [o.adversarial for o in a.outcomes] == [o.adversarial for o in b.outcomes]
    assert single.calls == single.inputs  # one input per victim call


def test_constraints_are_sorted_by_interface_and_checked() -> None:
    with pytest.raises(ConfigError, match="has neither allows"):
        Attack(UntargetedClassification, [object()], WordSwap(StaticSynonyms({})), GreedySearch())  # type: ignore[list-item]
    with pytest.raises(ConfigError, match="regression task"):
        greedy_swap().run([Example("a", 1.0)], KeywordVictim(), TaskInfo("stsb", "single", "regression"))


# --------------------------------------------------------------------------- as an evaluation kind


class GreedySwapConfig(StrictModel):
    max_queries: int | None = None


def test_a_composed_attack_registered_as_an_evaluation_kind_runs_on_a_model() -> None:
    from adaptermix.artefact import new_model
    from adaptermix.attacks.attack_eval import evaluate_attack
    from adaptermix.evaluations.base import EvalOutcome, EvalSet, EvaluationKind
    from adaptermix.evaluations.registry import EVALUATION_KINDS
    from adaptermix.methods import MethodConfig
    from adaptermix.model import HeadConfig
    from adaptermix.training.batching import tokenize
    from tiny import tiny_encoder

    def run(model: Any, es: EvalSet, params: Mapping[str, Any], identity: str, batch_size: int) -> EvalOutcome:
        return evaluate_attack(greedy_swap(max_queries=kind.parse(params).max_queries), model, es, identity,
                               batch_size)

    kind = EvaluationKind(name="greedy_swap", config=GreedySwapConfig, run=run, label="greedy swap",
                          colour="tab:brown", adversarial=True, description="greedy synonym swaps (a test)",
                          keeps_examples=True)
    enc = tiny_encoder("bert")
    info = TaskInfo("toy", "single", "classification", ("neg", "pos"))
    examples = [Example(t, label) for t in ("a good movie", "a great plot , good movie", "fine film")
                for label in (0, 1)]
    es = EvalSet(info, examples, tokenize(enc.tokenizer, examples, 16, False), 16)
    model = new_model(enc, MethodConfig(name="pfeiffer", bottleneck_size=4), HeadConfig(), info, head_seed=0)
    try:
        with EVALUATION_KINDS.registered(kind.name, kind):
            outcome = EVALUATION_KINDS.get("greedy_swap").run(model, es, {"max_queries": 6}, "t", 8)
    finally:
        model.detach_body()
    m = outcome.metrics
    assert m["n_examples"] == len(examples) and m["n_skipped"] == len(examples) // 2  # one label of each pair
    assert m["caps"]["max_queries"] == 6 and outcome.metric == m[info.metric]
    assert len(outcome.adversarial) == m["n_success"] + m["n_failed"]
    assert all(a.queries <= 6 for a in outcome.adversarial)
