"""``adaptermix recommend`` and ``adaptermix predict`` end to end on tiny models and synthetic stores:
evaluations are ordinary sweep trials (reused on a rerun, skipped by a later sweep), the output adapter,
and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from adaptermix.artefact import load_adapter
from adaptermix.backbone.loading import load_encoder
from adaptermix.cli.main import main
from adaptermix.io import atomic_write_json
from adaptermix.sweep.spec import Trial, expand, load_spec
from adaptermix.sweep.store import ResultsStore, TrialResult
from helpers import TOY_SENTIMENT, make_adapter, save_tiny_model, toy_data
from synthetic_mixtures import additive_metric, additive_world, exhaustive, random_facts

NAMES = ["A", "B", "C", "D"]


@pytest.fixture(scope="module")
def pool(tmp_path_factory) -> list[Path]:
    """Four adapters on a tiny encoder saved to disk (the CLI loads the encoder the adapters name)."""
    root = tmp_path_factory.mktemp("recommend")
    enc = load_encoder(str(save_tiny_model(root / "model")), precision="fp32")
    return [make_adapter(root / "pool" / n, enc, seed=i, scale=0.3, info=TOY_SENTIMENT, data=toy_data())
            for i, n in enumerate(NAMES)]


def _rows(store: Path) -> list[dict]:
    with ResultsStore(store, readonly=True) as s:
        return s.rows()


def _recommend(pool: list[Path], store: Path, *extra: str) -> list[str]:
    return ["recommend", "--pool", *map(str, pool), "--store", str(store), "--target", "A", *extra]


def _err(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_recommend_writes_trials_reuses_them_and_a_sweep_skips_them(pool, tmp_path, capsys):
    store, out = tmp_path / "s.sqlite", tmp_path / "out.json"
    argv = _recommend(pool, store, "--budget", "4", "--json", str(out))
    assert main(argv) == 0
    printed = capsys.readouterr().out
    first = json.loads(out.read_text())
    assert "recommended: " in printed and "model search for A: 4 of 4 evaluations (4 run, 0 read" in printed
    assert first["evaluations"] == first["new_evaluations"] == 4 and first["reused_evaluations"] == 0
    rows = _rows(store)
    assert len(rows) == 4, "every evaluation is a trial of the store"
    tried = {tuple(t["subset"]) for t in first["tried"]}
    assert {tuple(json.loads(r["subset_json"])) for r in rows} == tried
    assert all(r["tag"] == "" and r["evaluation"] == "clean" and r["target"] == "A" for r in rows)
    assert tuple(first["best"]["subset"]) in tried

    # the same call again: nothing is evaluated, the same mixture recommended
    assert main(argv) == 0
    second = json.loads(out.read_text())
    assert second["new_evaluations"] == 0 and second["reused_evaluations"] == 4
    assert second["best"] == first["best"] and second["tried"] == first["tried"]
    assert len(_rows(store)) == 4
    assert "(0 run, 4 read" in capsys.readouterr().out

    # an exhaustive sweep with the same fields expands to the same keys and skips what recommend measured
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(yaml.safe_dump({"pool": [str(p) for p in pool], "targets": ["A"],
                                         "subsets": {"generator": "all"}, "evaluations": ["clean"]}))
    spec = load_spec(spec_path)
    keys = {t.key for t in expand(spec.model_copy(update={"precision": "fp32"}), NAMES)}
    assert {r["key"] for r in rows} <= keys
    assert all(Trial.from_dict(json.loads(r["trial_json"])).key == r["key"] for r in rows)
    capsys.readouterr()
    assert main(["sweep", str(spec_path), "--store", str(store), "--no-progress"]) == 0
    summary = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    assert (summary["trials"], summary["already_done"], summary["ran"]) == (8, 4, 4)
    after = _rows(store)
    assert len(after) == 8 and {r["key"] for r in after} == keys


def test_recommend_output_adapter_and_foreign_folder(pool, tmp_path, capsys):
    store, out, js = tmp_path / "s.sqlite", tmp_path / "mixed", tmp_path / "r.json"
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("my own")
    code = main(_recommend(pool, store, "--budget", "3", "--min-k", "2", "-o", str(foreign)))
    err = _err(capsys)
    assert code == 2 and "already exists (not written by adaptermix)" in err and "--overwrite" in err
    assert not store.exists(), "refused before anything was evaluated"
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]

    assert main(_recommend(pool, store, "--budget", "3", "--min-k", "2", "-o", str(out), "--json", str(js))) == 0
    best = json.loads(js.read_text())["best"]
    assert len(best["subset"]) >= 2, "min_k = 2 recommends a real mixture"
    mixed = load_adapter(out)
    prov = mixed.meta.provenance
    assert sorted(a["name"] for a in prov["adapters"]) == sorted(best["subset"])
    assert prov["rule"] == "average" and prov["target"] == "A"
    assert len(_rows(store)) == 3
    # the same call again re-writes its own output (no --overwrite needed) and evaluates nothing
    assert main(_recommend(pool, store, "--budget", "3", "--min-k", "2", "-o", str(out), "--json", str(js))) == 0
    assert json.loads(js.read_text())["new_evaluations"] == 0


def test_recommend_with_non_finite_metrics(pool, tmp_path, capsys, monkeypatch):
    """A store row whose metric was not finite (stored as null) is neither reused nor a crash: the
    candidate is evaluated again; a search whose evaluation gives no finite metric stops with one line."""
    import dataclasses

    import adaptermix.sweep.context as runner  # where the search evaluates (recommend.live)

    store, js = tmp_path / "s.sqlite", tmp_path / "r.json"
    assert main(_recommend(pool, store, "--budget", "1")) == 0
    base = json.loads(_rows(store)[0]["trial_json"])
    whole = Trial.from_dict({**base, "subset": NAMES})
    other = Trial.from_dict({**base, "target": "B", "subset": ["B", "C"], "evaluation": "fgsm"})
    with ResultsStore(store) as s:
        s.record([TrialResult(t, "accuracy", float("nan"), {}) for t in (whole, other)])
    capsys.readouterr()
    assert main(_recommend(pool, store, "--budget", "8", "--strategy", "random", "--json", str(js))) == 0
    result = json.loads(js.read_text())
    assert (result["evaluations"], result["new_evaluations"], result["reused_evaluations"]) == (8, 7, 1)
    assert all(t["metric"] == t["metric"] for t in result["tried"]), "no NaN reached the search"

    real = runner.evaluate_group

    def nan_group(ctx, trials):
        return [dataclasses.replace(r, metric=float("nan")) for r in real(ctx, trials)]

    monkeypatch.setattr(runner, "evaluate_group", nan_group)
    assert main(_recommend(pool, tmp_path / "t.sqlite", "--budget", "2")) == 2
    assert "A alone (average): the evaluation gave no finite accuracy (nan)" in _err(capsys)


def test_recommend_bad_inputs_are_one_line_errors(pool, tmp_path, capsys):
    store = tmp_path / "s.sqlite"
    assert main(_recommend(pool, store, "--budget", "0")) == 2
    assert "budget must be at least 1" in _err(capsys)
    assert main(["recommend", "--target", "A", "--budget", "3"]) == 2
    assert "give --study DIR, or --pool DIR... and --store FILE" in _err(capsys)
    assert main(_recommend(pool, store, "--budget", "3", "--rule", "ties:{bad")) == 2
    assert "must be JSON" in _err(capsys)
    assert main(_recommend(pool, store, "--budget", "3", "--strategy", "nosuch")) == 2
    assert "unknown search strategy 'nosuch'" in _err(capsys)
    assert main(["recommend", "--pool", *map(str, pool), "--store", str(store), "--target", "Z",
                 "--budget", "3"]) == 2
    assert "'Z' is not in the pool" in _err(capsys)


# ------------------------------------------------------------------------------------------ predict


@pytest.fixture
def method_dir(tmp_path: Path) -> Path:
    """A study-like method folder: an exhaustive synthetic store of 5 domains and fsd.json beside it."""
    facts = random_facts(5, seed=0, similarity=False)
    single, effects = additive_world(5, seed=0)
    measured = exhaustive(facts.names, additive_metric(single, effects))
    folder = tmp_path / "pfeiffer"
    with ResultsStore(folder / "results.sqlite") as s:
        s.record([TrialResult(Trial(target=m.candidate.target, subset=m.candidate.subset, rule="average",
                                    split="test", evaluation="clean", seed=0),
                              "accuracy", m.metric, {"accuracy": m.metric}, 0.5, m.target_sign_change, "raw", 10)
                  for m in measured])
    atomic_write_json(folder / "fsd.json", {"names": list(facts.names), "fsd": facts.fsd.tolist()})
    return folder


def test_predict_writes_report_and_figures(method_dir, tmp_path, capsys):
    out = tmp_path / "pred"
    assert main(["predict", str(method_dir), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "80 mixtures of 5 targets" in printed and "k only (control)" in printed
    report = json.loads((out / "predictor.json").read_text())
    assert report["n_mixtures"] == 80 and report["folds"] == 5
    assert report["heldout"]["all features"]["spearman_within"] > 0.9
    assert set(report["leave_one_target_out"]) == set(report["heldout"])
    for suffix in (".png", ".svg"):
        assert (out / f"predicted_vs_measured{suffix}").stat().st_size > 0
    # a store file works as well as its folder
    assert main(["predict", str(method_dir / "results.sqlite"), "--rule", "average", "--folds", "3"]) == 0


def test_predict_bad_inputs_are_one_line_errors(method_dir, tmp_path, capsys):
    assert main(["predict", str(tmp_path / "nowhere")]) == 2
    assert "no results store" in _err(capsys)
    assert main(["predict", str(method_dir), "--rule", "nosuchrule"]) == 2
    assert "no 'clean' trials of rules ['nosuchrule']" in _err(capsys)
    assert main(["predict", str(method_dir), "--folds", "1"]) == 2
    assert "folds must be >= 2" in _err(capsys)
    (method_dir / "fsd.json").unlink()
    assert main(["predict", str(method_dir)]) == 2
    assert "fsd.json: missing" in _err(capsys)
