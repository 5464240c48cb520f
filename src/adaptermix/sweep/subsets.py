"""Subset generators: which mixtures of the adapter pool a sweep evaluates for one target domain.

Everything here works on pool *indices* (0..N-1) and returns subsets as sorted tuples of indices that
always contain the target (the in-domain setting of Nguyen & Le 2024, Section 3.4: every mixture of a
target includes the target's own adapter). Each generator registers itself in one line in
:data:`SUBSET_GENERATORS`, with a closed form for how many subsets it yields per k, so a sweep can say how
big it is before anything runs (:func:`count_subsets`).

- ``all``: exact enumeration, ``C(N-1, k-1)`` subsets of size k, ``2^(N-1)`` per target.
- ``sample``: per k, ``min(M, C(N-1, k-1))`` distinct subsets drawn uniformly without replacement, seeded.
  k = 1 and k = N have exactly one subset each, so they are always included.
- ``greedy`` / ``greedy_max``: Alg. 1 (Greedy Adapter Mixing) order, one subset per size l = 1..N.
- ``adaptersoup_similarity`` / ``adaptersoup_cluster``: AdapterSoup's selection for the target
  (:mod:`adaptermix.sweep.soup`), target first, then one subset per prefix length l = 1..L of the selection
  (L <= ``subsets.adaptersoup.max_adapters``); the full selection is AdapterSoup's own mixture.
- ``adaptive``: nothing planned ahead; the runner searches each target's subsets with
  :func:`adaptermix.recommend.search.search` within ``budget`` evaluations (``dynamic``: the subsets depend
  on what was measured). Its trials are ordinary population trials (empty tag), so an exhaustive sweep of
  the same spec reuses them.
"""

from __future__ import annotations

import functools
import itertools
import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from adaptermix.core.errors import ConfigError
from adaptermix.core.registry import Registry

Subset = tuple[int, ...]


