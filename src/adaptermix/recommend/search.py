"""Budgeted search for the best mixture of a target: at most B evaluations, and the strategies to beat.

A search sees a :class:`SearchSpace` (the target, every candidate mixture that contains it — each subset
under each rule spec — and the pool's evaluation-free facts) and an ``evaluate`` function that measures
candidates. It may call ``evaluate`` for at most ``budget`` candidates in all, the target's own adapter
(k = 1) first: every strategy's answer is compared with it. Strategies register in :data:`STRATEGIES`:

- ``model`` (ours): a few pairs with the target (smallest FSD first) teach the predictor of
  :mod:`adaptermix.recommend.predictor` the partners' effects; then each next evaluation is the candidate
  with the highest upper confidence bound (prediction + ``kappa`` x bootstrap spread). Measured mixtures of
  *other* targets (``prior``) are fitted too, when given.
- ``greedy_fsd``: Alg. 1 (Nguyen & Le 2024) — the target, then partners by smallest row-mean FSD, one size
  after the other.
- ``adaptersoup``: AdapterSoup's similarity selection (Chronopoulou et al. 2023) — partners in order of
  dataset similarity (cosine > 0.15, at most 5 adapters); each prefix is evaluated, the best kept.
- ``evolve``: a (mu + lambda) evolutionary search over subsets, the discrete analogue of mergekit-evolve
  (which runs CMA-ES over merge weights); bit-flip mutation and uniform crossover, seeded.
- ``random``: distinct candidates drawn uniformly — the control every strategy must beat.

Subset strategies (greedy, AdapterSoup, evolve) use the space's first rule; ``model`` and ``random``
choose among every rule of the space.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from adaptermix.core.errors import ConfigError
from adaptermix.core.registry import Registry
from adaptermix.recommend.features import (
    Candidate,
    Measured,
    PoolFacts,
    feature_columns,
    feature_row,
    singles,
)
from adaptermix.recommend.predictor import MixturePredictor
from adaptermix.sweep.spec import RuleSpec

Evaluate = Callable[[Sequence[Candidate]], list[Measured]]
#: The sign change of a candidate's mixture for the target, from the weights (``None``: not known).
SignChange = Callable[[Candidate], float | None]

#: Most subsets a search space enumerates (2^(N-1) per rule): 14 domains under 2 rules.
MAX_CANDIDATES = 2 ** 14


@dataclass(frozen=True)
class SearchSpace:
    """Every candidate of one target: each subset that contains it, under each rule spec."""

    target: str
    facts: PoolFacts
    rules: tuple[RuleSpec, ...] = (RuleSpec(name="average"),)
    sign_change: SignChange | None = None
    #: Smallest mixture that may be recommended. In-domain, the target's own adapter alone is usually the
    #: best "mixture" (the paper's finding); ``min_k=2`` asks for the best mixture that really mixes.
    min_k: int = 1
    candidates: tuple[Candidate, ...] = field(init=False)

    def __post_init__(self) -> None:
        self.facts.index(self.target)
        if not self.rules:
            raise ConfigError("a search needs at least one rule")
        others = [n for n in self.facts.names if n != self.target]
        if not 1 <= self.min_k <= len(others) + 1:
            raise ConfigError(f"min_k must be between 1 and the pool size ({len(others) + 1})")
        total = 2 ** len(others) * len(self.rules)
        if total > MAX_CANDIDATES:
            raise ConfigError(f"{total} candidates ({len(others) + 1} adapters x {len(self.rules)} rules); "
                              f"the search enumerates at most {MAX_CANDIDATES}: use a smaller pool")
        cands = [Candidate(self.target, (self.target, *extra), r.name, r.params)
                 for r in self.rules for k in range(max(self.min_k - 1, 0), len(others) + 1)
                 for extra in itertools.combinations(others, k)]
        object.__setattr__(self, "candidates", tuple(cands))

    @property
    def single(self) -> Candidate:
        """The target's own adapter under the first rule: always evaluated first."""
        r = self.rules[0]
        return Candidate(self.target, (self.target,), r.name, r.params)

    def with_partners(self, partners: Sequence[str], rule: RuleSpec | None = None) -> Candidate:
        r = rule or self.rules[0]
        return Candidate(self.target, (self.target, *partners), r.name, r.params)


@dataclass(frozen=True)
class Step:
    """One evaluation of a search: what, the measured metric, and why it was chosen."""

    candidate: Candidate
    metric: float
    why: str


