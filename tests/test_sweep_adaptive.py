"""Generator ``adaptive``: a budgeted search per target inside a sweep, recorded as ordinary trials."""

from __future__ import annotations

import json

import pytest
import yaml

from adaptermix.errors import ConfigError
from adaptermix.sweep.runner import run_sweep
from adaptermix.sweep.spec import SweepSpec, describe_expansion, load_spec
from adaptermix.sweep.store import ResultsStore
from helpers import TOY_SENTIMENT, make_adapter, toy_data
from tiny import tiny_encoder

NAMES = ["alpha", "beta", "delta", "gamma"]


@pytest.fixture
def pool(tmp_path):
    enc = tiny_encoder("bert")
    for i, n in enumerate(NAMES):
        make_adapter(tmp_path / "pool" / n, enc, seed=i, scale=0.3, info=TOY_SENTIMENT, data=toy_data())
    return [str(tmp_path / "pool" / n) for n in NAMES]


def _spec(tmp_path, pool, **subsets):
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump({"pool": pool, "evaluations": ["clean", "fgsm"],
                                    "subsets": {"generator": "adaptive", "budget": 3, **subsets}}))
    return load_spec(path)


def _rows(store):
    with ResultsStore(store, readonly=True) as s:
        return s.rows()


def test_adaptive_runs_budget_per_target_and_an_exhaustive_sweep_reuses_it(pool, tmp_path):
    spec = _spec(tmp_path, pool)
    summary = describe_expansion(spec, NAMES)
    assert summary.total == 0 and summary.adaptive_budget == 3 and "adaptive search of up to 3" in str(summary)
    store = tmp_path / "r.sqlite"
    enc = tiny_encoder("bert")
    first = run_sweep(spec, store, encoder=enc, progress=False)
    rows = _rows(store)
    # 4 targets x 3 mixtures x 2 evaluations, all distinct ordinary (untagged) trials
    assert first.ran == len(rows) == 4 * 3 * 2 and {r["tag"] for r in rows} == {""}
    for target in NAMES:
        mine = [r for r in rows if r["target"] == target and r["evaluation"] == "clean"]
        assert len(mine) == 3 and any(r["k"] == 1 for r in mine)  # the single adapter is always measured
    again = run_sweep(spec, store, encoder=enc, progress=False)  # same seed, same path: nothing new
    assert again.ran == 0 and len(_rows(store)) == len(rows)
    full = SweepSpec.model_validate({**spec.model_dump(mode="json"), "subsets": {"generator": "all"}})
    exhaustive = run_sweep(full, store, encoder=enc, progress=False)
    assert exhaustive.skipped == len(rows) and exhaustive.ran == 4 * 8 * 2 - len(rows)


def test_adaptive_needs_a_budget_and_a_known_strategy(pool, tmp_path):
    with pytest.raises(ConfigError, match="needs subsets.budget"):
        load_spec_text(tmp_path, {"pool": pool, "subsets": {"generator": "adaptive"}})
    spec = _spec(tmp_path, pool, strategy="nosuch")
    with pytest.raises(Exception, match="nosuch"):
        run_sweep(spec, tmp_path / "r.sqlite", encoder=tiny_encoder("bert"), progress=False)


def test_adaptive_min_k_measures_real_mixtures(pool, tmp_path):
    spec = _spec(tmp_path, pool, min_k=2, strategy="greedy_fsd")
    store = tmp_path / "r.sqlite"
    run_sweep(spec, store, encoder=tiny_encoder("bert"), progress=False)
    ks = sorted(json.loads(r["trial_json"])["k"] for r in _rows(store) if r["target"] == "alpha"
                and r["evaluation"] == "clean")
    assert ks == [1, 2, 3]  # the single (baseline), then Alg. 1's sizes 2 and 3


def load_spec_text(tmp_path, data):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_spec(path)


def test_a_study_can_sweep_adaptively(tmp_path):
    from adaptermix.pipeline.config import StudyConfig
    from adaptermix.pipeline.stages import MethodPool, sweep_specs

    with pytest.raises(ValueError, match="needs sweep.budget"):
        StudyConfig.model_validate({"domains": ["a", "b"], "sweep": {"generator": "adaptive"}})
    cfg = StudyConfig.model_validate({"domains": ["a", "b"], "output_dir": str(tmp_path),
                                      "sweep": {"generator": "adaptive", "budget": 4, "strategy": "evolve"}})
    mp = MethodPool("pfeiffer", {"a": tmp_path / "a", "b": tmp_path / "b"})
    (sweep,) = sweep_specs(cfg, mp, "sweep")
    assert sweep.subsets.adaptive and sweep.subsets.budget == 4 and sweep.subsets.strategy == "evolve"
    singles, mixed = sweep_specs(cfg, mp, "pruning")
    assert singles.subsets.generator == ("all",) and singles.subsets.ks == (1,)  # k = 1 stays enumerated
    assert mixed.subsets.adaptive
