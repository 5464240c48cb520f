"""Budgeted search on synthetic exhaustive stores: the model strategy finds a known best mixture within a
fifth of the evaluations (random does not), and every strategy keeps the search's contract (seeded,
single first, nothing twice, within budget, min_k), Alg. 1 / AdapterSoup orders, and the errors."""

from __future__ import annotations

import numpy as np
import pytest

from adaptermix.errors import AdapterMixError, ConfigError
from adaptermix.recommend.features import Candidate, Measured, PoolFacts
from adaptermix.recommend.search import (
    STRATEGIES,
    SearchSpace,
    StoreOracle,
    budget_for,
    compare_strategies,
    search,
    summarise,
)
from adaptermix.sweep.spec import RuleSpec
from synthetic_mixtures import additive_metric, additive_world, exhaustive, names, random_facts

POOL = names(7)
GOOD = {"d2": 0.025, "d4": 0.022, "d5": 0.028}  # d0's helpful partners (metric units)
BAD = {"d1": -0.02, "d3": -0.03, "d6": -0.035}
KNOWN_BEST = Candidate("d0", ("d0", "d2", "d4", "d5"))


def known_world(seed: int = 0) -> tuple[list[Measured], PoolFacts]:
    """d0's best mixture is d0 + {d2, d4, d5} (+7.5 points over d0 alone, 2 above the next best);
    the other targets have random helpful and harmful partners. Every metric is additive in partners."""
    rng = np.random.default_rng(seed)
    single = {t: float(rng.uniform(0.6, 0.8)) for t in POOL}
    effects: dict[str, dict[str, float]] = {"d0": {**GOOD, **BAD}}
    for t in POOL[1:]:
        others = [p for p in POOL if p != t]
        good = set(rng.choice(others, 3, replace=False).tolist())
        effects[t] = {j: float(rng.uniform(0.02, 0.03)) if j in good else -float(rng.uniform(0.02, 0.04))
                      for j in others}
    return exhaustive(POOL, additive_metric(single, effects)), random_facts(7, seed)


def _keys(result) -> list[str]:
    return [s.candidate.key for s in result.steps]


# ------------------------------------------------------------------------------------------ quality


def test_model_finds_the_known_best_within_a_fifth_and_random_does_not():
    measured, facts = known_world()
    space = SearchSpace("d0", facts)
    assert len(space.candidates) == 64
    oracle = StoreOracle(measured)
    best = oracle.best("d0")
    assert best.candidate == KNOWN_BEST
    runner_up = max(m.metric for m in measured if m.candidate.target == "d0" and m.candidate != KNOWN_BEST)
    assert (best.metric - runner_up) * 100 > 1.5, "the known best is clearly above the rest"

    result = search("model", space, oracle, 12, seed=0)
    assert oracle.calls == len(result.steps) <= 12
    assert result.best.candidate == KNOWN_BEST and result.best.metric == best.metric
    assert result.as_dict()["best"]["subset"] == ["d0", "d2", "d4", "d5"]

    gaps = []
    for seed in range(12):
        o = StoreOracle(measured)
        r = search("random", space, o, 12, seed=seed)
        assert o.calls == len(r.steps) == 12
        gaps.append((best.metric - r.best.metric) * 100)
    assert np.mean(gaps) > 1.0 and sum(g == 0 for g in gaps) < len(gaps) / 2, "random is the weaker control"


def test_compare_strategies_on_every_target_and_summarise():
    measured, facts = known_world(seed=1)
    comps = compare_strategies(measured, facts, budget=12, strategies=["model", "random"], seeds=(0, 1, 2))
    assert len(comps) == 7 * 2 * 3
    assert all(c.evaluations <= 12 and c.exhaustive == 64 for c in comps)
    assert all(c.found <= c.optimum for c in comps)
    rows = {r["strategy"]: r for r in summarise(comps)}
    assert rows["model"]["mean_gap_points"] < rows["random"]["mean_gap_points"]
    assert rows["model"]["mean_gap_points"] <= 0.5 and rows["model"]["of_exhaustive"] == 64
    assert rows["random"]["evaluations"] == 12.0 and rows["random"]["within_1_point"].endswith("/21")
    # learning from the other targets' mixtures (leave one target out) still finds d0's best
    comps = compare_strategies(measured, facts, budget=8, strategies=["model"], use_prior=True)
    assert all(c.evaluations <= 8 for c in comps)
    assert budget_for(0.1, 64) == 6 and budget_for(0.0, 64) == 1


