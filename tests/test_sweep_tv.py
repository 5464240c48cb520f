"""Sweeps in the task-vector space (``merge_space: tv``): own trial keys, the init added back."""

from __future__ import annotations

import pytest
import yaml

from adaptermix.sweep.runner import run_sweep
from adaptermix.sweep.spec import load_spec
from adaptermix.sweep.store import ResultsStore
from helpers import TOY_SENTIMENT, make_adapter, toy_data
from tiny import tiny_encoder

NAMES = ["alpha", "beta", "gamma"]


@pytest.fixture
def pool(tmp_path):
    enc = tiny_encoder("bert")
    return [str(make_adapter(tmp_path / "pool" / n, enc, seed=i, scale=0.3, info=TOY_SENTIMENT, data=toy_data()))
            for i, n in enumerate(NAMES)]


def _run(tmp_path, pool, space, rules, store):
    path = tmp_path / f"spec-{space}.yaml"
    path.write_text(yaml.safe_dump({"pool": pool, "merge_space": space, "rules": rules,
                                    "subsets": {"generator": "all"}}))
    run_sweep(load_spec(path), store, encoder=tiny_encoder("bert"), progress=False)
    with ResultsStore(store, readonly=True) as s:
        return s.rows()


def test_average_is_the_same_in_both_spaces_but_keys_differ(pool, tmp_path):
    store = tmp_path / "r.sqlite"
    raw = _run(tmp_path, pool, "raw", [{"name": "average"}], store)
    both = _run(tmp_path, pool, "tv", [{"name": "average"}], store)
    tv = [r for r in both if '"merge_space":"tv"' in r["trial_json"]]
    assert len(raw) == len(tv) == 12 and len(both) == 24  # tv trials are new trials, raw keys unchanged
    by_mix = {(r["target"], r["subset_json"]): r["metric"] for r in raw}
    for r in tv:  # mean(w - init) + init = mean(w): the same mixture, the same metric
        assert r["metric"] == pytest.approx(by_mix[(r["target"], r["subset_json"])], abs=1e-6)


def test_masked_rules_run_in_task_vector_space(pool, tmp_path):
    rows = _run(tmp_path, pool, "tv", [{"name": "emr"}, {"name": "tall_mask"}], tmp_path / "m.sqlite")
    assert len(rows) == 2 * 12 and all(r["metric"] is not None for r in rows)
