"""The Python API (``import adaptermix as am``): the verbs agree with the modules they wrap."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import adaptermix as am
from adaptermix.io import OutputExistsError
from adaptermix.mixture import mix_pool
from adaptermix.pool import load_pool
from helpers import TOY_SENTIMENT, make_adapter, toy_data
from tiny import tiny_encoder

NAMES = ["alpha", "beta", "gamma"]


@pytest.fixture
def dirs(tmp_path):
    enc = tiny_encoder("bert")
    return {n: make_adapter(tmp_path / "pool" / n, enc, seed=i, scale=0.3, info=TOY_SENTIMENT, data=toy_data())
            for i, n in enumerate(NAMES)}


def test_import_is_light_and_lists_the_verbs():
    code = "import sys, adaptermix as am; assert 'torch' not in sys.modules; print(sorted(dir(am)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    for verb in ("load_pool", "fsd", "mix", "prune", "evaluate", "run_sweep", "stats", "predict", "recommend_mixture"):
        assert verb in out
    with pytest.raises(AttributeError, match="no attribute 'nosuch'"):
        am.nosuch  # noqa: B018


def test_no_verb_is_shadowed_by_a_subpackage():
    import pkgutil

    import adaptermix

    subpackages = {m.name for m in pkgutil.iter_modules(adaptermix.__path__)}
    assert not subpackages & set(adaptermix._API)
    import adaptermix.recommend.search  # noqa: F401
    import adaptermix.sweep.runner  # noqa: F401

    assert callable(am.run_sweep) and callable(am.recommend_mixture)


def test_fsd_and_mix_equal_the_modules(dirs):
    pool = am.load_pool(dirs)
    table = am.fsd(pool)
    assert isinstance(table, pd.DataFrame) and list(table.index) == NAMES == list(table.columns)
    np.testing.assert_array_equal(table.to_numpy(), load_pool(dirs).fsd().values.numpy())
    assert (am.fsd(dirs) == table).all().all()  # a mapping of folders works too
    kinds = am.fsd_by_kind(pool)
    assert {"adapter_a", "adapter_b", "kind", "fsd"} <= set(kinds.columns)
    mixed = am.mix(pool, "ties", target="beta", density=0.5)
    want = mix_pool(load_pool(dirs), "ties", "beta", density=0.5)
    for k, v in want.tensors.items():
        assert np.array_equal(mixed.tensors[k].numpy(), v.numpy())
    pruned = am.prune(mixed, 0.5)
    body = np.concatenate([v.numpy().ravel() for k, v in pruned.body.items()])
    assert (body == 0).mean() == pytest.approx(0.5, abs=0.01)


def test_save_never_replaces_foreign_work(dirs, tmp_path):
    mixed = am.mix(dirs, "average", target="alpha")
    out = am.save(mixed, tmp_path / "mixed")
    assert [a["name"] for a in am.load_adapter(out).meta.provenance["adapters"]] == NAMES
    am.save(mixed, tmp_path / "mixed")  # its own earlier output may be replaced
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(OutputExistsError):
        am.save(mixed, foreign)
    am.save(mixed, foreign, overwrite=True)


def test_evaluate_an_in_memory_mixture_equals_its_saved_copy(dirs, tmp_path):
    enc = tiny_encoder("bert")
    mixed = am.mix(dirs, "average", target="alpha")
    saved = am.save(mixed, tmp_path / "m")
    a = am.evaluate(mixed, max_length=32, encoder=enc)
    b = am.evaluate(saved, max_length=32, encoder=enc)
    assert a == b and 0.0 <= a["accuracy"] <= 1.0


def test_sweep_results_stats_and_recommend(dirs, tmp_path):
    enc = tiny_encoder("bert")
    store = tmp_path / "r.sqlite"
    summary = am.run_sweep({"pool": {n: str(p) for n, p in dirs.items()}, "subsets": {"generator": "all"}}, store,
                       progress=False, encoder=enc)
    assert summary.ran == 3 * 4
    rows = am.results(store)
    assert len(rows) == 12 and isinstance(rows["subset"].iloc[0], tuple)
    tables = am.stats(store)
    assert {"per_k", "drops", "correlations", "greedy"} <= set(tables) and len(tables["per_k"]) > 0
    result = am.recommend_mixture(dirs, store, "alpha", budget=3, encoder=enc)
    assert len(result.steps) == 3 and result.steps[0].candidate.k == 1
    assert len(am.results(store)) == 12  # every evaluation was already in the store: nothing new was run
