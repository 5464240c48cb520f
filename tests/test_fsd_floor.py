"""FSD you can read: by tensor kind, over top-magnitude weights, from init, and against a noise floor."""

from __future__ import annotations

import csv
import json

import pytest
import torch
import yaml

from adaptermix.cli.main import main
from adaptermix.data.config import DataConfig
from adaptermix.data.sources import load_task
from adaptermix.deltas import AdapterDelta, bottleneck_shapes, lora_shapes, random_delta, stack, to_dw
from adaptermix.diagnostics import fsd_by_kind, fsd_kind_rows, fsd_matrix, noise_floor, top_fraction_fsd
from adaptermix.pipeline.config import StudyConfig
from adaptermix.pipeline.train_stage import plan_training
from adaptermix.pool import fsd_summary, initial_delta, load_pool
from adaptermix.report.tables import fsd_floor_table, fsd_kind_table
from helpers import TOY_PACK, make_adapter
from tiny import tiny_encoder


def _bottleneck_pool() -> object:
    shapes = bottleneck_shapes(2, 6, 3)
    return stack([random_delta(shapes, seed=s) for s in range(4)], ["a", "b", "c", "d"])


def test_fsd_by_kind_sums_back_to_the_whole() -> None:
    pool = _bottleneck_pool()
    grouped = fsd_by_kind(pool)
    assert set(grouped.keys) == {"down.weight", "down.bias", "up.weight", "up.bias"}
    assert torch.allclose(grouped.weighted_total(), fsd_matrix(pool).values, atol=1e-12)
    rows = fsd_kind_rows(pool)
    ab = {r["kind"]: r for r in rows if (r["adapter_a"], r["adapter_b"]) == ("a", "b")}
    total = sum(r["fsd"] * r["n_params"] for k, r in ab.items() if k != "all") / ab["all"]["n_params"]
    assert total == pytest.approx(float(fsd_matrix(pool).values[0, 1]), abs=1e-12)
    assert ab["all"]["fsd"] == pytest.approx(float(fsd_matrix(pool).values[0, 1]), abs=1e-12)


def test_lora_kinds_are_a_b_and_dw_each_summing_in_their_space() -> None:
    pool = stack([random_delta(lora_shapes(2, 6, 2), seed=s) for s in range(3)], ["x", "y", "z"])
    rows = fsd_kind_rows(pool, lora_scale=2.0)
    kinds = {(r["kind"], r["space"]) for r in rows}
    assert kinds == {("lora_A", "raw"), ("lora_B", "raw"), ("all", "raw"), ("dW", "dw"), ("all", "dw")}
    dw = stack([to_dw(d, 2.0) for d in pool.unstack()], pool.names)
    xy_dw = [r for r in rows if r["space"] == "dw" and (r["adapter_a"], r["adapter_b"]) == ("x", "y")]
    assert all(r["fsd"] == pytest.approx(float(fsd_matrix(dw).values[0, 1])) for r in xy_dw)


def test_noise_floor_and_excess() -> None:
    names = ["s", "i", "s~r1", "s~r2"]
    v = torch.tensor([[0, .30, .20, .24], [.30, 0, .3, .3], [.20, .3, 0, .1], [.24, .3, .1, 0]], dtype=torch.float64)
    nf = noise_floor(v, names, {"s~r1": "s", "s~r2": "s"})
    assert nf.domains == ("s", "i") and nf.floor == {"s": pytest.approx(0.22), "i": None}
    assert nf.fsd.tolist() == [[0, .30], [.30, 0]]
    assert nf.rows()[0]["excess"] is None  # i has no floor
    nf = noise_floor(v[:3, :3], names[:3], {"s~r1": "s", "i": "s"})  # i as a replicate of s, for the arithmetic
    assert nf.domains == ("s",) and nf.floor["s"] == pytest.approx(0.25)
    with pytest.raises(Exception, match="not a domain adapter"):
        noise_floor(v, names, {"s~r1": "nope"})


