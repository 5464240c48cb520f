"""A catalogue of bad inputs across every command: each gives exactly one stderr line, exit status 2, and
leaves no output behind.

One table (:data:`CASES`): command line, the exact stderr line (or a regex anchored at both ends), run
in-process through ``adaptermix.cli.main.main`` (fast); a few also run through a real subprocess. Paths in
the table are placeholders filled from the :func:`world` fixture:

``{W}`` the inputs folder, ``{O}`` an empty output folder per case, ``{M}`` the tiny BERT on disk, ``{P}``
a data pack of broken datasets, ``{T}`` the toy data pack, ``{S}`` a finished results store, ``{K}`` the
trial key that two shard stores disagree on, ``{FB}`` / ``{FR}`` the BERT / RoBERTa fingerprints.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file, save_file

from adaptermix.backbone.loading import load_encoder
from adaptermix.cli.base import COMMANDS
from adaptermix.cli.main import build_parser, main
from adaptermix.merging import MERGE_RULES
from helpers import TOY_PACK, TOY_SENTIMENT, make_adapter, toy_data
from reliability.harness import child_env
from tiny import tiny_encoder


@dataclass(frozen=True)
class Case:
    id: str
    argv: tuple[str, ...]
    expected: str  # the stderr line after ``prefix`` (a regex when ``regex``)
    regex: bool = False
    bug: str | None = None  # a known bug: the case is a strict xfail until it is fixed
    prefix: str = "adaptermix: error: "

    @property
    def command(self) -> str:
        return self.argv[0]


def case(
    id: str, argv: str, expected: str, regex: bool = False, bug: str | None = None, prefix: str | None = None
) -> Case:
    return Case(
        id, tuple(argv.split()), expected, regex, bug, "adaptermix: error: " if prefix is None else prefix
    )


VALID_METHODS = "adamix, houlsby, lora, pfeiffer"
VALID_RULES = ", ".join(MERGE_RULES.names())
BAD_DATASETS = "badlabel, badrow, empty, latin1"
TRAIN = "train --set model.name={M} --set data.data_dir={P} --set train.progress=false -o {O}/a"
TRAIN_TOY = "train --set model.name={M} --set data.data_dir={T} --set data.name=toy_sentiment -o {O}/a"
METHODS_DIFFER = "adapters 'a' and 'lora' have different methods: 'pfeiffer' vs 'lora'"

# A table: one case per two lines reads better than one argument per line.
# fmt: off
CASES: tuple[Case, ...] = (
    # train: configs
    case("train-malformed-yaml", "train {W}/cfg/malformed.yaml",
         "malformed YAML in {W}/cfg/malformed.yaml (line 2, column 6)"),
    case("train-unknown-key", "train {W}/cfg/train_unknown_key.yaml",
         "{W}/cfg/train_unknown_key.yaml: unknown key 'bogus'"),
    case("train-wrong-type", TRAIN_TOY + " --set train.epochs=abc",
         "config: train.epochs: Input should be a valid number, unable to parse string as a number"),
    case("train-negative-epochs", TRAIN_TOY + " --set train.epochs=-1",
         "config: train.epochs: Input should be greater than 0"),
    case("train-missing-config", "train {W}/nope.yaml",
         "config file not found: {W}/nope.yaml"),
    case("train-non-utf8-config", "train {W}/cfg/latin1.yaml",
         "config file {W}/cfg/latin1.yaml is not valid UTF-8"),
    case("train-unknown-method", TRAIN_TOY + " --set method.name=nope",
         f"unknown method 'nope'; valid: {VALID_METHODS}"),
    case("train-bad-set", TRAIN_TOY + " --set train.epochs",
         "override 'train.epochs' must look like key.path=value"),
    # train: datasets
    case("train-unknown-dataset", TRAIN + " --set data.name=nope",
         f"unknown dataset 'nope' in data pack {{P}}; available: {BAD_DATASETS}"),
    case("train-dataset-path-traversal", TRAIN + " --set data.name=../badrow",
         f"unknown dataset '../badrow' in data pack {{P}}; available: {BAD_DATASETS}"),
    case("train-bad-row", TRAIN + " --set data.name=badrow",
         "badrow/train.jsonl:2: malformed JSON (Expecting value)"),
    case("train-unknown-label", TRAIN + " --set data.name=badlabel",
         "badlabel/train.jsonl:2: label 7 not in 0..1"),
    case("train-empty-dataset", TRAIN + " --set data.name=empty",
         "empty/train.jsonl: no rows (empty split)"),
    case("train-non-utf8-text", TRAIN + " --set data.name=latin1",
         "latin1/train.jsonl:1: not valid UTF-8 (byte 0xe9)"),
    case("train-missing-data-pack", TRAIN + " --set data.name=x --set data.data_dir={W}/nope",
         "data pack folder not found: {W}/nope (set ADAPTERMIX_DATA or data.data_dir)"),
    # eval: broken artefacts
    case("eval-missing-adapter", "eval {W}/nope",
         "adapter not found: {W}/nope (expected a directory with adapter.safetensors and adapter.json)"),
    case("eval-corrupted-safetensors", "eval {W}/garbage",
         r"adapter {W}/garbage: adapter\.safetensors is corrupted or truncated \([^\n]+\)", regex=True),
    case("eval-truncated-safetensors", "eval {W}/trunc",
         r"adapter {W}/trunc: adapter\.safetensors is corrupted or truncated \([^\n]+\)", regex=True),
    case("eval-nan-weights", "eval {W}/nan",
         "adapter {W}/nan: tensor 'layers.0.ffn.down.bias' contains NaN or Inf"),
    case("eval-inf-weights", "eval {W}/inf",
         "adapter {W}/inf: tensor 'layers.1.ffn.up.weight' contains NaN or Inf"),
    case("eval-corrupted-metadata", "eval {W}/badmeta",
         "adapter {W}/badmeta: adapter.json is corrupted (JSONDecodeError)"),
    case("eval-unknown-split", "eval {W}/a --split nope --data-dir {T}",
         "unknown split 'nope' (valid: train, validation, test)"),
    # predict / recommend
    case("predict-missing-store", "predict {W}/nope",
         "{W}/nope: no results store (a results.sqlite, or a study's method folder)"),
    case("recommend-no-pool", "recommend --target a --budget 3",
         "give --study DIR, or --pool DIR... and --store FILE"),
    case("recommend-zero-budget", "recommend --pool {W}/a {W}/b --store {O}/r.sqlite --target a --budget 0",
         "--budget must be at least 1 (the single adapter's evaluation)"),
    case("recommend-unknown-target", "recommend --pool {W}/a {W}/b --store {O}/r.sqlite --target zz --budget 3",
         "--target 'zz' is not in the pool (a, b)"),
    case("recommend-unknown-strategy",
         "recommend --pool {W}/a {W}/b --store {O}/r.sqlite --target a --budget 3 --strategy nope",
         "unknown search strategy 'nope'; valid: adaptersoup, evolve, greedy_fsd, model, random"),
    # list
    case("list-unknown-topic", "list nope",
         r"argument what: invalid choice: 'nope' \(choose from [^\n]+\)",
         regex=True, prefix="adaptermix list: error: "),
    case("doctor-extra-argument", "doctor extra", "unrecognized arguments: extra"),
    # fsd / mix / prune
    case("fsd-different-base-models", "fsd {W}/a {W}/rob -o {O}/f",
         "adapters 'a' and 'rob' have different base_fingerprint: '{FB}' vs '{FR}'"),
    case("fsd-corrupted-adapter", "fsd {W}/a {W}/trunc -o {O}/f",
         r"adapter {W}/trunc: adapter\.safetensors is corrupted or truncated \([^\n]+\)", regex=True),
    case("mix-different-methods", "mix {W}/a {W}/lora -o {O}/m",
         METHODS_DIFFER),
    case("mix-different-base-models", "mix {W}/rob {W}/a -o {O}/m",
         "adapters 'rob' and 'a' have different base_fingerprint: '{FR}' vs '{FB}'"),
    case("mix-unknown-rule", "mix {W}/a {W}/b --rule nope -o {O}/m",
         f"unknown merge rule 'nope'; valid: {VALID_RULES}"),
    case("mix-nan-weights", "mix {W}/a {W}/nan -o {O}/m",
         "adapter {W}/nan: tensor 'layers.0.ffn.down.bias' contains NaN or Inf"),
    case("mix-bad-param-syntax", "mix {W}/a {W}/b --rule ties --param density -o {O}/m",
         "override 'density' must look like key.path=value"),
    case("mix-density-above-one", "mix {W}/a {W}/b --rule ties --param density=1.5 -o {O}/m",
         "density must be in (0, 1], got 1.5"),
    case("mix-unknown-target", "mix {W}/a {W}/b --target zzz -o {O}/m",
         "'zzz' is not in the adapter pool (a, b)"),
    case("prune-negative-sparsity", "prune {W}/a --sparsity -0.1 -o {O}/p",
         "sparsity must be in [0, 1], got -0.1"),
    case("prune-sparsity-above-one", "prune {W}/a --sparsity 1.5 -o {O}/p",
         "sparsity must be in [0, 1], got 1.5"),
    case("prune-truncated-adapter", "prune {W}/trunc --sparsity 0.5 -o {O}/p",
         r"adapter {W}/trunc: adapter\.safetensors is corrupted or truncated \([^\n]+\)", regex=True),
    # sweep
    case("sweep-malformed-yaml", "sweep {W}/cfg/malformed.yaml --store {O}/s.sqlite",
         "malformed YAML in {W}/cfg/malformed.yaml (line 2, column 6)"),
    case("sweep-unknown-key", "sweep {W}/cfg/unknown_key.yaml --store {O}/s.sqlite",
         "{W}/cfg/unknown_key.yaml: unknown key 'bogus'"),
    case("sweep-wrong-type", "sweep {W}/cfg/wrong_type.yaml --store {O}/s.sqlite",
         "{W}/cfg/wrong_type.yaml: batch_size: Input should be a valid integer, "
         "unable to parse string as an integer"),
    case("sweep-pool-name-traversal", "sweep {W}/cfg/traversal.yaml --store {O}/s.sqlite",
         "{W}/cfg/traversal.yaml: (top level): Value error, invalid pool name '../x'"),
    case("sweep-k-larger-than-pool", "sweep {W}/cfg/ok.yaml --store {O}/s.sqlite --set subsets.ks=[3]",
         "k=3 is larger than the pool (2 adapters)"),
    case("sweep-unknown-rule", 'sweep {W}/cfg/ok.yaml --store {O}/s.sqlite --set rules=[{{"name":"nope"}}]',
         f"unknown merge rule 'nope'; valid: {VALID_RULES}"),
    case("sweep-unknown-evaluation", "sweep {W}/cfg/ok.yaml --store {O}/s.sqlite --set evaluations=[nope]",
         "{W}/cfg/ok.yaml: evaluations.0: Input should be 'clean', 'fgsm' or 'textfooler'"),
    case("sweep-unknown-target", "sweep {W}/cfg/ok.yaml --store {O}/s.sqlite --set targets=[zzz]",
         "unknown target 'zzz'; pool: a, b"),
    case("sweep-different-methods", "sweep {W}/cfg/mixed_methods.yaml --store {O}/s.sqlite",
         METHODS_DIFFER),
    case("sweep-different-base-models", "sweep {W}/cfg/mixed_models.yaml --store {O}/s.sqlite",
         "adapters 'a' and 'rob' have different base_fingerprint: '{FB}' vs '{FR}'"),
    case("sweep-missing-adapter", "sweep {W}/cfg/missing_adapter.yaml --store {O}/s.sqlite",
         "adapter not found: {W}/cfg/../nope (expected a directory with adapter.safetensors and "
         "adapter.json)"),
    case("sweep-bad-shard", "sweep {W}/cfg/ok.yaml --store {O}/s.sqlite --shard 3/2",
         "--shard '3/2' must look like i/n with 1 <= i <= n"),
    case("sweep-bad-set-syntax", "sweep {W}/cfg/ok.yaml --store {O}/s.sqlite --set novalue",
         "override 'novalue' must look like key.path=value"),
    case("sweep-store-is-a-folder", "sweep {W}/cfg/ok.yaml --store {W}/a",
         "results store {W}/a: exists and is not a file"),
    case("sweep-store-not-a-database", "sweep {W}/cfg/ok.yaml --store {W}/a/adapter.json",
         "results store {W}/a/adapter.json: cannot open: not an SQLite database (file is not a database)"),
    case("sweep-unknown-backend", "sweep {W}/cfg/ok.yaml --store {O}/s.sqlite --backend nope",
         r"argument --backend: invalid choice: 'nope' \(choose from [^\n]+\)",
         regex=True, prefix="adaptermix sweep: error: "),
    # stats / export / merge
    case("stats-missing-store", "stats {W}/nope.sqlite",
         "results store not found: {W}/nope.sqlite"),
    case("stats-not-a-store", "stats {W}/a/adapter.json",
         "results store {W}/a/adapter.json: cannot open: not an SQLite database (file is not a database)"),
    case("export-unknown-format", "export {S} -o {O}/t.xlsx",
         "unknown export format 'xlsx'; valid: csv, parquet"),
    case("export-unknown-table", "export {S} -o {O}/t.csv --table nope",
         "unknown results-store table 'nope'; valid: trials, provenance, adversarial_examples"),
    case("merge-missing-shard", "merge {O}/all.sqlite {S} {W}/nope.sqlite",
         "results store not found: {W}/nope.sqlite"),
    case("merge-conflicting-shards", "merge {O}/all.sqlite {S} {W}/conflict.sqlite",
         "trial {K} has different results in {W}/conflict.sqlite and another store"),
    # import / export-adapter
    case("import-pickled-peft", "import peft {W}/peft_bin -o {O}/i --model {M} --labels neg,pos",
         "{W}/peft_bin: only safetensors weights are read (adapter_model.bin is a pickle, which can run code "
         "when loaded); re-save the adapter with safetensors to get adapter_model.safetensors"),
    case("import-pickled-adapterhub", "import adapterhub {W}/hub_bin -o {O}/i --model {M} --labels a,b",
         "{W}/hub_bin: only safetensors weights are read (pytorch_adapter.bin is a pickle, which can run "
         "code when loaded); re-save the adapter with safetensors to get adapter.safetensors"),
    case("import-unknown-format", "import nope {W}/a -o {O}/i",
         "unknown import format 'nope'; valid: adapterhub, peft"),
    case("import-one-label", "import peft {W}/peft_bin -o {O}/i --model {M} --labels neg",
         "--labels needs at least two comma-separated names"),
    case("export-adapter-not-lora", "export-adapter peft {W}/a -o {O}/e",
         "adapter {W}/a uses method 'pfeiffer'; only LoRA adapters can be exported to peft"),
    case("export-adapter-unknown-format", "export-adapter nope {W}/lora -o {O}/e",
         "unknown export format 'nope'; valid: peft"),
    # attack / report / reproduce / adamix
    case("attack-missing-adapter", "attack {W}/nope -o {O}/r",
         "adapter not found: {W}/nope (expected a directory with adapter.safetensors and adapter.json)"),
    case("attack-nan-weights", "attack {W}/nan --attack fgsm -o {O}/r",
         "adapter {W}/nan: tensor 'layers.0.ffn.down.bias' contains NaN or Inf"),
    case("report-not-a-study", "report {W}/a",
         "{W}/a is not a study directory (no config.yaml)"),
    case("reproduce-missing-config", "reproduce {W}/nope.yaml",
         "config file not found: {W}/nope.yaml"),
    case("reproduce-unknown-stage", "reproduce {W}/cfg/study.yaml --stages train,nope",
         "unknown stage 'nope'; valid: train, fsd, sweep, greedy, pruning, analysis, report"),
    case("reproduce-domain-path-traversal", "reproduce {W}/cfg/study_traversal.yaml",
         "invalid domain name '../../evil': use letters, digits, '_', '-', '.', '+'"),
    case("reproduce-domain-with-slash", "reproduce {W}/cfg/study.yaml --set domains=[toy/sentiment]",
         "invalid domain name 'toy/sentiment': use letters, digits, '_', '-', '.', '+'"),
    case("adamix-eval-not-adamix", "adamix eval {W}/a",
         "adapter {W}/a is a 'pfeiffer' adapter; inference modes need an unmerged 'adamix' adapter "
         "(evaluate merged ones with 'adaptermix eval')"),
    case("adamix-merge-not-adamix", "adamix merge {W}/a -o {O}/m",
         "cannot merge a 'pfeiffer' adapter: only 'adamix' adapters have experts to merge"),
    case("adamix-experiment-missing-key", "adamix experiment {W}/cfg/train_unknown_key.yaml",
         "{W}/cfg/train_unknown_key.yaml: missing required key 'tasks'"),
)
# fmt: on
#: Cases also run through a real ``python -m adaptermix`` process.
SUBPROCESS_CASES = ("stats-not-a-store", "export-unknown-table", "sweep-pool-name-traversal")


# ------------------------------------------------------------------------------------------- world


def _poison(src: Path, dst: Path, key: str, value: float) -> None:
    shutil.copytree(src, dst)
    tensors = load_file(str(dst / "adapter.safetensors"))
    tensors[key] = tensors[key].clone()
    tensors[key].view(-1)[0] = value
    save_file(tensors, str(dst / "adapter.safetensors"))


def _dataset(pack: Path, name: str, train: bytes) -> None:
    folder = pack / name
    shutil.copytree(TOY_PACK / "toy_sentiment", folder)
    manifest = json.loads((folder / "dataset.json").read_text())
    (folder / "dataset.json").write_text(json.dumps({**manifest, "name": name}))
    (folder / "train.jsonl").write_bytes(train)


def _yaml(path: Path, data: object) -> None:
    path.write_text(yaml.safe_dump(data), encoding="utf-8")


@pytest.fixture(scope="module")
def world(tmp_path_factory, tiny_model, sweep_case) -> dict[str, str]:
    """Every broken input of the table, built once."""
    root = tmp_path_factory.mktemp("bad-inputs")
    model, bert = tiny_model
    rob = tiny_encoder("roberta")
    rob.model.save_pretrained(root / "roberta")
    rob.tokenizer.save_pretrained(root / "roberta")
    roberta = load_encoder(str(root / "roberta"))
    for i, name in enumerate(("a", "b")):
        make_adapter(root / name, bert, seed=i, info=TOY_SENTIMENT, data=toy_data())
    make_adapter(root / "lora", bert, method="lora", info=TOY_SENTIMENT, data=toy_data())
    make_adapter(root / "rob", roberta, info=TOY_SENTIMENT, data=toy_data())
    _poison(root / "a", root / "nan", "layers.0.ffn.down.bias", float("nan"))
    _poison(root / "a", root / "inf", "layers.1.ffn.up.weight", float("inf"))
    for name, mangle in (
        ("garbage", lambda b: b"\x80\x04K\x01." + b[:40]),
        ("trunc", lambda b: b[: len(b) // 2]),
    ):
        shutil.copytree(root / "a", root / name)
        weights = root / name / "adapter.safetensors"
        weights.write_bytes(mangle(weights.read_bytes()))
    shutil.copytree(root / "a", root / "badmeta")
    (root / "badmeta" / "adapter.json").write_text("{not json", encoding="utf-8")

    pack = root / "pack"
    _dataset(pack, "badrow", b'{"text": "good film", "label": 1}\n{"text": "oops", "label": \n')
    _dataset(pack, "badlabel", b'{"text": "good film", "label": 1}\n{"text": "bad film", "label": 7}\n')
    _dataset(pack, "empty", b"")
    _dataset(pack, "latin1", '{"text": "caf\xe9 film", "label": 1}\n'.encode("latin-1"))

    cfg = root / "cfg"
    cfg.mkdir()
    (cfg / "malformed.yaml").write_text("pool: [a, b\nrules: x\n", encoding="utf-8")
    (cfg / "latin1.yaml").write_bytes("data: {name: caf\xe9}\n".encode("latin-1"))
    _yaml(cfg / "train_unknown_key.yaml", {"data": {"name": "toy_sentiment"}, "bogus": 1})
    _yaml(cfg / "ok.yaml", {"pool": ["../a", "../b"]})
    _yaml(cfg / "unknown_key.yaml", {"pool": ["../a", "../b"], "bogus": 1})
    _yaml(cfg / "wrong_type.yaml", {"pool": ["../a", "../b"], "batch_size": "many"})
    _yaml(cfg / "traversal.yaml", {"pool": {"../x": "../a", "b": "../b"}})
    _yaml(cfg / "mixed_methods.yaml", {"pool": ["../a", "../lora"]})
    _yaml(cfg / "mixed_models.yaml", {"pool": ["../a", "../rob"]})
    _yaml(cfg / "missing_adapter.yaml", {"pool": ["../a", "../nope"]})
    study = {
        "name": "s",
        "output_dir": str(root / "study-out"),
        "model": {"name": str(model), "max_length": 32},
        "data": {"data_dir": str(TOY_PACK)},
        "domains": ["toy_sentiment"],
    }
    _yaml(cfg / "study.yaml", study)
    files = {s: str(TOY_PACK / "toy_sentiment" / f"{s}.jsonl") for s in ("train", "validation", "test")}
    evil = {"name": "../../evil", "source": "files", "files": files, "label_names": ["negative", "positive"]}
    _yaml(cfg / "study_traversal.yaml", {**study, "data": {}, "domains": [evil]})

    for folder, config, weights in (
        (
            "peft_bin",
            {"peft_type": "LORA", "r": 2, "lora_alpha": 4, "target_modules": ["query", "value"]},
            "adapter_model.bin",
        ),
        (
            "hub_bin",
            {
                "config": {
                    "architecture": "bottleneck",
                    "non_linearity": "relu",
                    "output_adapter": True,
                    "mh_adapter": False,
                    "reduction_factor": 4,
                },
                "model_class": "BertModel",
            },
            "pytorch_adapter.bin",
        ),
    ):
        (root / folder).mkdir()
        (root / folder / "adapter_config.json").write_text(json.dumps(config))
        (root / folder / weights).write_bytes(b"\x80\x04K\x01.")  # a pickle: must never be loaded

    store = root / "store.sqlite"
    shutil.copy(sweep_case.reference, store)
    shutil.copy(sweep_case.reference, root / "conflict.sqlite")
    with sqlite3.connect(root / "conflict.sqlite") as conn:
        key = conn.execute("SELECT key FROM trials ORDER BY key LIMIT 1").fetchone()[0]
        conn.execute("UPDATE trials SET metric = -1 WHERE key = ?", (key,))
    conn.close()
    return {
        "W": str(root),
        "M": str(model),
        "P": str(pack),
        "T": str(TOY_PACK),
        "S": str(store),
        "K": key,
        "FB": bert.fingerprint,
        "FR": roberta.fingerprint,
    }


def _listing(*folders: Path) -> set[str]:
    """Every file and folder below ``folders`` (SQLite's -wal / -shm files of readers aside)."""
    out = set()
    for folder in folders:
        for dirpath, dirnames, filenames in os.walk(folder):
            for name in dirnames + filenames:
                if not name.endswith(("-wal", "-shm")):
                    out.add(os.path.join(dirpath, name))
    return out


def _fill(case: Case, values: dict[str, str]) -> tuple[list[str], str]:
    """The command line, and a regex the whole stderr (one line and its newline) must match."""
    argv = [a.format(**values) for a in case.argv]
    if case.regex:
        body = case.expected.format(**{k: re.escape(v) for k, v in values.items()})
    else:
        body = re.escape(case.expected.format(**values))
    return argv, re.escape(case.prefix) + body + r"\n"


def _run_main(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:  # argparse errors
        return int(exc.code or 0)


def _params():
    for c in CASES:
        marks = [pytest.mark.xfail(strict=True, reason=f"BUG: {c.bug}")] if c.bug else []
        yield pytest.param(c, id=c.id, marks=marks)


# ------------------------------------------------------------------------------------------- tests


def test_catalogue_is_large_and_covers_every_command():
    build_parser()
    assert len(CASES) >= 20 and len({c.id for c in CASES}) == len(CASES)
    assert {c.command for c in CASES} == set(COMMANDS.names())


@pytest.mark.parametrize("case", list(_params()))
def test_bad_input(case: Case, world, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    values = {**world, "O": str(out)}
    argv, expected = _fill(case, values)
    before = _listing(Path(world["W"]), out)
    code = _run_main(argv)
    err = capsys.readouterr().err
    assert re.fullmatch(expected, err), err
    assert code == 2
    assert _listing(Path(world["W"]), out) == before, "a partial output was left behind"


@pytest.mark.parametrize("case_id", SUBPROCESS_CASES)
def test_bad_input_subprocess(case_id: str, world, tmp_path):
    case = next(c for c in CASES if c.id == case_id)
    out = tmp_path / "out"
    out.mkdir()
    values = {**world, "O": str(out)}
    argv, expected = _fill(case, values)
    res = subprocess.run(
        [sys.executable, "-m", "adaptermix", *argv],
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert re.fullmatch(expected, res.stderr), res.stderr
    assert res.returncode == 2 and list(out.iterdir()) == []


def test_poisoned_adapters_hold_what_they_claim(world):
    """Guards the table: the NaN / Inf adapters really hold a non-finite value in the named tensor."""
    nan = load_file(str(Path(world["W"]) / "nan" / "adapter.safetensors"))["layers.0.ffn.down.bias"]
    inf = load_file(str(Path(world["W"]) / "inf" / "adapter.safetensors"))["layers.1.ffn.up.weight"]
    assert torch.isnan(nan).any() and torch.isinf(inf).any()
