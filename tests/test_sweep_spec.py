"""Sweep spec, subset generators, trial keys and sharding (no model needed)."""

from __future__ import annotations

import hashlib
import itertools
import math
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from adaptermix.config import validate
from adaptermix.errors import ConfigError
from adaptermix.sweep.spec import (
    MAX_TRIALS,
    SweepSpec,
    Trial,
    describe_expansion,
    expand,
    load_spec,
    parse_shard,
    shard,
)
from adaptermix.sweep.subsets import (
    SUBSET_GENERATORS,
    SubsetRequest,
    count_subsets,
    count_subsets_by_k,
    generate_subsets,
    unrank_combination,
)

NAMES = ["ag", "imdb", "mrpc", "rte", "sst2"]


def fsd_for(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    m = rng.uniform(0.05, 0.5, size=(n, n))
    m = (m + m.T) / 2
    np.fill_diagonal(m, 0.0)
    return m


def request(n: int, target: int, **kw: object) -> SubsetRequest:
    return SubsetRequest(n, target, per_k=kw.get("per_k", 3), seed=kw.get("seed", 0), fsd=fsd_for(n))  # type: ignore[arg-type]


# --------------------------------------------------------------------------------- subset generators


# Generators planned from the pool alone (AdapterSoup's follow a selection: tests/test_sweep_soup.py).
@pytest.mark.parametrize("generator", [g for g in SUBSET_GENERATORS.names()
                                       if not (SUBSET_GENERATORS.get(g).dynamic or SUBSET_GENERATORS.get(g).needs_selection)])
@pytest.mark.parametrize("n", [1, 2, 5, 7])
def test_generator_invariants_and_closed_form(generator: str, n: int) -> None:
    for target in range(n):
        subsets = generate_subsets(generator, request(n, target))
        assert len(subsets) == count_subsets(generator, n, per_k=3)
        assert len(set(subsets)) == len(subsets), "a subset is repeated"
        for s in subsets:
            assert target in s and list(s) == sorted(set(s)) and all(0 <= i < n for i in s)
        by_k = Counter(len(s) for s in subsets)
        assert dict(by_k) == {k: c for k, c in count_subsets_by_k(generator, n, per_k=3).items() if c}
        assert by_k[1] == 1 and by_k[n] >= 1, "k = 1 and k = N are always included"


def test_dynamic_generators_plan_nothing_ahead() -> None:
    # "adaptive" chooses its subsets while the sweep runs (tests/test_sweep_adaptive.py)
    dynamic = [g for g in SUBSET_GENERATORS.names() if SUBSET_GENERATORS.get(g).dynamic]
    assert dynamic == ["adaptive"]
    assert generate_subsets("adaptive", request(5, 0)) == [] and count_subsets("adaptive", 5) == 0


@pytest.mark.parametrize("n", range(1, 9))
def test_all_is_every_subset_containing_the_target(n: int) -> None:
    subsets = generate_subsets("all", SubsetRequest(n, 0))
    assert len(subsets) == 2 ** (n - 1) == count_subsets("all", n)
    expected = {tuple(sorted((0, *c))) for r in range(n) for c in itertools.combinations(range(1, n), r)}
    assert set(subsets) == expected


def test_paper_count_for_13_domains() -> None:
    assert 13 * count_subsets("all", 13) == 53_248


@pytest.mark.parametrize("n", range(0, 8))
def test_unrank_matches_lexicographic_order(n: int) -> None:
    for r in range(n + 1):
        ranked = [unrank_combination(i, n, r) for i in range(math.comb(n, r))]
        assert ranked == list(itertools.combinations(range(n), r))


def test_sample_is_reproducible_and_seed_dependent() -> None:
    a = generate_subsets("sample", SubsetRequest(9, 2, per_k=4, seed=7))
    assert a == generate_subsets("sample", SubsetRequest(9, 2, per_k=4, seed=7))
    assert a != generate_subsets("sample", SubsetRequest(9, 2, per_k=4, seed=8))
    assert len(a) == sum(min(4, math.comb(8, k - 1)) for k in range(1, 10))


def test_sample_is_cheap_and_exact_for_huge_pools() -> None:
    start = time.perf_counter()
    subsets = generate_subsets("sample", SubsetRequest(80, 3, per_k=25, seed=1))
    assert time.perf_counter() - start < 2.0
    assert len(subsets) == len(set(subsets)) == count_subsets("sample", 80, per_k=25)
    assert all(3 in s for s in subsets)


def test_sample_draws_uniformly() -> None:
    # C(4, 2) = 6 subsets of size 3 for a pool of 5; one draw per seed should hit each ~1/6 of the time.
    hits = Counter(
        s
        for seed in range(600)
        for s in generate_subsets("sample", SubsetRequest(5, 0, per_k=1, seed=seed))
        if len(s) == 3
    )
    assert len(hits) == 6 and all(60 <= c <= 140 for c in hits.values())


def test_sample_needs_per_k() -> None:
    with pytest.raises(ConfigError, match="per_k"):
        generate_subsets("sample", SubsetRequest(4, 0))


def test_greedy_follows_algorithm_1_with_the_target_included() -> None:
    s = np.array([[0, 0.1, 0.5, 0.3], [0.1, 0, 0.1, 0.1], [0.5, 0.1, 0, 0.2], [0.3, 0.1, 0.2, 0]])
    # Row means over the 3 others: 0 -> 0.3, 1 -> 0.1, 2 -> 0.267, 3 -> 0.2. Target 2 is always in.
    assert generate_subsets("greedy", SubsetRequest(4, 2, fsd=s)) == [(2,), (1, 2), (1, 2, 3), (0, 1, 2, 3)]
    assert generate_subsets("greedy_max", SubsetRequest(4, 2, fsd=s)) == [
        (2,),
        (0, 2),
        (0, 2, 3),
        (0, 1, 2, 3),
    ]


def test_greedy_needs_a_valid_fsd_matrix() -> None:
    with pytest.raises(ConfigError, match="FSD matrix"):
        generate_subsets("greedy", SubsetRequest(3, 0))
    with pytest.raises(ConfigError, match="shape"):
        generate_subsets("greedy", SubsetRequest(3, 0, fsd=np.zeros((2, 2))))
    with pytest.raises(ConfigError, match="NaN"):
        generate_subsets("greedy", SubsetRequest(2, 0, fsd=np.full((2, 2), np.nan)))


# ---------------------------------------------------------------------------------------------- spec


def make_spec(**kw: object) -> SweepSpec:
    return validate(SweepSpec, {"pool": {n: f"adapters/{n}" for n in NAMES}, **kw})


def test_spec_defaults_and_yaml(tmp_path: Path) -> None:
    (tmp_path / "spec.yaml").write_text("pool: [adapters/sst2, adapters/rte]\nsubsets: {generator: all}\n")
    spec = load_spec(tmp_path / "spec.yaml")
    assert set(spec.pool_dirs()) == {"sst2", "rte"}
    assert spec.pool_dirs()["rte"] == tmp_path / "adapters" / "rte"
    assert [r.name for r in spec.rules] == ["average"] and spec.evaluations == ("clean",)
    assert spec.split == "test" and spec.fgsm == {"epsilon": 0.01}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"bogus": 1}, "unknown key 'bogus'"),
        ({"subsets": {"generator": "nope"}}, "unknown generator 'nope'"),
        ({"subsets": {"generator": "sample"}}, "per_k is required"),
        ({"subsets": {"generator": ["all", "sample"], "per_k": 2}}, "list only one"),
        ({"evaluations": ["clean", "pgd"]}, "evaluations"),
        ({"rules": []}, "rules must be"),
        ({"pool": ["a/x", "b/x"]}, "same name"),
        ({"pool": {"../x": "a"}}, "invalid pool name"),
        ({"max_eval_examples": 0}, "max_eval_examples"),
    ],
)
def test_spec_rejects_bad_input(raw: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        validate(SweepSpec, {"pool": {n: n for n in NAMES}, **raw})


def test_expansion_matches_closed_forms() -> None:
    spec = make_spec(
        rules=[{"name": "average"}, {"name": "ties", "params": {"density": 0.2}}],
        evaluations=["clean", "fgsm"],
        subsets={"generator": ["all", "greedy", "greedy_max"]},
    )
    trials = expand(spec, NAMES, fsd_for(len(NAMES)))
    summary = describe_expansion(spec, NAMES)
    per_target = (2 ** (len(NAMES) - 1) + 2 * len(NAMES)) * 2 * 2
    assert len(trials) == summary.total == per_target * len(NAMES)
    assert summary.per_target == {n: per_target for n in NAMES}
    assert len({t.key for t in trials}) == len(trials), "trial keys are distinct"
    assert Counter(t.target for t in trials) == dict.fromkeys(NAMES, per_target)
    assert "trials" in str(summary)


def test_sample_expansion_keeps_k1_and_kN_and_matches_closed_form() -> None:
    spec = make_spec(subsets={"generator": "sample", "per_k": 2, "seed": 3}, targets=["rte"])
    trials = expand(spec, NAMES)
    assert (
        len(trials) == describe_expansion(spec, NAMES).total == sum(min(2, math.comb(4, k)) for k in range(5))
    )
    assert {t.k for t in trials} == {1, 2, 3, 4, 5}
    assert [t.key for t in trials] == [t.key for t in expand(spec, NAMES)]


def test_expansion_does_not_depend_on_pool_order() -> None:
    spec = make_spec(subsets={"generator": ["sample", "greedy"], "per_k": 2})
    fsd = fsd_for(len(NAMES))
    perm = [3, 0, 4, 1, 2]
    a = {t.key for t in expand(spec, NAMES, fsd)}
    b = {t.key for t in expand(spec, [NAMES[i] for i in perm], fsd[np.ix_(perm, perm)])}
    assert a == b


def test_expansion_errors() -> None:
    with pytest.raises(ConfigError, match="unknown target 'qqp'"):
        expand(make_spec(targets=["qqp"]), NAMES)
    with pytest.raises(ConfigError, match="needs the pool's FSD matrix"):
        expand(make_spec(subsets={"generator": "greedy"}), NAMES)
    big = [f"d{i}" for i in range(24)]
    spec = validate(SweepSpec, {"pool": {n: n for n in big}})
    assert describe_expansion(spec, big).total > MAX_TRIALS
    with pytest.raises(ConfigError, match="use generator 'sample'"):
        expand(spec, big)


# --------------------------------------------------------------------------------------------- trials


BASE = {
    "target": "rte",
    "subset": ("sst2", "rte"),
    "rule": "average",
    "split": "test",
    "evaluation": "clean",
    "seed": 0,
}


def test_trial_key_is_stable() -> None:
    trial = Trial(**BASE)  # type: ignore[arg-type]
    assert trial.subset == ("rte", "sst2") and trial.k == 2
    # The documented canonical form, spelled out: changing it silently would orphan every stored result.
    canonical = (
        '{"eval_params":{},"evaluation":"clean","k":2,"max_eval_examples":null,"max_length":null,'
        '"rule":"average","rule_params":{},"seed":0,"split":"test","subset":["rte","sst2"],"tag":"",'
        '"target":"rte","v":1}'
    )
    assert trial.canonical == canonical
    assert trial.key == hashlib.sha256(canonical.encode()).hexdigest()[:16] == "e5d01354f989cd30"
    assert len(trial.key) == 16 and Trial.from_dict(trial.to_dict()) == trial


@pytest.mark.parametrize(
    "change",
    [
        {"subset": ("rte", "ag")},
        {"rule": "ties"},
        {"rule_params": {"density": 0.5}},
        {"split": "validation"},
        {"evaluation": "fgsm"},
        {"eval_params": {"epsilon": 0.02}},
        {"max_eval_examples": 100},
        {"seed": 1},
        {"max_length": 64},
        {"tag": "greedy_min"},
    ],
)
def test_every_field_changes_the_key(change: dict) -> None:
    assert Trial(**{**BASE, **change}).key != Trial(**BASE).key  # type: ignore[arg-type]


def test_trial_rejects_bad_content() -> None:
    with pytest.raises(ConfigError):
        Trial(**{**BASE, "subset": ("sst2",)})  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        Trial(**{**BASE, "rule_params": {"x": float("nan")}})  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------- sharding


@pytest.mark.parametrize("n", [1, 2, 3, 7])
def test_shards_partition_the_trials(n: int) -> None:
    trials = expand(make_spec(), NAMES)
    parts = [shard(trials, i, n) for i in range(1, n + 1)]
    keys = [{t.key for t in p} for p in parts]
    assert sum(len(p) for p in parts) == len(trials)
    assert set().union(*keys) == {t.key for t in trials}
    assert all(not (a & b) for a, b in itertools.combinations(keys, 2))


@pytest.mark.parametrize(("text", "expected"), [("1/1", (1, 1)), ("2/3", (2, 3)), (" 3 / 3 ", (3, 3))])
def test_parse_shard(text: str, expected: tuple[int, int]) -> None:
    assert parse_shard(text) == expected


@pytest.mark.parametrize("text", ["0/3", "4/3", "a/b", "1", "1/0"])
def test_parse_shard_rejects(text: str) -> None:
    with pytest.raises(ConfigError, match="--shard"):
        parse_shard(text)
