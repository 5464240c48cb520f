"""Evaluations as plug-ins: a kind registered only here runs in a sweep, lands in the store and appears in the
report; specs list kinds as names or {name, params} and old specs keep their trial keys; ``adaptermix attack``
runs one kind on one adapter (no sweep) with the numbers a sweep gives the same adapter."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from adaptermix.cli.main import main
from adaptermix.config import StrictModel, validate
from adaptermix.errors import ConfigError
from adaptermix.evaluations.base import EvalOutcome, EvalSet, EvaluationKind
from adaptermix.evaluations.registry import EVALUATION_KINDS, colour_of, label_of, report_order
from adaptermix.sweep.spec import SweepSpec, Trial, expand, load_spec
from adaptermix.sweep.store import ResultsStore
from conftest import REPO
from helpers import TOY_SENTIMENT, make_adapter, toy_data
from tiny import tiny_encoder

NAMES = ["alpha", "beta", "gamma"]


# --------------------------------------------------------------------------------------- the toy kind


class FirstHalfConfig(StrictModel):
    fraction: float = 0.5


def run_first_half(model: Any, es: EvalSet, params: Mapping[str, Any], identity: str, batch_size: int) -> EvalOutcome:
    """Clean metrics on the first ``fraction`` of the examples (a kind that lives only in this test)."""
    from adaptermix.training.batching import TokenizedSet

    n = max(1, int(len(es.examples) * FIRST_HALF.parse(params).fraction))
    t = es.tokens
    part = TokenizedSet(t.input_ids[:n], None if t.token_type_ids is None else t.token_type_ids[:n], t.labels[:n],
                        t.pad_id)
    clean = EVALUATION_KINDS.get("clean").run(model, EvalSet(es.info, es.examples[:n], part, es.max_length),
                                              {}, identity, batch_size)
    return EvalOutcome(clean.metric, {**clean.metrics, "n_first": n})


FIRST_HALF = EvaluationKind(name="clean_first_half", config=FirstHalfConfig, run=run_first_half,
                            label="clean (first half)", colour="tab:green", adversarial=False,
                            description="clean metrics on the first examples only (a test plug-in)")


@pytest.fixture
def toy_kind() -> Iterator[EvaluationKind]:
    with EVALUATION_KINDS.registered(FIRST_HALF.name, FIRST_HALF) as kind:
        yield kind
    assert FIRST_HALF.name not in EVALUATION_KINDS


@pytest.fixture
def pool(tmp_path: Path) -> Path:
    enc = tiny_encoder("bert")
    for i, n in enumerate(NAMES):
        make_adapter(tmp_path / "pool" / n, enc, seed=i, scale=0.3, info=TOY_SENTIMENT, data=toy_data())
    return tmp_path / "pool"


def test_a_kind_registered_in_a_test_runs_in_a_sweep_lands_in_the_store_and_in_the_report(toy_kind, pool, tmp_path):
    from adaptermix.report import build_report
    from adaptermix.report import figures as F
    from adaptermix.report import tables as T
    from adaptermix.report.data import load_method
    from adaptermix.sweep.runner import run_sweep

    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(yaml.safe_dump({
        "pool": [f"pool/{n}" for n in NAMES], "subsets": {"generator": "all"},
        "evaluations": ["clean", {"name": "clean_first_half", "params": {"fraction": 0.5}}],
    }))
    study = tmp_path / "study"
    (study / "config.yaml").parent.mkdir(parents=True)
    (study / "config.yaml").write_text("name: plugin\n")
    store = study / "pfeiffer" / "results.sqlite"
    summary = run_sweep(load_spec(spec_path), store, encoder=tiny_encoder("bert"), progress=False)
    assert summary.ran == 3 * 4 * 2
    with ResultsStore(store, readonly=True) as s:
        rows = [r for r in s.rows() if r["evaluation"] == "clean_first_half"]
    assert len(rows) == 12
    assert all(json.loads(r["eval_params_json"]) == {"fraction": 0.5} for r in rows)
    n_first = {json.loads(r["metrics_json"])["n_first"] for r in rows}
    assert n_first == {rows[0]["n_examples"] // 2}  # the toy kind's own metrics are stored

    md = load_method(study / "pfeiffer")
    assert md.evaluations == ["clean", "clean_first_half"]
    assert set(md.per_k_by_eval()) == {"clean", "clean_first_half"}
    per_k = T.per_k_table(md.per_k_by_eval(), "pfeiffer")
    assert {r[0] for r in per_k.rows} == {"clean", "clean (first half)"}
    assert "clean (first half)" in {r[0] for r in T.drop_table(md.drops(), "pfeiffer").rows}
    fig = F.per_k_grid(md.per_k_by_eval())
    lines = {line.get_label(): line.get_color() for ax in fig.axes for line in ax.get_lines()}
    assert lines["clean (first half)"] == "tab:green"
    index = build_report(study)
    assert "clean (first half)" in index.read_text(encoding="utf-8")

    # A store holding a kind that is not registered (a plug-in not imported): still shown, by its name.
    EVALUATION_KINDS.unregister(FIRST_HALF.name)
    try:
        md = load_method(study / "pfeiffer")
        assert md.evaluations == ["clean", "clean_first_half"]
        assert {r[0] for r in T.per_k_table(md.per_k_by_eval(), "p").rows} == {"clean", "clean_first_half"}
        assert label_of("clean_first_half") == "clean_first_half" and colour_of("clean_first_half").startswith("tab:")
    finally:
        EVALUATION_KINDS.register(FIRST_HALF.name, FIRST_HALF)


def test_the_toy_kinds_parameters_are_checked_and_listed(toy_kind, capsys):
    pool = {n: n for n in NAMES}
    spec = validate(SweepSpec, {"pool": pool, "evaluations": ["clean_first_half"]})
    assert spec.eval_params("clean_first_half") == {"fraction": 0.5}  # defaults are keyed (defaults_in_key)
    with pytest.raises(ConfigError, match="unknown parameter 'share' of evaluation 'clean_first_half'; valid: fraction"):
        validate(SweepSpec, {"pool": pool, "evaluations": [{"name": "clean_first_half", "params": {"share": 1}}]})
    with pytest.raises(ConfigError, match=r"Input should be 'clean', 'clean_first_half', 'fgsm' or 'textfooler'"):
        validate(SweepSpec, {"pool": pool, "evaluations": ["pgd"]})
    assert main(["list", "evaluations"]) == 0
    out = capsys.readouterr().out
    assert "clean_first_half" in out and "fraction" in out and "default 0.5" in out
    assert "epsilon" in out and "default 0.01" in out and "min_cos_sim" in out


def test_report_order_labels_and_colours_come_from_the_registry():
    assert report_order(["fgsm", "zzz", "clean", "textfooler", "aaa"]) == ["clean", "textfooler", "fgsm", "aaa", "zzz"]
    assert label_of("fgsm") == "white-box (FGSM)" and label_of("textfooler") == "black-box (TextFooler)"
    assert (colour_of("clean"), colour_of("textfooler"), colour_of("fgsm")) == ("tab:blue", "tab:orange", "tab:red")
    assert colour_of("zzz") == colour_of("zzz")


def test_registry_unregister_and_registered():
    from adaptermix.registry import Registry

    reg: Registry[int] = Registry("thing")
    with reg.registered("a", 1):
        assert reg.get("a") == 1
    assert "a" not in reg
    with pytest.raises(KeyError):
        reg.unregister("a")


# ---------------------------------------------------------------------------------- key stability

# Computed on main before evaluation kinds existed (commit 5e7b137): target rte, subset (rte, sst2),
# rule average, split test, seed 0, generator all.
OLD_KEYS = {
    "clean": "e5d01354f989cd30",
    "fgsm": "948858dcfad6585c",  # eval_params {"epsilon": 0.01}: the old default
    "fgsm_0.02": "9bb06b916d2acf7f",  # fgsm: {epsilon: 0.02}
    "textfooler": "8c2608c5a5e52e4f",  # textfooler: {max_queries: 500, resources: {sentence_encoder: x/y}}
}
TF = {"max_queries": 500, "resources": {"sentence_encoder": "x/y"}}
POOL = {n: n for n in ("sst2", "rte", "imdb")}


def _keys(raw: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    spec = validate(SweepSpec, {"pool": POOL, "subsets": {"generator": "all"}, **raw})
    return {t.evaluation: (t.key, dict(t.eval_params)) for t in expand(spec, list(POOL))
            if t.target == "rte" and t.subset == ("rte", "sst2")}


@pytest.mark.parametrize("raw", [
    {"evaluations": ["clean", "fgsm", "textfooler"], "textfooler": TF},  # the old form
    {"evaluations": ["clean", "fgsm", {"name": "textfooler", "params": TF}]},  # the new form
    {"evaluations": ["clean", {"name": "fgsm", "params": {"epsilon": 0.01}}, {"name": "textfooler", "params": TF}]},
    {"evaluations": ["clean", "fgsm", "textfooler"], "evaluation_params": {"textfooler": TF}},  # as dumped
])
def test_trial_keys_of_old_and_new_specs_are_those_of_main(raw):
    keys = _keys(raw)
    assert keys["clean"] == (OLD_KEYS["clean"], {})
    assert keys["fgsm"] == (OLD_KEYS["fgsm"], {"epsilon": 0.01})
    assert keys["textfooler"] == (OLD_KEYS["textfooler"], TF)  # only the parameters given, as before


def test_fgsm_epsilon_keys_old_and_new_form():
    old = _keys({"evaluations": ["clean", "fgsm"], "fgsm": {"epsilon": 0.02}})
    new = _keys({"evaluations": [{"name": "fgsm", "params": {"epsilon": 0.02}}, "clean"]})
    assert old["fgsm"] == new["fgsm"] == (OLD_KEYS["fgsm_0.02"], {"epsilon": 0.02})
    assert Trial.from_dict(json.loads(json.dumps(expand(validate(SweepSpec, {"pool": POOL, "evaluations": ["fgsm"]}),
                                                        list(POOL))[0].to_dict()))).eval_params == {"epsilon": 0.01}


def test_old_spec_fields_still_read():
    spec = validate(SweepSpec, {"pool": POOL, "evaluations": ["clean", "fgsm"], "fgsm": {"epsilon": 0.05},
                                "textfooler": {"max_queries": 9}})
    assert spec.evaluations == spec.evaluation_names == ("clean", "fgsm")
    assert spec.fgsm == {"epsilon": 0.05} and spec.textfooler == {"max_queries": 9}
    assert validate(SweepSpec, spec.model_dump(mode="json")) == spec  # a dumped spec loads back the same
    plain = validate(SweepSpec, {"pool": POOL, "evaluations": ["clean", {"name": "fgsm", "params": {}}]})
    assert plain == validate(SweepSpec, {"pool": POOL, "evaluations": ["clean", "fgsm"]})
    with pytest.raises(ConfigError, match="parameters of evaluation 'fgsm' are given twice"):
        validate(SweepSpec, {"pool": POOL, "evaluations": [{"name": "fgsm", "params": {}}], "fgsm": {"epsilon": 1}})
    with pytest.raises(ConfigError, match="evaluation_params: evaluation 'fgsm': epsilon: Input should be a valid"):
        validate(SweepSpec, {"pool": POOL, "evaluations": ["fgsm"], "fgsm": {"epsilon": "big"}})
    with pytest.raises(ConfigError, match="unknown parameter 'resources.bogus' of evaluation 'textfooler'; valid: "
                                          "data_dir, cache_dir"):
        validate(SweepSpec, {"pool": POOL, "evaluations": ["textfooler"], "textfooler": {"resources": {"bogus": 1}}})


# Per method and stage: (trials, SHA-256 of the sorted keys), computed on main (commit 5e7b137) with the
# pool at /x/<method>/<domain> and the FSD matrix of _fsd below.
CONFIG_KEYS = {
    "demo.yaml": {"pfeiffer/greedy": (50, "6efaf931eace72b6"), "pfeiffer/pruning": (390, "8f5f05637b2d963f"),
                  "pfeiffer/sweep": (185, "7e04db351ee2a336")},
    "cpu-study.yaml": {f"{m}/{stage}": value for m in ("houlsby", "lora", "pfeiffer") for stage, value in (
        ("greedy", (338, "53abe1b9e7ba4123")), ("pruning", (858, "21c563328e28aee0")),
        ("sweep", (338, "3c7cbf9159ffea9e")))},
}


def _fsd(n: int) -> np.ndarray:
    fsd = np.array([[abs(i - j) * 1.5 + (i * 7 + j * 3) % 5 * 0.01 for j in range(n)] for i in range(n)])
    fsd = (fsd + fsd.T) / 2
    np.fill_diagonal(fsd, 0)
    return fsd


@pytest.mark.parametrize("name", sorted(CONFIG_KEYS))
def test_shipped_study_configs_expand_to_the_trial_keys_of_main(name):
    from adaptermix.cli.reproduce import load_studies
    from adaptermix.pipeline.stages import MethodPool, sweep_specs

    got = {}
    for cfg in load_studies(str(REPO / "configs" / name), []):
        names = cfg.domain_names()
        for m in cfg.methods:
            label = cfg.method_label(m)
            mp = MethodPool(label, {d: Path("/x") / label / d for d in names})
            for stage in ("sweep", "greedy", "pruning"):
                keys = [t.key for spec in sweep_specs(cfg, mp, stage) for t in expand(spec, names, _fsd(len(names)))]
                got[f"{label}/{stage}"] = (len(keys), hashlib.sha256(",".join(sorted(keys)).encode()).hexdigest()[:16])
    assert got == CONFIG_KEYS[name]


def test_study_config_takes_the_new_form_too():
    from adaptermix.pipeline.config import SweepStage

    old = SweepStage.model_validate({"evaluations": ["clean", "fgsm", "textfooler"], "textfooler": {"max_examples": 10}})
    new = SweepStage.model_validate({"evaluations": ["clean", {"name": "fgsm"},
                                                     {"name": "textfooler", "params": {"max_examples": 10}}]})
    assert old == new and old.fgsm == {} and old.textfooler == {"max_examples": 10}  # as given, as before
    assert new.eval_params("fgsm") == {"epsilon": 0.01} and new.eval_params("textfooler") == {"max_examples": 10}
    dumped = new.model_dump(mode="json")  # the layout of before kinds: fgsm/textfooler keys after evaluations
    assert list(dumped)[list(dumped).index("evaluations"):][:3] == ["evaluations", "fgsm", "textfooler"]
    assert "evaluation_params" not in dumped and SweepStage.model_validate(dumped) == new
    with pytest.raises(ValueError, match="Input should be 'clean', 'fgsm' or 'textfooler'"):
        SweepStage.model_validate({"evaluations": ["pgd"]})


# ------------------------------------------------------------------------------ adaptermix attack


@pytest.fixture
def saved_adapter(tmp_path: Path) -> tuple[Path, Any]:
    """A tiny encoder saved to disk (the attack command loads it by name) and one adapter on it."""
    from adaptermix.backbone.loading import load_encoder

    tiny = tiny_encoder("bert")
    tiny.model.save_pretrained(tmp_path / "model")
    tiny.tokenizer.save_pretrained(tmp_path / "model")
    enc = load_encoder(str(tmp_path / "model"))
    return make_adapter(tmp_path / "pool" / "alpha", enc, seed=1, scale=0.3, info=TOY_SENTIMENT,
                        data=toy_data()), enc


def test_attack_fgsm_gives_the_numbers_a_sweep_gives_the_same_adapter(saved_adapter, tmp_path, capsys):
    from adaptermix.sweep.runner import run_sweep

    adapter, enc = saved_adapter
    out = tmp_path / "fgsm"
    assert main(["attack", str(adapter), "--attack", "fgsm", "--max-examples", "12", "--epsilon", "0.05",
                 "-o", str(out)]) == 0
    assert "fgsm on toy_sentiment (12 test examples)" in capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    assert not (out / "examples.md").exists() and report["attack"] == "fgsm" and report["examples"] == []
    assert report["attacked"]["epsilon"] == 0.05 and report["n_examples"] == 12
    spec = validate(SweepSpec, {"pool": {"alpha": str(adapter)}, "max_eval_examples": 12, "batch_size": 64,
                                "evaluations": ["clean", {"name": "fgsm", "params": {"epsilon": 0.05}}]})
    run_sweep(spec, tmp_path / "one.sqlite", encoder=enc, progress=False)
    with ResultsStore(tmp_path / "one.sqlite", readonly=True) as s:
        metrics = {r["evaluation"]: json.loads(r["metrics_json"]) for r in s.rows()}
    assert report["clean"] == {k: v for k, v in metrics["clean"].items() if k in report["clean"]}
    assert report["attacked"] == {k: v for k, v in metrics["fgsm"].items() if k in report["attacked"]}
    # rerunning the same command into its own output is allowed (same stamp), other flags are refused
    assert main(["attack", str(adapter), "--attack", "fgsm", "--max-examples", "12", "--epsilon", "0.05",
                 "-o", str(out)]) == 0
    capsys.readouterr()
    assert main(["attack", str(adapter), "--attack", "clean", "-o", str(tmp_path / "c")]) == 2
    assert "unknown attack 'clean'; valid: fgsm, textfooler" in capsys.readouterr().err
    assert main(["attack", str(adapter), "--attack", "fgsm", "--param", "eps=1", "-o", str(tmp_path / "e")]) == 2
    assert "unknown parameter 'eps' of evaluation 'fgsm'; valid: epsilon" in capsys.readouterr().err


def test_attack_textfooler_writes_examples(saved_adapter, tmp_path):
    from adaptermix.attacks import textfooler_eval as TE
    from adaptermix.attacks.textfooler import TextFoolerConfig, TextFoolerJin2019
    from test_textfooler import resources

    adapter, _ = saved_adapter
    params = {"max_examples": 6}  # what the command asks for: --max-examples is also the attack's cap
    TE._ATTACKS[json.dumps(params, sort_keys=True)] = TextFoolerJin2019(TextFoolerConfig(**params), resources())
    try:
        out = tmp_path / "tf"
        assert main(["attack", str(adapter), "--max-examples", "6", "-o", str(out)]) == 0
    finally:
        TE._ATTACKS.clear()
    report = json.loads((out / "report.json").read_text())
    assert report["attack"] == "textfooler" and report["attacked"]["caps"]["max_examples"] == 6, report["attacked"]
    assert (out / "examples.md").read_text().startswith("| # | gold |")
    assert len(report["examples"]) == report["attacked"]["n_examples"] - report["attacked"]["n_skipped"]


# The sweep section of configs/cpu-study.yaml dumped on main before kinds existed (commit 5e7b137), in order:
# the input of `adaptermix reproduce`'s output stamp and the saved config.yaml, so a study resumes.
OLD_CPU_SWEEP = {"enabled": True, "generator": "sample", "per_k": 1, "budget": None, "strategy": "model", "min_k": 1,
                 "rules": [{"name": "average"}], "max_eval_examples": 100, "evaluations": ["clean", "fgsm"],
                 "fgsm": {"epsilon": 0.01}, "textfooler": {}, "textfooler_per_k": None, "batch_size": 64, "seed": 0}


def test_dumps_keep_the_layout_of_before_kinds():
    from adaptermix.cli.reproduce import load_studies

    (cfg,) = load_studies(str(REPO / "configs" / "cpu-study.yaml"), [])
    assert list(cfg.model_dump(mode="json")["sweep"].items()) == list(OLD_CPU_SWEEP.items())
    # a sweep spec's dump (a run's provenance in the store) as before: fgsm / textfooler fields, no new key
    spec = validate(SweepSpec, {"pool": POOL, "evaluations": ["textfooler"], "textfooler": {"max_queries": 3}})
    dumped = spec.model_dump(mode="json")
    assert dumped["fgsm"] == {"epsilon": 0.01} and dumped["textfooler"] == {"max_queries": 3}
    assert "evaluation_params" not in dumped
    again = validate(SweepSpec, dumped)  # loads back to the same trials (FGSM's defaults now given)
    assert [t.key for t in expand(again, list(POOL))] == [t.key for t in expand(spec, list(POOL))]
    assert "fgsm" not in spec.model_dump(exclude_defaults=True)