def test_top_fraction_fsd() -> None:
    x = torch.tensor([[1.0, -2.0, 3.0, -0.1], [1.0, 2.0, -3.0, 0.1]])
    assert top_fraction_fsd(x, 1.0)[0, 1] == pytest.approx(3 / 4)
    # top half by magnitude of both rows: {-2, 3} and {2, -3} -> both positions conflict
    assert top_fraction_fsd(x, 0.5)[0, 1] == pytest.approx(1.0)
    with pytest.raises(Exception, match="top fraction"):
        top_fraction_fsd(x, 0.0)


def test_updates_from_init_subtract_the_rebuilt_init(tmp_path) -> None:
    enc = tiny_encoder("bert")
    paths = [make_adapter(tmp_path / n, enc, seed=i, init="bert") for i, n in enumerate(["a", "b"])]
    pool = load_pool(paths)
    init = initial_delta(pool.adapters[0]).flatten()
    assert torch.allclose(pool.updates("raw").matrix[0], pool.flat[0] - init)
    assert bool((init != 0).all()) is False and bool((initial_delta(pool.adapters[0]).tensors[
        "layers.0.ffn.up.weight"] != 0).all())
    summary = fsd_summary(pool, from_init=True, top_fraction=0.5)
    assert summary["of"] == "update from init" and summary["top_fraction"]["fraction"] == 0.5


@pytest.fixture
def pool_with_replicates(tmp_path):
    enc = tiny_encoder("bert")
    dirs = {n: make_adapter(tmp_path / n, enc, seed=i) for i, n in enumerate(["alpha", "beta", "gamma"])}
    reps = {"alpha": make_adapter(tmp_path / "alpha_rep", enc, seed=10),
            "beta": make_adapter(tmp_path / "beta_rep", enc, seed=11)}
    return dirs, reps


def test_cli_fsd_writes_kind_rows_floor_rows_and_excess(pool_with_replicates, tmp_path, capsys) -> None:
    dirs, reps = pool_with_replicates
    out = tmp_path / "out"
    args = ["fsd", *map(str, dirs.values()), "-o", str(out), "--top-fraction", "0.5"]
    args += [f"--replicate={d}={p}" for d, p in reps.items()]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "noise floor" in printed and "excess over the floor" in printed
    data = json.loads((out / "fsd.json").read_text())
    assert data["names"] == ["alpha", "beta", "gamma"]  # the matrix is over the domain adapters
    assert set(data["noise_floor"]["floor"]) == {"alpha", "beta", "gamma"} and data["noise_floor"]["floor"]["gamma"] is None
    floor_rows = list(csv.DictReader((out / "fsd_floor.csv").open()))
    ab = next(r for r in floor_rows if (r["adapter_a"], r["adapter_b"]) == ("alpha", "beta"))
    fa, fb = data["noise_floor"]["floor"]["alpha"], data["noise_floor"]["floor"]["beta"]
    assert float(ab["excess"]) == pytest.approx(data["fsd"][0][1] - (fa + fb) / 2, abs=1e-6)
    assert next(r for r in floor_rows if r["adapter_b"] == "gamma")["excess"] == ""
    kinds = list(csv.DictReader((out / "fsd_by_kind.csv").open()))
    assert {r["kind"] for r in kinds} == {"down.weight", "down.bias", "up.weight", "up.bias", "all"}
    assert any(r["adapter_b"] == "alpha~r1" or r["adapter_a"] == "alpha~r1" for r in kinds)
    assert (out / "fsd_top.csv").is_file()
    # the report's tables from the same JSON: floors first, then the pairs with their excess
    table = fsd_floor_table(data, "pfeiffer")
    assert table is not None and table.rows[0][0] == "alpha vs its replicate"
    assert any(r[0] == "alpha vs beta" and r[4] == pytest.approx(ab_excess_pct(data)) for r in table.rows)
    kind_table = fsd_kind_table(data, "pfeiffer")
    assert kind_table is not None and {r[0] for r in kind_table.rows} >= {"up.weight", "all"}
    assert all(r[4] is not None for r in kind_table.rows)  # floors by kind come from the replicate pairs


