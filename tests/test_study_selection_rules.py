"""A study's ``selection`` (AdapterSoup beside greedy, Fig. 7) and ``rule_comparison`` ("Which rule?") sections:
validated, off by default, left out of old configs' dumps and of every output stamp, run on a tiny study
(the trials land in the method's store, the report shows them), and only the new trials run when a study
that already ran turns them on."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from adaptermix.cli.main import main
from adaptermix.cli.reproduce import load_studies
from adaptermix.config import dump_config, validate
from adaptermix.errors import AdapterMixError, ConfigError
from adaptermix.io import output_stamp
from adaptermix.methods.config import MethodConfig
from adaptermix.pipeline.config import StudyConfig
from adaptermix.pipeline.stages import MethodPool, added_specs, rule_comparison_specs, rule_plan, sweep_specs
from adaptermix.sweep.spec import expand
from adaptermix.sweep.stats import ALL_DOMAIN
from adaptermix.sweep.store import ResultsStore
from conftest import REPO
from helpers import TOY_PACK
from test_adaptersoup import fake_encode
from tiny import tiny_encoder

SOUP = ("adaptersoup_similarity", "adaptersoup_cluster")

# Pinned before the sections existed (commit 43e4bbc): each shipped study's output stamp, and a hash of the
# sorted trial keys of its sweep, greedy and pruning stages' specs (sweep_specs: without the sections' own,
# added_specs; an FSD matrix and a pool of the study's domains made up below), per method (see also
# tests/test_evaluation_plugins.py, CONFIG_KEYS).
PINNED = {
    "demo": ("a4ca5e993afa212c", {"pfeiffer": ("7e04db351ee2", "15453ed1c162", "8f5f05637b2d")}),
    "cpu-study": ("612ba7d703558397", dict.fromkeys(("houlsby", "pfeiffer", "lora"),
                                                    ("3c7cbf9159ff", "d61abd5005e1", "21c563328e28"))),
    "paper-bert-base": ("b580026edb833648", dict.fromkeys(("houlsby", "pfeiffer", "lora"),
                                                          ("e3b0c44298fc", "48c325acc602", "eceb3aca1f58"))),
    "paper-roberta-large": ("6d9c4a0b067243da", dict.fromkeys(("houlsby", "pfeiffer", "lora"),
                                                              ("e3b0c44298fc", "48c325acc602", "eceb3aca1f58"))),
}
#: sha256 (16 hex) of the saved config.yaml before the sections existed (cpu-study: without them).
PINNED_DUMPS = {"demo": "fcabf43cfce3636e", "cpu-study": "7437610426429e41"}


def _stage_keys(cfg: StudyConfig, label: str, stage: str) -> str:
    names = cfg.domain_names()
    n = len(names)
    fsd = np.add.outer(np.arange(n), np.arange(n)) % 7 / 7.0
    np.fill_diagonal(fsd, 0)
    keys = []
    for spec in sweep_specs(cfg, MethodPool(label, {d: Path("/x") / d for d in names}), stage):
        spec = spec.model_copy(update={"precision": "fp32"})
        if spec.subsets.generator == ("all",) and spec.subsets.ks is None and n > 8:
            continue  # the paper's 53,248 mixtures per method: not enumerated here
        keys += [t.key for t in expand(spec, names, fsd)]
    return hashlib.sha256(",".join(sorted(keys)).encode()).hexdigest()[:12]


@pytest.mark.parametrize("config", ["demo.yaml", "cpu-study.yaml", "paper.yaml"])
def test_shipped_studies_keep_their_stamps_dumps_and_trial_keys(config: str) -> None:
    for cfg in load_studies(str(REPO / "configs" / config), []):
        stamp, per_method = PINNED[cfg.name]
        assert output_stamp("reproduce", cfg.stamp_inputs())["inputs"] == stamp
        bare = cfg.model_copy(update={"selection": None, "rule_comparison": None})
        if cfg.name in PINNED_DUMPS:
            assert hashlib.sha256(dump_config(bare).encode()).hexdigest()[:16] == PINNED_DUMPS[cfg.name]
        assert "selection" not in bare.model_dump() and "rule_comparison" not in bare.model_dump(mode="json")
        for method in cfg.methods:
            label = cfg.method_label(method)
            got = tuple(_stage_keys(cfg, label, s) for s in ("sweep", "greedy", "pruning"))
            assert got == per_method[label], (cfg.name, label)


def test_cpu_study_turns_on_adaptersoup_and_the_rule_comparison() -> None:
    (cfg,) = load_studies(str(REPO / "configs" / "cpu-study.yaml"), [])
    assert cfg.selection is not None and tuple(cfg.selection.generators) == SOUP
    assert cfg.rule_comparison is not None and cfg.rule_comparison.merge_space == "tv"
    names = [r.name for r in cfg.rule_comparison.rules]
    assert {"average", "tall_mask", "emr", "model_stock", "magnitude_prune"} <= set(names)
    # the study compares the rules at the settings chosen on the validation split (scripts/tune_rules.py)
    tuned = yaml.safe_load((REPO / "configs" / "sweep-cpu-all-domain-tuned.yaml").read_text())["rules"]
    assert sorted((r.name, json.dumps(r.params, sort_keys=True)) for r in cfg.rule_comparison.rules) == sorted(
        (r["name"], json.dumps(r.get("params", {}), sort_keys=True)) for r in tuned)
    domains = cfg.domain_names()
    for method in cfg.methods:
        assert rule_plan(cfg, method).skipped == ()  # every rule runs for every method
        mp = MethodPool(cfg.method_label(method), {d: Path("/x") / d for d in domains})
        (greedy,) = sweep_specs(cfg, mp, "greedy")  # Alg. 1's spec as before, AdapterSoup's beside it
        assert greedy.subsets.generator == ("greedy", "greedy_max")
        assert [s.subsets.generator for s in added_specs(cfg, mp, "greedy")] == [SOUP]
        (rc,) = added_specs(cfg, mp, "sweep")
        assert rc == rule_comparison_specs(cfg, mp)[0]
        assert rc.subsets.ks == (13,) and rc.subsets.tag == ALL_DOMAIN and rc.merge_space == "tv"
        trials = expand(rc.model_copy(update={"precision": "fp32"}), domains)
        assert len(trials) == 13 * len(cfg.rule_comparison.rules) and {t.k for t in trials} == {13} and {t.tag for t in trials} == {ALL_DOMAIN}
        # compared with the sweep's single adapters: same evaluation setting
        (single,) = [t for t in expand(sweep_specs(cfg, mp, "sweep")[0].model_copy(update={"precision": "fp32"}),
                                       domains) if t.k == 1 and t.target == "sst2" and t.evaluation == "clean"]
        one = next(t for t in trials if t.target == "sst2")
        assert (one.split, one.max_eval_examples, one.seed, one.max_length, dict(one.eval_params)) == (
            single.split, single.max_eval_examples, single.seed, single.max_length, dict(single.eval_params))


def _study(**extra: object) -> StudyConfig:
    return validate(StudyConfig, {"domains": ["a", "b"], "methods": [{"name": "pfeiffer"}, {"name": "lora"}],
                                  **extra})


def test_sections_validate() -> None:
    cfg = _study(selection={})
    assert cfg.selection is not None and set(cfg.selection.generators) == set(SOUP)  # the registry's, by default
    with pytest.raises(Exception, match="'sample' is not a selection generator; valid: adaptersoup_cluster, "
                       "adaptersoup_similarity, greedy, greedy_max"):
        _study(selection={"generators": ["sample"]})
    with pytest.raises(Exception, match="threshold"):
        _study(selection={"adaptersoup": {"threshold": 3}})
    with pytest.raises(Exception, match="'fgsm' is not among sweep.evaluations"):
        _study(rule_comparison={"rules": [{"name": "average"}], "evaluations": ["fgsm"]})
    with pytest.raises(Exception, match="needs sweep.enabled"):
        _study(sweep={"enabled": False}, rule_comparison={"rules": [{"name": "average"}]})
    with pytest.raises(Exception, match="listed twice"):
        _study(rule_comparison={"rules": [{"name": "ties"}, {"name": "ties"}]})
    pfeiffer, lora = MethodConfig(name="pfeiffer"), MethodConfig(name="lora")
    cfg = _study(rule_comparison={"rules": [{"name": "average"}, {"name": "model_stock"}, {"name": "svd"}]})
    plan = rule_plan(cfg, pfeiffer)
    assert [r.name for r in plan.rules] == ["average", "model_stock"] and not plan.lora_rules
    assert plan.skipped == ("rule 'svd' merges LoRA updates B A: skipped for method 'pfeiffer'",)
    assert [r.name for r in rule_plan(cfg, lora).lora_rules] == ["svd"]
    specs = rule_comparison_specs(cfg, MethodPool("lora", {"a": Path("/x/a"), "b": Path("/x/b")}))
    assert [(s.merge_space, [r.name for r in s.rules]) for s in specs] == [("tv", ["average", "model_stock"]),
                                                                         ("raw", ["svd"])]
    raw = _study(rule_comparison={"rules": [{"name": "model_stock"}], "merge_space": "raw"})
    with pytest.raises(ConfigError, match="'model_stock' is defined on task vectors: set rule_comparison.merge_space"):
        rule_plan(raw, pfeiffer)
    with pytest.raises(ConfigError, match="'cat' changes the LoRA rank"):
        rule_plan(_study(rule_comparison={"rules": [{"name": "cat"}]}), lora)
    with pytest.raises(AdapterMixError, match="unknown merge rule 'nope'"):
        rule_plan(_study(rule_comparison={"rules": [{"name": "nope"}]}), lora)
    # the sections stay in a dump when set (config.yaml), and out of the output stamp
    cfg = _study(selection={}, rule_comparison={"rules": [{"name": "average"}]})
    assert validate(StudyConfig, cfg.model_dump(mode="json")) == cfg
    assert cfg.stamp_inputs() == _study().stamp_inputs()


@pytest.fixture
def study(tmp_path: Path) -> tuple[Path, Path]:
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
        "sweep": {"generator": "all", "evaluations": ["clean"], "max_eval_examples": 8},
        "pruning": {"enabled": False},
        "analysis": {"enabled": False},
    }
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path, tmp_path / "study"


RULES = [{"name": "average"}, {"name": "ties", "params": {"density": 0.5}}, {"name": "model_stock"},
         {"name": "emr"}, {"name": "svd"}]


def test_study_runs_adaptersoup_and_the_rule_comparison_only_once(study, capsys, monkeypatch) -> None:
    import adaptermix.analysis.similarity as similarity

    monkeypatch.setattr(similarity, "load_sentence_encoder", lambda *a, **k: fake_encode)  # nothing downloaded
    path, out = study
    store = out / "pfeiffer" / "results.sqlite"
    assert main(["reproduce", str(path), "--stages", "train,sweep,greedy"]) == 0
    with ResultsStore(store, readonly=True) as s:
        before = {r["key"]: r["metric"] for r in s.rows()}
        assert not s.selections()
    capsys.readouterr()

    # the study ran; now it turns both sections on: the stamp check passes (no --overwrite) and only the new
    # trials run (AdapterSoup's picks, the all-domain mixtures), the adapters and stored trials reused
    cfg = yaml.safe_load(path.read_text())
    cfg["selection"] = {"adaptersoup": {"n_docs": 6, "min_share": 0.2}}
    cfg["rule_comparison"] = {"rules": RULES}
    path.write_text(yaml.safe_dump(cfg))
    mtime = (out / "adapters" / "pfeiffer" / "toy_sentiment" / "adapter.safetensors").stat().st_mtime_ns
    assert main(["reproduce", str(path)]) == 0
    printed = capsys.readouterr().out
    assert "rule comparison: rule 'svd' merges LoRA updates B A: skipped for method 'pfeiffer'" in printed
    assert (out / "adapters" / "pfeiffer" / "toy_sentiment" / "adapter.safetensors").stat().st_mtime_ns == mtime
    with ResultsStore(store, readonly=True) as s:
        rows = s.rows()
        chosen = s.selections()
    assert {k: m for k, m in ((r["key"], r["metric"]) for r in rows) if k in before} == before
    new = [r for r in rows if r["key"] not in before]
    assert {r["tag"] for r in new} == {*SOUP, ALL_DOMAIN}
    assert set(chosen) == {(g, t) for g in SOUP for t in ("toy_sentiment", "toy_nli", "toy_sts")}
    every = [r for r in new if r["tag"] == ALL_DOMAIN]
    assert len(every) == 3 * 4 and {r["k"] for r in every} == {3}  # 3 targets x 4 rules (svd skipped)
    assert {r["rule"] for r in every} == {"average", "ties", "model_stock", "emr"}
    assert all('"merge_space":"tv"' in r["trial_json"] for r in every)
    soup = [r for r in new if r["tag"] == SOUP[0] and r["target"] == "toy_sentiment"]
    assert sorted(r["k"] for r in soup) == list(range(1, len(chosen[(SOUP[0], "toy_sentiment")]["adapters"]) + 1))
    ran = [line for line in printed.splitlines() if "trials run" in line]
    assert sum(int(line.split(": ", 2)[-1].split()[0]) for line in ran) == len(new), ran

    html = (out / "report" / "index.html").read_text(encoding="utf-8")
    for text in ("Fig. 7: greedy mixing vs empirical bounds, AdapterSoup and random selection",
                 "AdapterSoup similarity", "AdapterSoup cluster", "random selection",
                 "Which rule? The all-domain mixture per merge rule", "rules_drop_pfeiffer", "model_stock"):
        assert text in html, text
    assert "selection:" in (out / "config.yaml").read_text()

    assert main(["reproduce", str(path)]) == 0  # and again: nothing to do
    again = capsys.readouterr().out
    assert all(line.split(": ", 2)[-1].startswith("0 trials run")
               for line in again.splitlines() if "trials run" in line), again


def test_subsets_tag_marks_population_trials_apart() -> None:
    from adaptermix.sweep.spec import SweepSpec

    pool = {n: n for n in ("a", "b", "c")}
    spec = validate(SweepSpec, {"pool": pool, "subsets": {"generator": "all", "ks": [3], "tag": ALL_DOMAIN}})
    trials = expand(spec, list(pool))
    assert [(t.target, t.k, t.tag) for t in trials] == [(n, 3, ALL_DOMAIN) for n in pool]
    plain = validate(SweepSpec, {"pool": pool, "subsets": {"generator": "all", "ks": [3]}})
    assert {t.key for t in expand(plain, list(pool))}.isdisjoint(t.key for t in trials)
    assert "tag" not in plain.model_dump()["subsets"], "a spec without a tag dumps as before (provenance)"
    again = validate(SweepSpec, spec.model_dump(mode="json"))
    assert again.subsets == spec.subsets and [t.key for t in expand(again, list(pool))] == [t.key for t in trials]
    for bad, msg in (({"generator": ["greedy"], "tag": "x"}, "not 'greedy'"),
                     ({"generator": "adaptive", "budget": 2, "tag": "x"}, "not 'adaptive'"),
                     ({"tag": "a/b"}, "subsets.tag 'a/b'")):
        with pytest.raises(Exception, match=msg):
            validate(SweepSpec, {"pool": pool, "subsets": bad})


def test_rule_comparison_reads_all_domain_trials_and_prefers_them() -> None:
    from adaptermix.sweep.stats import rule_comparison

    def row(target: str, k: int, rule: str, metric: float, tag: str = "") -> dict:
        return {"target": target, "k": k, "rule": rule, "rule_params_json": "{}", "metric": metric, "tag": tag,
                "evaluation": "clean", "eval_params_json": "{}", "split": "test", "max_eval_examples": 8,
                "seed": 0, "max_length": 32, "subset_json": "[]"}

    rows = [row("A", 1, "average", 0.9), row("A", 2, "average", 0.5), row("A", 3, "average", 0.4),
            row("A", 3, "average", 0.45, ALL_DOMAIN), row("A", 3, "emr", 0.85, ALL_DOMAIN),
            row("A", 1, "average", 0.1, "greedy_min"), row("A", 3, "ties", 0.2, "greedy_min")]
    out = {(r.rule, r.target): r for r in rule_comparison(rows)}
    assert set(out) == {("emr", "*"), ("emr", "A"), ("average", "*"), ("average", "A")}  # greedy's never
    assert out[("average", "A")].metric_all == 0.45 and out[("average", "A")].metric_single == 0.9
    assert out[("emr", "A")].k == 3