# ------------------------------------------------------------------------------------------ the contract


@pytest.fixture
def world() -> tuple[list[Measured], PoolFacts]:
    facts = random_facts(7, seed=4)
    single, effects = additive_world(7, seed=4)
    return exhaustive(facts.names, additive_metric(single, effects)), facts


@pytest.mark.parametrize("strategy", STRATEGIES.names())
@pytest.mark.parametrize("budget", [1, 7, 100])
def test_every_strategy_keeps_the_contract(world, strategy, budget):
    measured, facts = world
    space = SearchSpace("d3", facts)
    runs = []
    for _ in range(2):
        oracle = StoreOracle(measured)
        runs.append((search(strategy, space, oracle, budget, seed=5), oracle))
    (a, oracle), (b, _) = runs
    assert a.steps == b.steps, "a search is reproducible for a seed"
    assert a.steps[0].candidate == space.single and a.steps[0].candidate.k == 1
    assert len(set(_keys(a))) == len(a.steps), "no candidate is evaluated twice"
    assert oracle.calls == len(a.steps) <= min(budget, len(space.candidates))
    assert a.best in a.steps
    if strategy in ("model", "random", "evolve") and budget < 64:
        assert len(a.steps) == budget, f"{strategy} uses its whole budget"


def test_random_and_evolve_depend_on_the_seed(world):
    measured, facts = world
    space = SearchSpace("d3", facts)
    for strategy in ("random", "evolve"):
        runs = {tuple(_keys(search(strategy, space, StoreOracle(measured), 10, seed=s))) for s in range(4)}
        assert len(runs) > 1, strategy


@pytest.mark.parametrize("strategy", STRATEGIES.names())
def test_min_k_2_never_recommends_the_single_adapter(strategy):
    """Every partner hurts, so the single adapter is the best: min_k = 2 must still recommend a mixture."""
    facts = random_facts(7, seed=2)
    facts = PoolFacts(facts.names, facts.fsd, np.full((7, 7), 0.5))  # every partner similar enough
    single = {t: 0.8 for t in POOL}
    effects = {t: {j: -0.01 * (1 + i) for i, j in enumerate(p for p in POOL if p != t)} for t in POOL}
    measured = exhaustive(POOL, additive_metric(single, effects))
    space = SearchSpace("d1", facts, min_k=2)
    assert all(c.k >= 2 for c in space.candidates) and len(space.candidates) == 63
    plain = search(strategy, SearchSpace("d1", facts), StoreOracle(measured), 6, seed=0)
    assert plain.best.candidate.k == 1
    result = search(strategy, space, StoreOracle(measured), 6, seed=0)
    assert result.steps[0].candidate.k == 1, "the single adapter is still evaluated first (the baseline)"
    assert result.best.candidate.k >= 2 and len(result.as_dict()["best"]["subset"]) >= 2
    with pytest.raises(ConfigError, match="min_k"):
        SearchSpace("d1", facts, min_k=8)


def test_greedy_fsd_follows_alg1_row_mean_order():
    fsd = np.array([
        [0.00, 0.30, 0.60, 0.40, 0.35],
        [0.30, 0.00, 0.70, 0.70, 0.70],
        [0.60, 0.70, 0.00, 0.20, 0.20],
        [0.40, 0.70, 0.20, 0.00, 0.50],
        [0.35, 0.70, 0.20, 0.50, 0.00],
    ])
    pool = names(5)
    facts = PoolFacts(pool, fsd)
    row_mean = fsd.sum(axis=1) / 4
    order = sorted((i for i in range(1, 5)), key=lambda i: (row_mean[i], i))
    by_fsd_to_target = sorted(range(1, 5), key=lambda i: fsd[0, i])
    assert order != by_fsd_to_target, "the test tells Alg. 1's row means from the FSD to the target"
    measured = exhaustive(pool, lambda t, p: 0.5 + 0.01 * len(p))
    result = search("greedy_fsd", SearchSpace("d0", facts), StoreOracle(measured), 10)
    expected = [tuple(sorted(["d0", *(pool[i] for i in order[:size])])) for size in range(0, 5)]
    assert [s.candidate.subset for s in result.steps] == expected
    assert all("row-mean FSD" in s.why for s in result.steps[1:])
    short = search("greedy_fsd", SearchSpace("d0", facts), StoreOracle(measured), 3)
    assert [s.candidate.subset for s in short.steps] == expected[:3]
    # min_k = 3 starts at the target plus two partners
    mk = search("greedy_fsd", SearchSpace("d0", facts, min_k=3), StoreOracle(measured), 10)
    assert [s.candidate.subset for s in mk.steps] == [expected[0], *expected[2:]]


