"""The sweep runner on tiny models: counts, equality with direct evaluation, resume, sharding, greedy."""

from __future__ import annotations

import pytest
import yaml

from adaptermix.artefact import model_from_adapter
from adaptermix.cli.main import main
from adaptermix.data import load_task
from adaptermix.data.config import DataConfig
from adaptermix.mixture import mix_pool
from adaptermix.pool import load_pool
from adaptermix.sweep.runner import run_sweep
from adaptermix.sweep.spec import load_spec
from adaptermix.sweep.store import ResultsStore
from adaptermix.training.batching import tokenize
from adaptermix.training.evaluate import evaluate
from helpers import TOY_SENTIMENT, make_adapter, toy_data
from tiny import tiny_encoder

NAMES = ["alpha", "beta", "gamma"]


@pytest.fixture
def spec_file(tmp_path):
    enc = tiny_encoder("bert")
    for i, n in enumerate(NAMES):
        make_adapter(tmp_path / "pool" / n, enc, seed=i, scale=0.3, info=TOY_SENTIMENT, data=toy_data())
    spec = {"pool": [f"pool/{n}" for n in NAMES], "evaluations": ["clean", "fgsm"],
            "subsets": {"generator": "all"}, "fgsm": {"epsilon": 0.05}}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _rows(store):
    with ResultsStore(store, readonly=True) as s:
        return s.rows()


def test_all_subsets_counts_and_direct_equality(spec_file, tmp_path):
    store = tmp_path / "r.sqlite"
    summary = run_sweep(load_spec(spec_file), store, encoder=tiny_encoder("bert"), progress=False)
    assert summary.ran == 3 * 4 * 2 and summary.skipped == 0
    rows = _rows(store)
    assert len(rows) == 24 and len({r["key"] for r in rows}) == 24
    # every clean trial equals evaluating the mixture directly through the mix + eval path
    enc = tiny_encoder("bert")
    task = load_task(DataConfig(**toy_data()), splits=("test",))
    tset = tokenize(enc.tokenizer, task.split("test"), 32, False)
    dirs = {n: tmp_path / "pool" / n for n in NAMES}
    for r in rows:
        if r["evaluation"] != "clean":
            continue
        subset = __import__("json").loads(r["subset_json"])
        mixed = mix_pool(load_pool({n: dirs[n] for n in subset}), "average", r["target"])
        model = model_from_adapter(mixed, enc)
        want = evaluate(model, tset, TOY_SENTIMENT)["accuracy"]
        model.detach_body()
        assert r["metric"] == pytest.approx(want), (r["target"], subset)
        if r["k"] == 1:
            assert r["mean_pairwise_fsd"] is None and r["target_sign_change"] == 0.0
        else:
            assert 0 < r["mean_pairwise_fsd"] < 1


def test_rerun_does_nothing_and_shards_partition(spec_file, tmp_path):
    spec = load_spec(spec_file)
    enc = tiny_encoder("bert")
    a, b, whole = tmp_path / "a.sqlite", tmp_path / "b.sqlite", tmp_path / "w.sqlite"
    run_sweep(spec, a, (1, 2), encoder=enc, progress=False)
    run_sweep(spec, b, (2, 2), encoder=enc, progress=False)
    again = run_sweep(spec, a, (1, 2), encoder=enc, progress=False)
    assert again.ran == 0 and again.skipped == len(_rows(a))
    assert main(["merge", str(whole), str(a), str(b)]) == 0
    assert len(_rows(whole)) == 24
    assert {r["key"] for r in _rows(a)}.isdisjoint({r["key"] for r in _rows(b)})


def test_greedy_generators_tag_trials(spec_file, tmp_path):
    spec = load_spec(spec_file, ["subsets.generator=[greedy, greedy_max]", "evaluations=[clean]"])
    run_sweep(spec, tmp_path / "g.sqlite", encoder=tiny_encoder("bert"), progress=False)
    tags = {r["tag"] for r in _rows(tmp_path / "g.sqlite")}
    assert tags == {"greedy_min", "greedy_max"}