@dataclass
class SearchResult:
    """What a search tried, in order, and the best it measured."""

    strategy: str
    target: str
    budget: int
    min_k: int = 1
    steps: list[Step] = field(default_factory=list)
    candidates: int = 0  # the search space's size
    new_evaluations: int = 0  # evaluations run, and read from the store, by a live search
    reused_evaluations: int = 0

    @property
    def single(self) -> float:
        return self.steps[0].metric

    @property
    def best(self) -> Step:
        """Highest measured metric of a mixture of at least ``min_k`` adapters; ties to the smaller
        mixture, then the earlier evaluation. With ``min_k`` > 1 and nothing that large measured: the single."""
        steps = [s for s in self.steps if s.candidate.k >= self.min_k] or self.steps[:1]
        return max(steps, key=lambda s: (s.metric, -s.candidate.k, -self.steps.index(s)))

    def as_dict(self) -> dict[str, Any]:
        best = self.best
        return {
            "strategy": self.strategy, "target": self.target, "budget": self.budget, "min_k": self.min_k,
            "evaluations": len(self.steps), "single": self.single,
            "best": {"subset": list(best.candidate.subset), "rule": best.candidate.rule,
                     "rule_params": dict(best.candidate.rule_params), "metric": best.metric},
            "tried": [{"subset": list(s.candidate.subset), "rule": s.candidate.rule_label, "metric": s.metric,
                       "why": s.why} for s in self.steps],
        }


class _Run:
    """Bookkeeping shared by the strategies: the budget, what was measured, no candidate twice."""

    def __init__(self, space: SearchSpace, evaluate: Evaluate, budget: int, strategy: str) -> None:
        self.space, self.evaluate, self.budget = space, evaluate, budget
        self.result = SearchResult(strategy, space.target, budget, space.min_k, candidates=len(space.candidates))
        self.measured: dict[str, Measured] = {}

    @property
    def left(self) -> int:
        return self.budget - len(self.result.steps)

    def seen(self, c: Candidate) -> bool:
        return c.key in self.measured

    def run(self, cands: Sequence[Candidate], why: str) -> list[Measured]:
        fresh = list(dict.fromkeys(c for c in cands if not self.seen(c)))[: max(self.left, 0)]
        if not fresh:
            return []
        out = self.evaluate(fresh)
        if len(out) != len(fresh):
            raise ConfigError(f"evaluate returned {len(out)} results for {len(fresh)} candidates")
        for c, m in zip(fresh, out, strict=True):
            self.measured[c.key] = m
            self.result.steps.append(Step(c, m.metric, why))
        return out


Strategy = Callable[[_Run, int, Sequence[Measured]], None]
STRATEGIES: Registry[Strategy] = Registry("search strategy")


def _fsd_order(space: SearchSpace) -> list[str]:
    """Partners of the target by smallest FSD to it (ties by name)."""
    t = space.facts.index(space.target)
    return sorted((n for n in space.facts.names if n != space.target),
                  key=lambda n: (float(space.facts.fsd[t, space.facts.index(n)]), n))


def _greedy(run: _Run, seed: int, prior: Sequence[Measured]) -> None:
    from adaptermix.merging.fsd_rules import partners_by_fsd

    names = list(run.space.facts.names)
    fsd = run.space.facts.fsd
    row_means = [float((fsd[i].sum() - fsd[i, i]) / max(len(names) - 1, 1)) for i in range(len(names))]
    order = [names[i] for i in partners_by_fsd(row_means, names.index(run.space.target))]
    for size in range(max(run.space.min_k - 1, 1), len(order) + 1):
        if run.left <= 0:
            return
        run.run([run.space.with_partners(order[:size])], f"Alg. 1: {size} partner(s) by row-mean FSD")


def _adaptersoup(run: _Run, seed: int, prior: Sequence[Measured]) -> None:
    from adaptermix.recommend.adaptersoup import select_by_similarity_matrix

    facts = run.space.facts
    if facts.similarity is None:
        raise ConfigError("the adaptersoup strategy needs the dataset similarity (analysis/similarity.json)")
    chosen = select_by_similarity_matrix(facts.similarity, facts.names, run.space.target).adapters[1:]
    for size in range(max(run.space.min_k - 1, 1), len(chosen) + 1):
        if run.left <= 0:
            return
        run.run([run.space.with_partners(chosen[:size])], f"AdapterSoup: {size} most similar (cos > 0.15)")