def ab_excess_pct(data: dict) -> float:
    nf = data["noise_floor"]
    return (data["fsd"][0][1] - (nf["floor"]["alpha"] + nf["floor"]["beta"]) / 2) * 100


def test_cli_replicate_must_name_an_adapter(pool_with_replicates, tmp_path, capsys) -> None:
    dirs, reps = pool_with_replicates
    assert main(["fsd", *map(str, dirs.values()), "-o", str(tmp_path / "o"), "--replicate", f"nope={reps['alpha']}"]) == 2
    assert "is not one of the adapters" in capsys.readouterr().err


def test_train_sample_seed_changes_only_the_train_sample() -> None:
    base = {"name": "toy_sentiment", "data_dir": str(TOY_PACK), "max_train": 8, "max_validation": 4, "max_test": 4}
    a = load_task(DataConfig.model_validate(base))
    b = load_task(DataConfig.model_validate({**base, "train_sample_seed": 1013}))
    assert a.splits["train"] != b.splits["train"]
    assert a.splits["validation"] == b.splits["validation"] and a.splits["test"] == b.splits["test"]


def test_noise_floor_plans_replicates_with_other_seeds(tmp_path) -> None:
    cfg = StudyConfig.model_validate({
        "output_dir": str(tmp_path / "s"), "domains": ["d1", "d2"], "data": {"data_dir": str(TOY_PACK)},
        "noise_floor": {"replicates": 2, "seed_offset": 100},
    })
    jobs, done = plan_training(cfg)
    assert not done and [j.replicate for j in jobs] == [0, 0, 1, 1, 2, 2]
    main_job, rep = jobs[0], jobs[4]
    assert rep.domain == "d1" and rep.path == tmp_path / "s" / "adapters" / "pfeiffer" / "replicates" / "d1-r2"
    assert rep.run.train.seed == main_job.run.train.seed + 200
    assert rep.run.data.train_sample_seed == main_job.run.data.sample_seed + 200
    assert rep.run.method == main_job.run.method  # same init (scheme and seed)
    assert len({j.config_hash for j in jobs}) == 6


def test_reproduce_with_noise_floor_reports_floor_rows(tmp_path, capsys) -> None:
    tiny = tiny_encoder("bert")
    tiny.model.save_pretrained(tmp_path / "model")
    tiny.tokenizer.save_pretrained(tmp_path / "model")
    cfg = {
        "output_dir": str(tmp_path / "study"),
        "model": {"name": str(tmp_path / "model"), "max_length": 32},
        "data": {"data_dir": str(TOY_PACK), "max_train": 16, "max_validation": 8},
        "domains": ["toy_sentiment", "toy_nli"],
        "methods": [{"name": "pfeiffer", "bottleneck_size": 4}],
        "train": {"epochs": 1, "batch_size": 8, "progress": False},
        "noise_floor": {"replicates": 1},
        "analysis": {"enabled": False},
    }
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["reproduce", str(tmp_path / "s.yaml"), "--stages", "train,fsd,report"]) == 0
    out = tmp_path / "study"
    assert (out / "adapters" / "pfeiffer" / "replicates" / "toy_nli-r1" / "adapter.json").is_file()
    data = json.loads((out / "pfeiffer" / "fsd.json").read_text())
    assert data["names"] == ["toy_sentiment", "toy_nli"]
    assert set(data["noise_floor"]["floor"]) == {"toy_sentiment", "toy_nli"}
    assert all(v is not None for v in data["noise_floor"]["floor"].values())
    assert "toy_sentiment-r1" not in (out / "single_adapters.md").read_text()
    table = (out / "report" / "tables" / "fsd_noise_floor_pfeiffer.csv").read_text()
    assert "toy_sentiment vs its replicate" in table and "toy_sentiment vs toy_nli" in table
    assert (out / "report" / "tables" / "fsd_by_kind_pfeiffer.csv").is_file()


def test_delta_kind_grouping_names() -> None:
    d = AdapterDelta({"layers.0.ffn.up.weight": torch.ones(2, 2), "layers.1.ffn.up.weight": -torch.ones(2, 2)})
    assert d.layout.groups("kind").keys == ("up.weight",)