@dataclass(frozen=True)
class SubsetRequest:
    """Everything a generator may use: pool size, target index, and the generator's options."""

    n_pool: int
    target: int
    per_k: int | None = None
    seed: int = 0
    fsd: np.ndarray | None = None
    #: generator -> its selection for this target (pool indices in order, the target first): AdapterSoup's.
    selections: Mapping[str, tuple[int, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class SubsetGenerator:
    """A named way to pick subsets, with its closed-form size.

    ``tag`` is copied onto every trial the generator produces. Population generators (``all``,
    ``sample``) have the empty tag, so the same subset drawn by either gives the same trial key and is
    evaluated once; the greedy generators tag their trials so statistics can tell them apart (Fig. 7).
    """

    name: str
    tag: str
    needs_fsd: bool
    needs_per_k: bool
    generate: Callable[[SubsetRequest], list[Subset]]
    count_by_k: Callable[[int, int | None], dict[int, int]]
    description: str
    dynamic: bool = False
    #: Follows a selection the runner computes before expanding (SubsetRequest.selections[name]).
    needs_selection: bool = False


SUBSET_GENERATORS: Registry[SubsetGenerator] = Registry("subset generator")


def _others(n_pool: int, target: int) -> list[int]:
    return [i for i in range(n_pool) if i != target]


def _with_target(target: int, others: tuple[int, ...] | list[int]) -> Subset:
    return tuple(sorted((target, *others)))


def _check_request(req: SubsetRequest) -> None:
    if req.n_pool < 1:
        raise ConfigError("the adapter pool is empty")
    if not 0 <= req.target < req.n_pool:
        raise ConfigError(f"target index {req.target} is outside a pool of {req.n_pool}")


# ---------------------------------------------------------------------------------------------- all


def _generate_all(req: SubsetRequest) -> list[Subset]:
    """Every subset containing the target, by k then lexicographically."""
    _check_request(req)
    others = _others(req.n_pool, req.target)
    return [
        _with_target(req.target, combo)
        for k in range(1, req.n_pool + 1)
        for combo in itertools.combinations(others, k - 1)
    ]


def _count_all(n_pool: int, per_k: int | None) -> dict[int, int]:
    return {k: math.comb(n_pool - 1, k - 1) for k in range(1, n_pool + 1)}


# ------------------------------------------------------------------------------------------- sample


def unrank_combination(rank: int, n: int, r: int) -> tuple[int, ...]:
    """The ``rank``-th r-combination of ``range(n)`` in lexicographic order (combinatorial number system).

    O(n) big-integer steps, so one uniformly random rank in ``range(C(n, r))`` gives one uniformly random
    combination without enumerating the others — what makes ``sample`` cheap when C(n, r) is huge.
    """
    total = math.comb(n, r)
    if not 0 <= rank < total:
        raise ValueError(f"rank {rank} outside [0, C({n}, {r}) = {total})")
    out: list[int] = []
    x = 0
    for remaining in range(r, 0, -1):
        # Skip whole blocks of combinations that start with x while the rank lies beyond them.
        while (block := math.comb(n - x - 1, remaining - 1)) <= rank:
            rank -= block
            x += 1
        out.append(x)
        x += 1
    return tuple(out)


def _distinct_ranks(rng: random.Random, total: int, m: int) -> set[int]:
    """``m`` distinct integers drawn uniformly from ``range(total)``, for any size of ``total``.

    When ``m <= total / 2``: draw with a seen-set and redraw repeats (fewer than 2 draws per rank on
    average; works for totals beyond 2**63, where ``random.sample(range(total))`` cannot take ``len``).
    Otherwise ``total < 2m`` is small and :func:`random.sample` picks directly.
    """
    if 2 * m > total:
        return set(rng.sample(range(total), m))
    seen: set[int] = set()
    while len(seen) < m:
        seen.add(rng.randrange(total))
    return seen


def _generate_sample(req: SubsetRequest) -> list[Subset]:
    """Per k, up to ``per_k`` distinct subsets drawn uniformly without replacement.

    Distinct combination ranks are drawn uniformly (:func:`_distinct_ranks`) and unranked, so the draw is
    exactly uniform, never repeats, and costs O(per_k * N) whatever C(N-1, k-1) is: nothing is enumerated. Each (seed, pool size,
    target, k) has its own string-seeded RNG (SHA-512 based, independent of PYTHONHASHSEED), so adding
    a k or a target never changes the draws of the others.
    """
    _check_request(req)
    if req.per_k is None or req.per_k < 1:
        raise ConfigError("subset generator 'sample' needs subsets.per_k >= 1")
    others = _others(req.n_pool, req.target)
    out: list[Subset] = []
    for k in range(1, req.n_pool + 1):
        total = math.comb(len(others), k - 1)
        rng = random.Random(f"adaptermix-sample:{req.seed}:{req.n_pool}:{req.target}:{k}")
        ranks = sorted(_distinct_ranks(rng, total, min(req.per_k, total)))
        out.extend(
            _with_target(req.target, [others[j] for j in unrank_combination(rank, len(others), k - 1)])
            for rank in ranks
        )
    return out


def _count_sample(n_pool: int, per_k: int | None) -> dict[int, int]:
    if per_k is None or per_k < 1:
        raise ConfigError("subset generator 'sample' needs subsets.per_k >= 1")
    return {k: min(per_k, math.comb(n_pool - 1, k - 1)) for k in range(1, n_pool + 1)}


# ------------------------------------------------------------------------------------------- greedy


def fsd_row_means(fsd: np.ndarray) -> np.ndarray:
    """Alg. 1 line 3, ``mean(S, axis=1)``, over the off-diagonal entries.

    The diagonal of an FSD matrix is 0 (an adapter never differs in sign from itself), so excluding it
    only rescales every row mean by (N-1)/N and leaves Alg. 1's order unchanged; excluding it also keeps
    the order right for a matrix whose diagonal was left unset.
    """
    n = fsd.shape[0]
    if n == 1:
        return np.zeros(1)
    off = ~np.eye(n, dtype=bool)
    return (fsd * off).sum(axis=1) / (n - 1)


def check_fsd_matrix(fsd: np.ndarray | None, n_pool: int, generator: str) -> np.ndarray:
    """Validate an N x N finite FSD matrix for ``generator``; a one-line :class:`ConfigError` otherwise."""
    if fsd is None:
        raise ConfigError(f"subset generator {generator!r} needs the pool's FSD matrix")
    arr = np.asarray(fsd, dtype=np.float64)
    if arr.shape != (n_pool, n_pool):
        raise ConfigError(f"FSD matrix has shape {arr.shape}, expected ({n_pool}, {n_pool}) for the pool")
    if not np.isfinite(arr).all():
        raise ConfigError("FSD matrix has NaN or infinite entries")
    return arr


def _greedy(req: SubsetRequest, *, largest: bool, name: str) -> list[Subset]:
    """Alg. 1 for the in-domain setting: the target is always in the mixture.

    Deviation from the paper, on purpose: Alg. 1 picks the l adapters with the smallest row-mean FSD out
    of all N, which need not include the target. An in-domain mixture is evaluated with the target's
    head and is meant to contain the target's adapter (Section 3.4), so the greedy mixture of size l is
    the target plus the l-1 *other* adapters with the smallest (``greedy``) or largest (``greedy_max``)
    row-mean FSD; ties are broken by pool index so the order is deterministic. Subsets are nested in l.
    """
    _check_request(req)
    from adaptermix.merging.fsd_rules import partners_by_fsd  # here: planning a spec stays torch-free

    means = fsd_row_means(check_fsd_matrix(req.fsd, req.n_pool, name))
    ranked = partners_by_fsd(means.tolist(), req.target, largest)
    return [_with_target(req.target, ranked[: size - 1]) for size in range(1, req.n_pool + 1)]


def _count_greedy(n_pool: int, per_k: int | None) -> dict[int, int]:
    return {k: 1 for k in range(1, n_pool + 1)}


SUBSET_GENERATORS.register(
    "all",
    SubsetGenerator("all", "", False, False, _generate_all, _count_all, "every subset containing the target"),
)
SUBSET_GENERATORS.register(
    "sample",
    SubsetGenerator(
        "sample", "", False, True, _generate_sample, _count_sample, "per k, up to per_k uniform subsets"
    ),
)
SUBSET_GENERATORS.register(
    "greedy",
    SubsetGenerator(
        "greedy",
        "greedy_min",
        True,
        False,
        lambda req: _greedy(req, largest=False, name="greedy"),
        _count_greedy,
        "Alg. 1: target + the l-1 adapters with the smallest row-mean FSD",
    ),
)
SUBSET_GENERATORS.register(
    "greedy_max",
    SubsetGenerator(
        "greedy_max",
        "greedy_max",
        True,
        False,
        lambda req: _greedy(req, largest=True, name="greedy_max"),
        _count_greedy,
        "Alg. 1 maximising FSD: target + the l-1 adapters with the largest row-mean FSD",
    ),
)


# -------------------------------------------------------------------------------------- adaptersoup


def _adaptersoup(req: SubsetRequest, name: str) -> list[Subset]:
    """The target alone, then each prefix of AdapterSoup's selection (in selection order): subsets nested
    in l, so Fig. 7 compares them with greedy and random mixtures of equal size."""
    _check_request(req)
    chosen = req.selections.get(name)
    if chosen is None:
        raise ConfigError(f"subset generator {name!r} needs AdapterSoup's selection (computed by the runner)")
    if not chosen or chosen[0] != req.target or len(set(chosen)) != len(chosen):
        raise ConfigError(f"selection of {name!r} must start with the target and not repeat an adapter")
    if any(not 0 <= i < req.n_pool for i in chosen):
        raise ConfigError(f"selection of {name!r} names an adapter outside a pool of {req.n_pool}")
    return [_with_target(req.target, chosen[1:size]) for size in range(1, len(chosen) + 1)]


for _name, _tag, _what in (
    ("adaptersoup_similarity", "adaptersoup_similarity",
     "AdapterSoup by centroid similarity: target + the l-1 most similar domains with cosine > threshold"),
    ("adaptersoup_cluster", "adaptersoup_cluster",
     "AdapterSoup by clustering: target + the l-1 domains whose clusters take >= min_share of its texts"),
):
    SUBSET_GENERATORS.register(
        _name,
        SubsetGenerator(_name, _tag, False, False, functools.partial(_adaptersoup, name=_name), _count_greedy,
                        _what, needs_selection=True),
    )


SUBSET_GENERATORS.register(
    "adaptive",
    SubsetGenerator(
        "adaptive", "", False, False, lambda req: [], lambda n, per_k: {},
        "a budgeted search per target (subsets.budget evaluations, subsets.strategy), chosen as results come in",
        dynamic=True,
    ),
)


def generate_subsets(generator: str, request: SubsetRequest) -> list[Subset]:
    """Subsets of the pool for one target from the named generator."""
    return SUBSET_GENERATORS.get(generator).generate(request)


def count_subsets_by_k(generator: str, n_pool: int, per_k: int | None = None) -> dict[int, int]:
    """Closed form: how many subsets ``generator`` yields per k for one target of a pool of ``n_pool``."""
    if n_pool < 1:
        raise ConfigError("the adapter pool is empty")
    return SUBSET_GENERATORS.get(generator).count_by_k(n_pool, per_k)


def count_subsets(generator: str, n_pool: int, per_k: int | None = None) -> int:
    """Closed form: how many subsets ``generator`` yields for one target (``2^(N-1)`` for ``all``)."""
    return sum(count_subsets_by_k(generator, n_pool, per_k).values())
