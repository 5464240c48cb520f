"""Precision (fp32 | bf16 | auto): resolution, the bf16 encoder with fp32 adapters, keys and stores."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
import yaml

from adaptermix import device
from adaptermix.artefact import load_adapter, model_from_adapter, new_model
from adaptermix.attacks.fgsm import fgsm_evaluate
from adaptermix.attacks.model_victim import ModelVictim
from adaptermix.backbone.loading import Encoder, cast_encoder
from adaptermix.cli.main import main
from adaptermix.data import load_task
from adaptermix.data.config import DataConfig
from adaptermix.errors import ArtefactError, ConfigError
from adaptermix.methods import MethodConfig
from adaptermix.model import HeadConfig
from adaptermix.sweep.runner import run_sweep
from adaptermix.sweep.shards import StoreConflictError, merge
from adaptermix.sweep.spec import SweepSpec, Trial, expand, load_spec
from adaptermix.sweep.store import Provenance, ResultsStore
from adaptermix.training.batching import tokenize
from adaptermix.training.config import TrainConfig
from adaptermix.training.evaluate import predict
from adaptermix.training.loop import train
from helpers import TOY_SENTIMENT, make_adapter, toy_data
from tiny import tiny_encoder

METHODS = ("pfeiffer", "houlsby", "lora", "adamix")


def bf16_copy(enc: Encoder) -> Encoder:
    """A bf16 copy of a (cached, never mutated) tiny encoder; same fingerprint, as load_encoder gives."""
    return cast_encoder(Encoder(enc.name, copy.deepcopy(enc.model), enc.tokenizer, enc.spec, enc.fingerprint),
                        torch.bfloat16)


@pytest.fixture(scope="module")
def enc16() -> Encoder:
    return bf16_copy(tiny_encoder("bert"))


@pytest.fixture(scope="module")
def toy_test():
    return load_task(DataConfig(**toy_data()), splits=("train", "validation", "test"))


# ---------------------------------------------------------------------------------------- resolution


def test_auto_is_bf16_only_where_the_cpu_has_fast_bf16(monkeypatch):
    monkeypatch.delenv(device.PRECISION_ENV, raising=False)
    cpu = torch.device("cpu")
    monkeypatch.setattr(device, "cpu_flags", lambda: frozenset({"sse4_2", "amx_bf16"}))
    assert device.resolve_precision(None, cpu) == torch.bfloat16
    assert device.resolve_precision("auto", cpu) == torch.bfloat16
    monkeypatch.setattr(device, "cpu_flags", lambda: frozenset({"avx512_bf16"}))
    assert device.resolve_precision("auto", cpu) == torch.bfloat16
    monkeypatch.setattr(device, "cpu_flags", lambda: frozenset({"avx2", "avx512f"}))
    assert device.resolve_precision("auto", cpu) == torch.float32
    assert device.resolve_precision("bf16", cpu) == torch.bfloat16  # explicit bf16 is honoured anyway
    monkeypatch.setenv(device.PRECISION_ENV, "BF16")
    assert device.resolve_precision(None, cpu) == torch.bfloat16
    assert device.resolve_precision("fp32", cpu) == torch.float32  # an explicit value beats the env


def test_cpu_flags_parse_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse avx512_bf16 amx_bf16\n\nprocessor\t: 1\n")
    assert {"avx512_bf16", "amx_bf16", "fpu"} <= device.cpu_flags.__wrapped__(str(info))
    assert device.cpu_flags.__wrapped__(str(tmp_path / "missing")) == frozenset()


def test_bad_precision_is_one_line():
    with pytest.raises(ConfigError, match=r"^unknown precision 'fp16'; valid: auto, fp32, bf16$"):
        device.resolve_precision("fp16")
    assert device.precision_name(torch.bfloat16) == "bf16" and device.precision_name(torch.float32) == "fp32"


# ------------------------------------------------------------------------------- bf16 encoder, fp32 adapter


@pytest.mark.parametrize("method", METHODS)
def test_bf16_encoder_fp32_adapter_and_agreement(method, tmp_path, enc16, toy_test):
    enc = tiny_encoder("bert")
    adapter = load_adapter(make_adapter(tmp_path / method, enc, method=method, scale=0.3, info=TOY_SENTIMENT))
    m32, m16 = model_from_adapter(adapter, enc), model_from_adapter(adapter, enc16)
    try:
        assert {p.dtype for p in enc16.model.parameters()} == {torch.bfloat16}
        assert {p.dtype for p in m16.body.parameters()} | {p.dtype for p in m16.head.parameters()} == {torch.float32}
        assert enc16.fingerprint == enc.fingerprint and enc16.precision == "bf16" and enc.precision == "fp32"
        rows = toy_test.split("train") + toy_test.split("test")
        tset = tokenize(enc.tokenizer, rows, 32, False)
        p32, p16 = predict(m32, tset), predict(m16, tset)
        assert p16.dtype == np.float32
        agree = (p32.argmax(1) == p16.argmax(1)).mean()
        assert agree >= 0.95, agree
        assert np.abs(p32 - p16).max() < 0.1
    finally:
        m32.detach_body()
        m16.detach_body()


def test_training_under_bf16_updates_fp32_adapter_weights(enc16, toy_test):
    info = toy_test.info
    model = new_model(enc16, MethodConfig(name="pfeiffer", bottleneck_size=8), HeadConfig(), info)
    before = {k: v.clone() for k, v in model.trainable_state().items()}
    tset = tokenize(enc16.tokenizer, toy_test.split("train"), 32, False)
    try:
        train(model, tset, None, info, TrainConfig(epochs=1, batch_size=8, progress=False, learning_rate=1e-2))
        after = model.trainable_state()
        assert {v.dtype for v in after.values()} == {torch.float32}
        assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("layers."))
        assert all(p.grad is None for p in enc16.model.parameters())
        assert {p.dtype for p in enc16.model.parameters()} == {torch.bfloat16}
    finally:
        model.detach_body()


def test_fgsm_under_bf16(tmp_path, enc16):
    enc = tiny_encoder("bert")
    adapter = load_adapter(make_adapter(tmp_path / "a", enc, scale=0.3, info=TOY_SENTIMENT))
    model = model_from_adapter(adapter, enc16)
    try:
        victim = ModelVictim(model)
        tset = tokenize(enc.tokenizer, load_task(DataConfig(**toy_data()), splits=("test",)).split("test"), 32, False)
        from adaptermix.training.batching import collate

        batch = collate(tset, list(range(4)))
        emb, grad = victim.embedding_gradients(batch, tset.labels[:4])
        assert emb.dtype == grad.dtype == torch.float32 and grad.abs().sum() > 0  # gradients flow through bf16
        metrics = fgsm_evaluate(victim, tset, TOY_SENTIMENT, epsilon=0.05)
        assert 0.0 <= metrics["accuracy"] <= 1.0 and metrics["epsilon"] == 0.05
    finally:
        model.detach_body()


# ------------------------------------------------------------------------------------- keys and stores


def test_precision_is_in_the_trial_key_and_fp32_keys_are_unchanged():
    base = dict(target="a", subset=("a", "b"), rule="average", split="test", evaluation="clean", seed=0)
    fp32, bf16 = Trial(**base), Trial(**base, precision="bf16")
    assert "precision" not in fp32.to_dict()  # keys of trials written before precision existed stay valid
    assert fp32.key == "22254034631e7b38"  # pinned: the key this trial had before precision existed
    assert bf16.key != fp32.key and bf16.to_dict()["precision"] == "bf16"
    assert Trial.from_dict(json.loads(bf16.canonical)) == bf16
    with pytest.raises(ConfigError, match="precision 'auto'"):
        Trial(**base, precision="auto")
    spec = SweepSpec(pool=("x/a", "x/b"), precision="bf16")
    assert {t.precision for t in expand(spec, ["a", "b"])} == {"bf16"}
    assert {t.precision for t in expand(spec.model_copy(update={"precision": None}), ["a", "b"])} == {"fp32"}


def _prov(precision: str | None) -> Provenance:
    spec = {} if precision is None else {"precision": precision}
    return Provenance.collect(json.dumps(spec), "fp", 0)


def test_store_refuses_to_mix_precisions(tmp_path):
    old, new = tmp_path / "old.sqlite", tmp_path / "new.sqlite"
    with ResultsStore(old) as store:
        store.begin_run(_prov(None))  # a run from before precision existed: fp32
        store.begin_run(_prov("fp32"))
        with pytest.raises(ArtefactError, match=r"holds fp32 results and this run computes bf16; .*--precision fp32"):
            store.begin_run(_prov("bf16"))
        assert store.precisions() == {"fp32"}
    with ResultsStore(new) as store:
        store.begin_run(_prov("bf16"))
    with pytest.raises(StoreConflictError, match="different precisions: bf16, fp32"):
        merge(tmp_path / "merged.sqlite", [old, new])
    assert not (tmp_path / "merged.sqlite").exists()


@pytest.fixture
def spec_file(tmp_path):
    enc = tiny_encoder("bert")
    for i, n in enumerate(("alpha", "beta")):
        make_adapter(tmp_path / "pool" / n, enc, seed=i, scale=0.3, info=TOY_SENTIMENT, data=toy_data())
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump({"pool": ["pool/alpha", "pool/beta"], "evaluations": ["clean", "fgsm"]}))
    return path


def test_sweep_records_bf16_and_a_store_stays_one_precision(spec_file, tmp_path, enc16):
    store = tmp_path / "r.sqlite"
    summary = run_sweep(load_spec(spec_file), store, encoder=enc16, progress=False)
    assert summary.ran == 2 * 2 * 2
    with ResultsStore(store, readonly=True) as s:
        rows = s.rows()
        assert s.precisions() == {"bf16"}
    assert {json.loads(r["trial_json"])["precision"] for r in rows} == {"bf16"}
    with pytest.raises(ArtefactError, match="holds bf16 results and this run computes fp32"):
        run_sweep(load_spec(spec_file), store, encoder=tiny_encoder("bert"), progress=False)
    with pytest.raises(ConfigError, match="asks for precision fp32 but the encoder given is bf16"):
        run_sweep(load_spec(spec_file, ["precision=fp32"]), tmp_path / "s.sqlite", encoder=enc16, progress=False)
    fp32 = tmp_path / "fp32.sqlite"
    run_sweep(load_spec(spec_file), fp32, encoder=tiny_encoder("bert"), progress=False)
    with ResultsStore(fp32, readonly=True) as s:
        keys32 = {r["key"]: r for r in s.rows()}
    assert not keys32.keys() & {r["key"] for r in rows}  # keyed apart
    for r in rows:  # and the bf16 metrics are those of fp32 up to rounding on this tiny model
        twin = Trial.from_dict({**json.loads(r["trial_json"]), "precision": "fp32"})
        assert abs(keys32[twin.key]["metric"] - r["metric"]) <= 0.1


@pytest.mark.parametrize("command", ["train", "eval", "attack", "sweep", "reproduce", "adamix eval",
                                     "adamix experiment"])
def test_precision_flag_on_every_command(command, capsys):
    with pytest.raises(SystemExit):
        main([*command.split(), "--help"])
    assert "--precision {auto,fp32,bf16}" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main([*command.split(), "--precision", "fp16", "x"])
    assert "invalid choice: 'fp16'" in capsys.readouterr().err


def test_precision_flag_becomes_an_override():
    import argparse

    from adaptermix.cli.base import precision_override

    assert precision_override(argparse.Namespace(precision="bf16")) == ["model.precision=bf16"]
    assert precision_override(argparse.Namespace(precision="fp32"), "precision") == ["precision=fp32"]
    assert precision_override(argparse.Namespace(precision=None)) == []


def test_textfooler_on_a_bf16_victim_gets_a_bf16_judge_and_lockstep_keeps_its_results(enc16):
    """The TextFooler evaluation on a bf16 model asks for the recipe with a bf16 judge and records the judge's
    precision; in lock-step the bf16 victim gives the per-example results."""
    from adaptermix.attacks.textfooler import TextFoolerConfig, TextFoolerJin2019
    from adaptermix.data.schema import Example, TaskInfo
    from adaptermix.sweep import evaluations as E
    from test_textfooler import resources

    info = TaskInfo("toy", "single", "classification", ("neg", "pos"))
    examples = [Example(t, 1) for t in ("a good movie", "a great plot , good movie", "fine film", "good plot")]
    es = E.EvalSet(info, examples, tokenize(enc16.tokenizer, examples, 16, False), 16)
    model = new_model(enc16, MethodConfig(name="pfeiffer", bottleneck_size=4), HeadConfig(), info, head_seed=0)
    try:
        outcomes = {}
        for flight in (1, 3):
            params = {"examples_in_flight": flight}
            cfg = TextFoolerConfig.model_validate({**params, "resources": {"precision": "bf16"}})
            key = json.dumps({**params, "resources": {"precision": "bf16"}}, sort_keys=True, default=str)
            E._ATTACKS[key] = TextFoolerJin2019(cfg, resources())  # what the evaluation must ask for
            outcome = E.EVALUATIONS.get("textfooler")(model, es, params, "t", 8)
            assert outcome.metrics["sentence_encoder_precision"] == "bf16"
            outcomes[flight] = outcome
        assert outcomes[1].metrics == outcomes[3].metrics
        assert outcomes[1].adversarial == outcomes[3].adversarial
    finally:
        model.detach_body()
        E._ATTACKS.clear()