def _random(run: _Run, seed: int, prior: Sequence[Measured]) -> None:
    rng = np.random.default_rng(seed)
    pool = [c for c in run.space.candidates if not run.seen(c)]
    for i in rng.permutation(len(pool))[: max(run.left, 0)]:
        run.run([pool[int(i)]], "random (control)")


def _evolve(run: _Run, seed: int, prior: Sequence[Measured], mu: int = 3, lam: int = 3) -> None:
    rng = np.random.default_rng(seed)
    others = [n for n in run.space.facts.names if n != run.space.target]
    if not others:
        return

    def cand(bits: np.ndarray) -> Candidate:
        return run.space.with_partners([o for o, b in zip(others, bits, strict=True) if b])

    start = np.zeros(len(others), dtype=bool)
    start[rng.permutation(len(others))[: max(run.space.min_k - 1, 0)]] = True
    parents: list[tuple[float, np.ndarray]] = [(run.result.single, start)]
    tries = 0
    while run.left > 0 and tries < 50 * run.budget:
        children: list[np.ndarray] = []
        for _ in range(lam):
            tries += 1
            a = parents[int(rng.integers(len(parents)))][1]
            b = parents[int(rng.integers(len(parents)))][1]
            child = np.where(rng.random(len(others)) < 0.5, a, b)  # uniform crossover
            flips = rng.random(len(others)) < 1.0 / len(others)
            flips[int(rng.integers(len(others)))] = True  # at least one bit-flip mutation
            child = child ^ flips
            if child.sum() + 1 < run.space.min_k:
                continue
            if not run.seen(cand(child)) and all(not np.array_equal(child, c) for c in children):
                children.append(child)
        for child in children:
            measured = run.run([cand(child)], "evolve: mutation/crossover of the best so far")
            if measured:
                parents.append((measured[0].metric, child))
        parents = sorted(parents, key=lambda p: -p[0])[:mu]


