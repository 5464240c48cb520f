"""The shipped configs validate: demo (the README's default), cpu-study, paper (both models), sst2-pfeiffer."""

from __future__ import annotations

import pytest

from adaptermix.cli.reproduce import load_studies
from adaptermix.config import load_config
from adaptermix.training.config import TrainRunConfig
from conftest import REPO


def test_demo_config():
    (cfg,) = load_studies(str(REPO / "configs" / "demo.yaml"), [])
    from adaptermix.attacks.textfooler import TextFoolerConfig
    from adaptermix.config import validate

    validate(TextFoolerConfig, cfg.sweep.textfooler)
    assert len(cfg.domains) >= 5 and len(cfg.methods) == 1
    assert cfg.sweep.generator == "all" and set(cfg.sweep.evaluations) == {"clean", "fgsm", "textfooler"}
    assert cfg.data.max_train and cfg.sweep.max_eval_examples, "the demo must be capped"


def test_cpu_study_config():
    (cfg,) = load_studies(str(REPO / "configs" / "cpu-study.yaml"), [])
    assert {m.name for m in cfg.methods} == {"houlsby", "pfeiffer", "lora"}
    assert len(cfg.domain_names()) == 13


def test_paper_config_has_both_models_and_table17():
    studies = load_studies(str(REPO / "configs" / "paper.yaml"), [])
    assert [s.model.name for s in studies] == ["bert-base-uncased", "roberta-large"]
    bert, roberta = studies
    assert {m.bottleneck_size for m in bert.methods if m.name != "lora"} == {256}
    assert {m.bottleneck_size for m in roberta.methods if m.name != "lora"} == {64}
    assert [m.rank for m in bert.methods if m.name == "lora"] == [4]
    assert len(bert.domain_names()) == 13 and bert.data.source == "hf"
    assert bert.train_run(bert.methods[0], "mnli", "x").train.epochs == 20
    assert bert.train_run(bert.methods[0], "mrpc", "x").train.epochs == 5
    assert roberta.train.learning_rate == 3e-4 and roberta.train.batch_size == 64
    assert bert.sweep.generator == "all" and bert.sweep.fgsm["epsilon"] == 0.01
    from adaptermix.attacks.textfooler import TextFoolerConfig
    from adaptermix.config import validate

    for study in studies:
        tf = validate(TextFoolerConfig, study.sweep.textfooler)
        assert tf.min_cos_sim == 0.8 and tf.sim_threshold == pytest.approx(0.84, abs=1e-3)


def test_overrides_apply_to_every_study_of_a_suite():
    studies = load_studies(str(REPO / "configs" / "paper.yaml"), ["sweep.max_eval_examples=10"])
    assert all(s.sweep.max_eval_examples == 10 for s in studies)


@pytest.mark.parametrize("name", ["sst2-pfeiffer.yaml"])
def test_train_configs(name):
    assert load_config(TrainRunConfig, REPO / "configs" / name).data.name == "sst2"
