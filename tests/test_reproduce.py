"""``adaptermix reproduce`` on tiny models: runs end to end, writes the report, and a second run does no work."""

from __future__ import annotations

import json

import pytest
import yaml

from adaptermix.cli.main import main
from adaptermix.sweep.store import ResultsStore
from helpers import TOY_PACK
from tiny import tiny_encoder


@pytest.fixture
def study(tmp_path):
    tiny = tiny_encoder("bert")
    tiny.model.save_pretrained(tmp_path / "model")
    tiny.tokenizer.save_pretrained(tmp_path / "model")
    cfg = {
        "name": "tiny",
        "output_dir": str(tmp_path / "study"),
        "model": {"name": str(tmp_path / "model"), "max_length": 32},
        "data": {"data_dir": str(TOY_PACK), "max_train": 16, "max_validation": 8},
        "domains": ["toy_sentiment", "toy_nli", "toy_sts"],
        "methods": [{"name": "pfeiffer", "bottleneck_size": 4}],
        "train": {"epochs": 1, "batch_size": 8, "progress": False},
        "sweep": {"generator": "all", "evaluations": ["clean", "fgsm"], "max_eval_examples": 8},
        "pruning": {"sparsities": [0.5, 0.9], "mix_sparsities": [0.9], "fsd_layers": 1, "scopes": ["adapter", "layer"]},
        "analysis": {"enabled": False},
    }
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path, tmp_path / "study"


def test_reproduce_end_to_end_then_nothing_to_do(study, capsys):
    path, out = study
    assert main(["reproduce", str(path)]) == 0
    first = capsys.readouterr().out
    assert "report: " in first and (out / "report" / "index.html").is_file()
    for name in ("config.yaml", "single_adapters.md", "pfeiffer/fsd.json", "pfeiffer/fsd.png"):
        assert (out / name).is_file(), name
    assert "(baseline " in (out / "single_adapters.md").read_text(), "the majority baseline beside each metric"
    with ResultsStore(out / "pfeiffer" / "results.sqlite", readonly=True) as s:
        rows = s.rows()
    rules = {(r["rule"], r["tag"], r["evaluation"]) for r in rows}
    assert ("average", "", "clean") in rules and ("average", "", "fgsm") in rules
    assert ("average", "greedy_min", "clean") in rules and ("sparse_fsd", "", "clean") in rules
    # 3 targets x 4 subsets x 2 evaluations + greedy + 2 single sparsities x 3 + one mixed sparsity x 12
    assert sum(r["tag"] == "" and r["rule"] == "average" for r in rows) == 24
    # Fig. 8a: whole-adapter and per-layer scopes; Fig. 8b: every layer pruned and Alg. 4 with m = 1, the
    # layers Alg. 4 chose stored per trial.
    sparse = [(json.loads(r["rule_params_json"]), json.loads(r["metrics_json"])) for r in rows if r["rule"] == "sparse_fsd"]
    assert {p.get("scope") for p, _ in sparse if p["s"] == 0.5} == {"adapter", "layer"}
    guided = [(p, m) for p, m in sparse if p.get("m") == 1]
    assert len(guided) == 12 and all(len(m["mixed_adapters"]) >= 1 for _, m in guided)
    assert all(len(groups) == 1 for _, m in guided for groups in m["pruned_groups"].values())
    assert len([p for p, _ in sparse if p == {"s": 0.9}]) == 12
    mtime = (out / "adapters" / "pfeiffer" / "toy_sentiment" / "adapter.safetensors").stat().st_mtime_ns
    html = (out / "report" / "index.html").read_text()
    assert "<img" in html

    assert main(["reproduce", str(path)]) == 0
    second = capsys.readouterr().out
    assert "trials run" in second and all(
        line.split(": ", 2)[-1].startswith("0 trials run") for line in second.splitlines() if "trials run" in line
    ), second
    assert (out / "adapters" / "pfeiffer" / "toy_sentiment" / "adapter.safetensors").stat().st_mtime_ns == mtime
    with ResultsStore(out / "pfeiffer" / "results.sqlite", readonly=True) as s:
        assert len(s.rows()) == len(rows)