def _model(run: _Run, seed: int, prior: Sequence[Measured], kappa: float = 1.0, n_boot: int = 16) -> None:
    space = run.space
    facts = space.facts
    labels = sorted({c.rule_label for c in space.candidates})
    extra = labels[1:] if len(labels) > 1 else []
    columns = feature_columns(facts, extra)
    prior = [m for m in prior if m.candidate.target != space.target
             and all(n in facts.names for n in m.candidate.subset)]
    # Cold start: pairs with the target, smallest FSD first, teach the partners' effects.
    n_pairs = min(len(facts.names) - 1, max(run.budget // 2 - 1, 1) if not prior else 2)
    for partner in _fsd_order(space)[:n_pairs]:
        if run.left <= 0:
            return
        run.run([space.with_partners([partner])], "model: a pair, to learn this partner's effect")
    tsc: dict[str, float | None] = {}

    def sign_change(c: Candidate) -> float | None:
        if c.key not in tsc:
            tsc[c.key] = space.sign_change(c) if space.sign_change is not None else None
        return tsc[c.key]

    while run.left > 0:
        known = [*prior, *run.measured.values()]
        single = singles(known)
        single[space.target] = run.result.single
        rows = [m for m in known if m.candidate.target in single and m.candidate.rule_label in labels]
        x = np.asarray([feature_row(m.candidate, facts, single, m.target_sign_change, extra) for m in rows])
        y = np.asarray([(m.metric - single[m.candidate.target]) * 100.0 for m in rows])
        model = MixturePredictor(columns, n_boot=n_boot, seed=seed).fit(x, y)
        todo = [c for c in space.candidates if not run.seen(c)]
        if not todo:
            return
        xc = np.asarray([feature_row(c, facts, single, sign_change(c), extra) for c in todo])
        mean, std = model.predict_with_std(xc)
        ucb = mean + kappa * std
        best = int(np.argmax(ucb))
        run.run([todo[best]], f"model: predicted {mean[best]:+.1f} ± {std[best]:.1f} pts vs the single adapter")


STRATEGIES.register("model", _model)
STRATEGIES.register("greedy_fsd", _greedy)
STRATEGIES.register("adaptersoup", _adaptersoup)
STRATEGIES.register("evolve", _evolve)
STRATEGIES.register("random", _random)


def search(strategy: str, space: SearchSpace, evaluate: Evaluate, budget: int, *, seed: int = 0,
           prior: Sequence[Measured] = ()) -> SearchResult:
    """Run one strategy within ``budget`` evaluations (the single adapter included) and return what it tried.

    ``prior`` holds measured mixtures of *other* targets the ``model`` strategy may learn from; mixtures of
    the space's own target in ``prior`` are ignored (they would be free evaluations)."""
    fn = STRATEGIES.get(strategy)
    if budget < 1:
        raise ConfigError("the budget must be at least 1 evaluation (the single adapter)")
    run = _Run(space, evaluate, budget, strategy)
    run.run([space.single], "the target's own adapter (k = 1)")
    fn(run, seed, prior)
    return run.result


# ------------------------------------------------------------------------------------------ simulation


class StoreOracle:
    """``evaluate`` backed by measured mixtures (e.g. an exhaustive sweep's store): counts every lookup.

    Used to compare strategies against the exhaustive optimum without re-running a single evaluation."""

    def __init__(self, measured: Sequence[Measured]) -> None:
        self.by_key = {m.candidate.key: m for m in measured}
        self.calls = 0

    def __call__(self, cands: Sequence[Candidate]) -> list[Measured]:
        out = []
        for c in cands:
            if c.key not in self.by_key:
                raise ConfigError(f"{c.describe()} was not measured in the store")
            out.append(self.by_key[c.key])
        self.calls += len(out)
        return out

    def best(self, target: str, rule_labels: Sequence[str] | None = None, min_k: int = 1) -> Measured:
        ms = [m for m in self.by_key.values() if m.candidate.target == target and m.candidate.k >= min_k
              and (rule_labels is None or m.candidate.rule_label in rule_labels)]
        return max(ms, key=lambda m: (m.metric, -m.candidate.k))


@dataclass(frozen=True)
class Comparison:
    """One strategy on one target: the best it found against the exhaustive best, in points."""

    strategy: str
    target: str
    seed: int
    evaluations: int
    exhaustive: int
    found: float
    optimum: float
    single: float

    @property
    def gap_points(self) -> float:
        return (self.optimum - self.found) * 100.0


def compare_strategies(
    measured: Sequence[Measured], facts: PoolFacts, budget: int, strategies: Sequence[str],
    seeds: Sequence[int] = (0,), use_prior: bool = False, rules: Sequence[RuleSpec] = (RuleSpec(name="average"),),
    min_k: int = 1,
) -> list[Comparison]:
    """Every strategy on every target of an exhaustive store, evaluations looked up in it.

    ``use_prior`` lets ``model`` learn from the *other* targets' mixtures (leave-one-target-out), as a user
    who has swept some domains would; without it every search starts cold."""
    oracle = StoreOracle(measured)
    labels = [Candidate("x", ("x",), r.name, r.params).rule_label for r in rules]
    out = []
    for target in sorted({m.candidate.target for m in measured}):
        space = SearchSpace(target, facts, tuple(rules), min_k=min_k)
        missing = [c for c in space.candidates if c.key not in oracle.by_key]
        if missing:
            raise ConfigError(f"the store is not exhaustive for {target!r}: {missing[0].describe()} is missing "
                              f"({len(missing)} of {len(space.candidates)})")
        prior = [m for m in measured if m.candidate.target != target] if use_prior else []
        optimum = oracle.best(target, labels, min_k).metric
        for strategy in strategies:
            for seed in seeds:
                res = search(strategy, space, oracle, budget, seed=seed, prior=prior)
                out.append(Comparison(strategy, target, seed, len(res.steps), len(space.candidates),
                                      res.best.metric, optimum, res.single))
    return out


def summarise(comparisons: Sequence[Comparison]) -> list[dict[str, Any]]:
    """Per strategy: mean gap to the exhaustive best (points), how often within 1 point, mean evaluations."""
    rows = []
    for strategy in dict.fromkeys(c.strategy for c in comparisons):
        cs = [c for c in comparisons if c.strategy == strategy]
        rows.append({
            "strategy": strategy,
            "mean_gap_points": round(float(np.mean([c.gap_points for c in cs])), 2),
            "worst_gap_points": round(float(np.max([c.gap_points for c in cs])), 2),
            "within_1_point": f"{sum(c.gap_points <= 1.0 + 1e-9 for c in cs)}/{len(cs)}",
            "mean_gain_over_single_points": round(float(np.mean([(c.found - c.single) * 100 for c in cs])), 2),
            "evaluations": round(float(np.mean([c.evaluations for c in cs])), 1),
            "of_exhaustive": cs[0].exhaustive,
        })
    return rows


def budget_for(fraction: float, exhaustive: int) -> int:
    """The evaluations allowed by a fraction of the exhaustive sweep (at least 1: the single adapter)."""
    return max(1, math.floor(fraction * exhaustive + 1e-9))
