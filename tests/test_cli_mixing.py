"""``fsd``, ``mix`` and ``prune`` through the CLI on tiny adapters: outputs, provenance and bad input."""

from __future__ import annotations

import json

import pytest
import torch

from adaptermix.artefact import load_adapter, model_from_adapter
from adaptermix.cli.main import main
from adaptermix.data.schema import TaskInfo
from helpers import make_adapter
from tiny import tiny_encoder


@pytest.fixture
def pool(tmp_path):
    enc = tiny_encoder("bert")
    return [make_adapter(tmp_path / "pool" / n, enc, seed=i) for i, n in enumerate(["alpha", "beta", "gamma"])]


def test_fsd_writes_matrix_heatmap_and_groups(pool, tmp_path, capsys):
    assert main(["fsd", *map(str, pool), "-o", str(tmp_path / "fsd")]) == 0
    out = tmp_path / "fsd"
    for name in ("fsd.csv", "fsd.json", "fsd.png", "fsd.svg", "fsd_per_layer.csv"):
        assert (out / name).stat().st_size > 0
    data = json.loads((out / "fsd.json").read_text())
    m = torch.tensor(data["fsd"])
    assert data["names"] == ["alpha", "beta", "gamma"] and data["space"] == "raw"
    assert torch.equal(m, m.T) and torch.all(m.diagonal() == 0) and torch.all((m > 0.3) & (m < 0.7) | (m == 0))
    assert "FSD (%)" in capsys.readouterr().out


def test_mix_average_writes_an_adapter_with_provenance_that_loads(pool, tmp_path):
    out = tmp_path / "mixed"
    assert main(["mix", "--rule", "average", *map(str, pool), "--target", "beta", "-o", str(out)]) == 0
    mixed = load_adapter(out)
    assert mixed.meta.provenance["rule"] == "average" and mixed.meta.provenance["target"] == "beta"
    assert [a["name"] for a in mixed.meta.provenance["adapters"]] == ["alpha", "beta", "gamma"]
    parts = [load_adapter(p) for p in pool]
    for k, v in mixed.body.items():
        torch.testing.assert_close(v, sum(p.tensors[k] for p in parts) / 3)
    for k, v in mixed.head.items():
        assert torch.equal(v, parts[1].tensors[k]), "a mixture keeps the target's own head"
    model_from_adapter(mixed, tiny_encoder("bert")).detach_body()


def test_mix_ties_with_params(pool, tmp_path):
    out = tmp_path / "ties"
    assert main(["mix", "--rule", "ties", "--param", "density=0.5", *map(str, pool), "-o", str(out)]) == 0
    assert load_adapter(out).meta.provenance["params"] == {"density": 0.5}


def test_prune_exact_count(pool, tmp_path, capsys):
    out = tmp_path / "sparse"
    assert main(["prune", str(pool[0]), "--sparsity", "0.9", "-o", str(out)]) == 0
    body = load_adapter(out).body
    total = sum(t.numel() for t in body.values())
    assert sum(int((t != 0).sum()) for t in body.values()) == round(0.1 * total)
    assert load_adapter(out).meta.provenance["kind"] == "pruned"


@pytest.mark.parametrize("sparsity", ["-0.1", "1.5"])
def test_prune_bad_sparsity(pool, tmp_path, capsys, sparsity):
    assert main(["prune", str(pool[0]), "--sparsity", sparsity, "-o", str(tmp_path / "x")]) == 2
    assert capsys.readouterr().err.strip() == f"adaptermix: error: sparsity must be in [0, 1], got {float(sparsity)}"
    assert not (tmp_path / "x").exists()