def test_reproduce_unknown_stage(study, capsys):
    path, out = study
    assert main(["reproduce", str(path), "--stages", "train,nope"]) == 2
    assert capsys.readouterr().err.strip().endswith(
        "unknown stage 'nope'; valid: train, fsd, sweep, greedy, pruning, analysis, report")


def test_reproduce_train_stage_only_builds_no_report(study, capsys):
    path, out = study
    assert main(["reproduce", str(path), "--stages", "train"]) == 0
    printed = capsys.readouterr().out
    assert "report: " not in printed and f"done: {out} (stages: train)" in printed
    assert (out / "adapters" / "pfeiffer" / "toy_sentiment" / "adapter.safetensors").is_file()
    assert not (out / "report").exists() and not (out / "pfeiffer" / "results.sqlite").exists()


def test_retrained_adapters_set_their_old_store_aside(study, capsys):
    """A changed recipe retrains the adapters; their old results are kept under another name, not reused."""
    path, out = study
    cfg = yaml.safe_load(path.read_text())
    cfg["sweep"]["evaluations"] = ["clean"]
    path.write_text(yaml.safe_dump(cfg))
    assert main(["reproduce", str(path), "--stages", "train,sweep"]) == 0
    store = out / "pfeiffer" / "results.sqlite"
    with ResultsStore(store, readonly=True) as s:
        first = len(s.rows())
    cfg["train"]["learning_rate"] = 1e-2  # another recipe: other weights under the same names
    path.write_text(yaml.safe_dump(cfg))
    capsys.readouterr()
    assert main(["reproduce", str(path), "--stages", "train,sweep", "--overwrite"]) == 0
    printed = capsys.readouterr().out
    assert "were retrained since" in printed and "starting a new store" in printed
    aside = sorted((out / "pfeiffer").glob("results.stale-*.sqlite"))
    assert len(aside) == 1
    with ResultsStore(aside[0], readonly=True) as s:
        assert len(s.rows()) == first  # the old work is kept
    with ResultsStore(store, readonly=True) as s:
        assert len(s.rows()) == first  # recomputed on the new weights, not skipped


def test_training_key_names_the_data_contents(tmp_path):
    """Same config, other data contents (e.g. the embedded pack vs $ADAPTERMIX_DATA): another key."""
    import shutil

    from adaptermix.pipeline.train_stage import training_key
    from adaptermix.training.config import TrainRunConfig

    pack = tmp_path / "pack"
    shutil.copytree(TOY_PACK, pack)
    run = TrainRunConfig.model_validate({"data": {"name": "toy_sentiment", "data_dir": str(pack)}})
    before = training_key(run)
    assert training_key(run) == before
    manifest = pack / "toy_sentiment" / "dataset.json"
    data = json.loads(manifest.read_text())
    if isinstance(data.get("sha256"), dict) and data["sha256"]:
        first = sorted(data["sha256"])[0]
        data["sha256"][first] = "0" * 64
        manifest.write_text(json.dumps(data))
    else:
        (pack / "toy_sentiment" / "train.jsonl").write_text('{"text": "changed", "label": 0}\n')
    assert training_key(run) != before


def test_training_reuses_an_adapter_another_process_finished_meanwhile(study, monkeypatch):
    """Two `reproduce` processes of one study share the work: a job whose artefact appeared after the plan
    was made is reused, not trained again."""
    from adaptermix.config import load_config
    from adaptermix.pipeline import train_stage
    from adaptermix.pipeline.config import StudyConfig

    path, _ = study
    cfg = load_config(StudyConfig, path, [])
    jobs, finished = train_stage.plan_training(cfg)
    assert not finished
    # "another process" trains the last job after this one planned
    train_stage.local_trainer(cfg.model.name, progress=False)(jobs[-1:], lambda job, m: None)
    trained = []
    real = train_stage.train_adapter

    def counting(run, **kw):
        trained.append(run.data.name)
        return real(run, **kw)

    monkeypatch.setattr(train_stage, "train_adapter", counting)
    done = {}
    train_stage.local_trainer(cfg.model.name, progress=False)(jobs, lambda job, m: done.setdefault(job.key, m))
    assert len(done) == len(jobs) and trained == [j.domain for j in jobs[:-1]]