def test_adaptersoup_follows_the_similarity_order_and_needs_the_matrix():
    facts = random_facts(7, seed=3, similarity=False)
    sim = np.eye(7)
    row = {"d1": 0.2, "d2": 0.5, "d3": 0.9, "d4": 0.3, "d5": -0.1, "d6": 0.7}  # d5 under 0.15
    for j, v in row.items():
        i = POOL.index(j)
        sim[0, i] = sim[i, 0] = v
    measured = exhaustive(POOL, lambda t, p: 0.5 + 0.01 * len(p))
    with_sim = PoolFacts(facts.names, facts.fsd, sim)
    result = search("adaptersoup", SearchSpace("d0", with_sim), StoreOracle(measured), 20)
    chosen = ["d3", "d6", "d2", "d4"]  # most similar first; at most 5 adapters with the target (d1 is 5th)
    assert [s.candidate.subset for s in result.steps] == [
        tuple(sorted(["d0", *chosen[:size]])) for size in range(0, 5)]
    with pytest.raises(ConfigError, match="needs the dataset similarity"):
        search("adaptersoup", SearchSpace("d0", facts), StoreOracle(measured), 5)


# ------------------------------------------------------------------------------------------ priors and errors


def test_prior_mixtures_of_the_searched_target_are_ignored(world):
    measured, facts = world
    space = SearchSpace("d2", facts)
    own = [m for m in measured if m.candidate.target == "d2"]
    others = [m for m in measured if m.candidate.target != "d2"]

    def run(prior):
        oracle = StoreOracle(measured)
        return search("model", space, oracle, 8, seed=0, prior=prior), oracle

    cold, _ = run([])
    own_only, o1 = run(own)
    assert own_only.steps == cold.steps and o1.calls == len(own_only.steps), \
        "the target's own stored mixtures are not free evaluations"
    warm, _ = run(others)
    warm_own, o2 = run([*others, *own])
    assert warm_own.steps == warm.steps and o2.calls == len(warm_own.steps) <= 8
    assert warm.steps != cold.steps, "the other targets' mixtures do reach the model"


def test_compare_strategies_needs_an_exhaustive_store(world):
    measured, facts = world
    gone = next(m for m in measured if m.candidate.target == "d3" and m.candidate.k == 3)
    holed = [m for m in measured if m is not gone]
    with pytest.raises(ConfigError, match=r"not exhaustive for 'd3'.*\(1 of 64\)"):
        compare_strategies(holed, facts, budget=5, strategies=["random"])


def test_search_errors(world):
    measured, facts = world
    space = SearchSpace("d0", facts)
    with pytest.raises(ConfigError, match="budget must be at least 1"):
        search("model", space, StoreOracle(measured), 0)
    with pytest.raises(AdapterMixError, match="unknown search strategy 'nosuch'"):
        search("nosuch", space, StoreOracle(measured), 5)
    with pytest.raises(ConfigError, match="returned 0 results for 1"):
        search("random", space, lambda cands: [], 5)
    with pytest.raises(ConfigError, match="was not measured in the store"):
        search("random", space, StoreOracle([m for m in measured if m.candidate.k == 1]), 5)
    with pytest.raises(ConfigError, match="not in the pool"):
        SearchSpace("zz", facts)


def test_model_and_random_choose_among_every_rule(world):
    measured, facts = world
    ties = RuleSpec(name="ties", params={"density": 0.5})
    both = measured + [Measured(Candidate(m.candidate.target, m.candidate.subset, "ties", {"density": 0.5}),
                                m.metric + (0.01 if m.candidate.k >= 3 else 0.0), m.target_sign_change)
                       for m in measured]
    space = SearchSpace("d1", facts, (RuleSpec(name="average"), ties))
    assert len(space.candidates) == 128
    for strategy in ("model", "random"):
        result = search(strategy, space, StoreOracle(both), 20, seed=1)
        assert len(set(_keys(result))) == len(result.steps) == 20
        assert {s.candidate.rule for s in result.steps} == {"average", "ties"}, strategy
    # subset strategies use the first rule only
    greedy = search("greedy_fsd", space, StoreOracle(both), 20)
    assert {s.candidate.rule for s in greedy.steps} == {"average"}