def test_mix_refuses_other_base_model(pool, tmp_path, capsys):
    other = make_adapter(tmp_path / "other", tiny_encoder("roberta"))
    assert main(["mix", str(pool[0]), str(other), "-o", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("adaptermix: error: ") and "base_fingerprint" in err and "\n" not in err
    assert not (tmp_path / "m").exists()


def test_mix_refuses_other_method(pool, tmp_path, capsys):
    other = make_adapter(tmp_path / "lora", tiny_encoder("bert"), method="lora")
    assert main(["mix", str(pool[0]), str(other), "-o", str(tmp_path / "m")]) == 2
    assert "method" in capsys.readouterr().err


def test_mix_average_heads_requires_identical_label_sets(pool, tmp_path, capsys):
    three = make_adapter(tmp_path / "three", tiny_encoder("bert"),
                         info=TaskInfo("three", "single", "classification", ("a", "b", "c")))
    assert main(["mix", str(pool[0]), str(three), "--heads", "average", "-o", str(tmp_path / "m")]) == 2
    assert "label" in capsys.readouterr().err


def test_lora_dw_average_is_exact(tmp_path):
    enc = tiny_encoder("bert")
    loras = [make_adapter(tmp_path / n, enc, method="lora", seed=i) for i, n in enumerate(["a", "b"])]
    out = tmp_path / "dw"
    assert main(["mix", "--space", "dw", *map(str, loras), "-o", str(out)]) == 0
    mixed = load_adapter(out)
    assert mixed.meta.method["rank"] == 4
    parts = [load_adapter(p) for p in loras]
    scale = parts[0].meta.method["alpha"] / parts[0].meta.method["rank"]
    mscale = mixed.meta.method["alpha"] / mixed.meta.method["rank"]
    site = "layers.0.query"
    want = sum(scale * p.tensors[f"{site}.lora_B"] @ p.tensors[f"{site}.lora_A"] for p in parts) / 2
    got = mscale * mixed.tensors[f"{site}.lora_B"] @ mixed.tensors[f"{site}.lora_A"]
    torch.testing.assert_close(got, want)
    model_from_adapter(mixed, enc).detach_body()


def _row_means(pool) -> dict[str, float]:
    from adaptermix.pool import load_pool

    loaded = load_pool(pool)
    vals = loaded.fsd("raw").values
    return dict(zip(loaded.names, vals.mean(dim=1).tolist(), strict=True))


def test_mix_greedy_with_target_keeps_it_and_records_exactly_what_went_in(pool, tmp_path):
    means = _row_means(pool)
    # The adapter Alg. 1 would drop first (largest row-mean FSD) is the target: it must stay in.
    target = max(means, key=means.get)
    partner = min((n for n in means if n != target), key=means.get)
    out = tmp_path / "greedy"
    args = ["mix", "--rule", "greedy_fsd", "--param", "l=2", *map(str, pool), "--target", target, "-o", str(out)]
    assert main(args) == 0
    mixed = load_adapter(out)
    prov = mixed.meta.provenance
    assert [a["name"] for a in prov["adapters"]] == sorted([target, partner])
    assert [a["name"] for a in prov["candidates"]] == ["alpha", "beta", "gamma"]
    assert prov["target"] == target and prov["params"] == {"l": 2}
    parts = {p.name: load_adapter(p) for p in pool}
    for k, v in mixed.body.items():
        torch.testing.assert_close(v, (parts[target].tensors[k] + parts[partner].tensors[k]) / 2)
    for k, v in mixed.head.items():
        assert torch.equal(v, parts[target].tensors[k])


def test_mix_greedy_without_target_uses_a_chosen_adapters_head(pool, tmp_path):
    means = _row_means(pool)
    chosen = sorted(sorted(means, key=lambda n: (means[n], n))[:2])
    out = tmp_path / "greedy"
    assert main(["mix", "--rule", "greedy_fsd", "--param", "l=2", *map(str, pool), "-o", str(out)]) == 0
    prov = load_adapter(out).meta.provenance
    assert [a["name"] for a in prov["adapters"]] == chosen and prov["target"] == chosen[0]


def test_mix_sparse_fsd_with_target_keeps_it(pool, tmp_path):
    means = _row_means(pool)
    target = max(means, key=means.get)
    out = tmp_path / "sparse"
    args = ["mix", "--rule", "sparse_fsd", "--param", "l=2", "--param", "s=0.5", *map(str, pool),
            "--target", target, "-o", str(out)]
    assert main(args) == 0
    prov = load_adapter(out).meta.provenance
    assert target in [a["name"] for a in prov["adapters"]] and len(prov["adapters"]) == 2
    assert len(prov["candidates"]) == 3
