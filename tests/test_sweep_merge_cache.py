"""The sweep computes a target-independent mixture once: the same subset under the same static rule is
merged once per sweep, not once per target, and the cached mixture gives the same results."""

from __future__ import annotations

import pytest
import yaml

import adaptermix.sweep.context as runner  # SweepContext.mixture merges there
from adaptermix.sweep.runner import SweepContext, run_sweep
from adaptermix.sweep.spec import load_spec
from adaptermix.sweep.store import ResultsStore
from helpers import TOY_SENTIMENT, make_adapter, toy_data
from tiny import tiny_encoder

NAMES = ["alpha", "beta", "gamma"]
RULES = [{"name": "average"}, {"name": "ties", "params": {"density": 0.5}}, {"name": "emr"}]


@pytest.fixture
def spec(tmp_path):
    enc = tiny_encoder("bert")
    pool = [str(make_adapter(tmp_path / "pool" / n, enc, seed=i, scale=0.3, info=TOY_SENTIMENT, data=toy_data()))
            for i, n in enumerate(NAMES)]
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump({"pool": pool, "merge_space": "tv", "rules": RULES,
                                    "subsets": {"generator": "all", "ks": [3]}}))
    return load_spec(path)


def _run(spec, store, monkeypatch, cache_bytes: int) -> tuple[list[dict], int]:
    calls = []
    real = runner.merge_flat

    def counting(*args, **kwargs):
        calls.append(args[0])
        return real(*args, **kwargs)

    real_prepare = SweepContext.prepare.__func__

    def prepare(cls, *args, **kwargs):
        ctx = real_prepare(cls, *args, **kwargs)
        ctx.merge_cache_bytes = cache_bytes
        return ctx

    monkeypatch.setattr(runner, "merge_flat", counting)
    monkeypatch.setattr(SweepContext, "prepare", classmethod(prepare))
    run_sweep(spec, store, encoder=tiny_encoder("bert"), progress=False)
    with ResultsStore(store, readonly=True) as s:
        return s.rows(), len(calls)


def test_static_mixtures_are_merged_once_and_give_the_same_results(spec, tmp_path, monkeypatch):
    cached, n_cached = _run(spec, tmp_path / "a.sqlite", monkeypatch, 256 * 2**20)
    fresh, n_fresh = _run(spec, tmp_path / "b.sqlite", monkeypatch, 0)
    assert len(cached) == len(fresh) == 3 * len(RULES)  # 3 targets x the one k = 3 mixture x 3 rules
    assert n_fresh == 3 * len(RULES)  # without the cache: once per target and rule
    assert n_cached == 2 + 3  # average and ties once each; emr gives the target's view: once per target
    assert {r["key"]: r["metric"] for r in cached} == {r["key"]: r["metric"] for r in fresh}


def test_a_cache_too_small_to_reuse_still_gives_the_same_results(spec, tmp_path, monkeypatch):
    """One byte of room: the cache keeps only the latest vector, and trials alternate rules per target, so
    nothing is reused — every mixture is recomputed, with the same results."""
    small, calls = _run(spec, tmp_path / "c.sqlite", monkeypatch, 1)
    fresh, _ = _run(spec, tmp_path / "d.sqlite", monkeypatch, 0)
    assert calls == 3 * len(RULES)
    assert {r["key"]: r["metric"] for r in small} == {r["key"]: r["metric"] for r in fresh}
