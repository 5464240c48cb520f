"""Synthetic exhaustive "stores" for the recommend tests: every mixture of a small pool, measured by a
known function (the target's single metric plus additive per-partner effects), and the pool's facts."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import numpy as np

from adaptermix.recommend.features import Candidate, Measured, PoolFacts


def names(n: int) -> tuple[str, ...]:
    return tuple(f"d{i}" for i in range(n))


def random_facts(n: int, seed: int = 0, similarity: bool = True) -> PoolFacts:
    """A symmetric FSD matrix in [0.3, 0.7] with a zero diagonal, and a symmetric similarity in [-0.2, 0.9]
    with ones on the diagonal."""
    rng = np.random.default_rng(seed)
    fsd = rng.uniform(0.3, 0.7, (n, n))
    fsd = (fsd + fsd.T) / 2
    np.fill_diagonal(fsd, 0.0)
    sim = None
    if similarity:
        sim = rng.uniform(-0.2, 0.9, (n, n))
        sim = (sim + sim.T) / 2
        np.fill_diagonal(sim, 1.0)
    return PoolFacts(names(n), fsd, sim)


def exhaustive(
    pool: Sequence[str],
    metric: Callable[[str, tuple[str, ...]], float],
    targets: Sequence[str] | None = None,
    rule: str = "average",
    sign_change: Callable[[str, tuple[str, ...]], float | None] | None = None,
) -> list[Measured]:
    """Every subset of ``pool`` containing each target, measured by ``metric(target, partners)``."""
    out = []
    for t in targets or pool:
        others = [n for n in pool if n != t]
        for k in range(len(others) + 1):
            for partners in itertools.combinations(others, k):
                tsc = 0.0 if not partners else (sign_change(t, partners) if sign_change else 0.1 * k)
                out.append(Measured(Candidate(t, (t, *partners), rule), metric(t, partners), tsc))
    return out


def additive_world(n: int, seed: int = 0, scale: float = 0.03) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Singles in [0.5, 0.9] and per-(target, partner) effects, zero-mean within each target."""
    rng = np.random.default_rng(seed)
    pool = names(n)
    single = {t: float(rng.uniform(0.5, 0.9)) for t in pool}
    effects: dict[str, dict[str, float]] = {}
    for t in pool:
        raw = rng.normal(0.0, scale, n - 1)
        raw -= raw.mean()
        effects[t] = {j: float(e) for j, e in zip([p for p in pool if p != t], raw, strict=True)}
    return single, effects


def additive_metric(single: dict[str, float], effects: dict[str, dict[str, float]]):
    def metric(t: str, partners: tuple[str, ...]) -> float:
        return single[t] + sum(effects[t][j] for j in partners)

    return metric