def test_sweep_cli_dry_run_and_bad_evaluation(spec_file, tmp_path, capsys):
    assert main(["sweep", str(spec_file), "--store", str(tmp_path / "x.sqlite"), "--dry-run"]) == 0
    assert "24 trials" in capsys.readouterr().out
    assert not (tmp_path / "x.sqlite").exists()
    code = main(["sweep", str(spec_file), "--store", str(tmp_path / "x.sqlite"), "--set", "evaluations=[nope]"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.endswith("evaluations.0: Input should be 'clean', 'fgsm' or 'textfooler'")
    code = main(["sweep", str(spec_file), "--store", str(tmp_path / "x.sqlite"), "--set", "rules=[{name: nope}]"])
    assert code == 2 and "unknown merge rule 'nope'" in capsys.readouterr().err
    assert not (tmp_path / "x.sqlite").exists()


def test_sweep_missing_pool_adapter(tmp_path, capsys):
    spec = tmp_path / "s.yaml"
    spec.write_text(yaml.safe_dump({"pool": ["pool/missing"]}))
    assert main(["sweep", str(spec), "--store", str(tmp_path / "x.sqlite")]) == 2
    assert "adapter not found" in capsys.readouterr().err
    assert not (tmp_path / "x.sqlite").exists()


def test_stats_and_export_cli(spec_file, tmp_path, capsys):
    store = tmp_path / "r.sqlite"
    run_sweep(load_spec(spec_file), store, encoder=tiny_encoder("bert"), progress=False)
    assert main(["stats", str(store), "-o", str(tmp_path / "stats")]) == 0
    assert any(p.suffix == ".csv" for p in (tmp_path / "stats").iterdir())
    assert main(["export", str(store), "-o", str(tmp_path / "t.csv")]) == 0
    assert (tmp_path / "t.csv").read_text().count("\n") == 25
    assert main(["export", str(store), "-o", str(tmp_path / "t.parquet")]) == 0


def test_ks_filter_and_k_larger_than_pool(spec_file, tmp_path, capsys):
    spec = load_spec(spec_file, ["subsets.ks=[1]", "evaluations=[clean]"])
    summary = run_sweep(spec, tmp_path / "k1.sqlite", encoder=tiny_encoder("bert"), progress=False)
    assert summary.ran == 3 and {r["k"] for r in _rows(tmp_path / "k1.sqlite")} == {1}
    code = main(["sweep", str(spec_file), "--store", str(tmp_path / "x.sqlite"), "--set", "subsets.ks=[5]"])
    assert code == 2
    assert capsys.readouterr().err.strip() == "adaptermix: error: k=5 is larger than the pool (3 adapters)"
    assert not (tmp_path / "x.sqlite").exists()


def test_a_store_refuses_results_of_other_weights_under_the_same_name(spec_file, tmp_path):
    """Trial keys name adapters, not weights: resuming after a retrain must not reuse the old metrics."""
    from adaptermix.errors import ArtefactError

    store = tmp_path / "r.sqlite"
    spec = load_spec(spec_file)
    run_sweep(spec, store, encoder=tiny_encoder("bert"), progress=False)
    again = run_sweep(spec, store, encoder=tiny_encoder("bert"), progress=False)  # same weights: resumes
    assert again.ran == 0
    make_adapter(tmp_path / "pool" / "beta", tiny_encoder("bert"), seed=7, scale=0.3, info=TOY_SENTIMENT,
                 data=toy_data())  # "retrained"
    with pytest.raises(ArtefactError, match=r"other weights for adapter\(s\) 'beta'.*use a new store"):
        run_sweep(spec, store, encoder=tiny_encoder("bert"), progress=False)
    with ResultsStore(store, readonly=True) as s:
        assert set(s.adapter_hashes()) == set(NAMES)


def test_weights_hash_ignores_metadata_but_not_values(tmp_path):
    from adaptermix.artefact import load_adapter

    enc = tiny_encoder("bert")
    a = load_adapter(make_adapter(tmp_path / "a", enc, seed=1, info=TOY_SENTIMENT, data=toy_data()))
    b = load_adapter(make_adapter(tmp_path / "b", enc, seed=1, info=TOY_SENTIMENT, data=toy_data()))
    c = load_adapter(make_adapter(tmp_path / "c", enc, seed=2, info=TOY_SENTIMENT, data=toy_data()))
    assert a.weights_sha256() == b.weights_sha256() != c.weights_sha256()
