"""Per-domain masks (EMR-Merging, TALL masks, consensus), the masked merge artefact and the task-vector space.

Rules are checked on hand-made task vectors whose expected values are worked out in the comments; the
artefact on tiny adapters: round trip, bit packing, equality with the in-sweep rule, storage, ``eval
--domain`` end to end, and one-line errors.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import yaml

from adaptermix.artefact import load_adapter, model_from_adapter
from adaptermix.cli.main import main
from adaptermix.deltas import AdapterDelta, ParamLayout, bottleneck_shapes, random_delta, stack
from adaptermix.errors import ArtefactError, ConfigError, IncompatibleAdaptersError
from adaptermix.masked import (
    MaskedArtefact,
    for_domain,
    is_masked,
    load_masked,
    masked_merge,
    pack_mask,
    save_masked,
    unpack_mask,
)
from adaptermix.merging import MERGE_RULES, merge, merge_flat
from adaptermix.merging.masked_rules import emr_unify, tall_unify
from adaptermix.mixture import mix_pool
from adaptermix.pool import initial_delta, load_pool
from adaptermix.task_vectors import task_vectors
from helpers import TOY_SENTIMENT, make_adapter, save_tiny_model, toy_data
from tiny import tiny_encoder

# Three hand-made task vectors over 5 parameters (rows a, b, c).
X = torch.tensor([[1.0, -2.0, 3.0, 0.0, 0.5], [2.0, 1.0, -1.0, 0.0, -0.5], [-4.0, 2.0, -1.0, 5.0, 0.0]])
KEYS = ("a", "b", "c")


def _view(rule: str, target: str, **params: object) -> torch.Tensor:
    return merge_flat(rule, X, range(3), keys=KEYS, target=target, **params)


# -- EMR ----------------------------------------------------------------------------------------------
def test_emr_by_hand() -> None:
    # column sums -1, 1, 1, 5, 0 -> elected signs -, +, +, +, none
    # tau_uni: max |x| over agreeing rows: col0 c(-4) -> -4; col1 b(1), c(2) -> 2; col2 a(3) -> 3; col3 c -> 5;
    # col4: no sign elected -> 0
    u = emr_unify(X)
    assert torch.equal(u.body, torch.tensor([-4.0, 2.0, 3.0, 5.0, 0.0]))
    masks = torch.tensor([[0, 0, 1, 0, 0], [0, 1, 0, 0, 0], [1, 1, 0, 1, 0]], dtype=torch.bool)
    assert torch.equal(u.masks, masks)
    # s_t = sum|tau_t| / sum|m_t * tau_uni|: a 6.5 / 3, b 4.5 / 2, c 12 / 11
    assert torch.allclose(u.scales, torch.tensor([6.5 / 3, 4.5 / 2, 12 / 11]))
    assert torch.allclose(_view("emr", "a"), torch.tensor([0.0, 0.0, 6.5, 0.0, 0.0]))
    assert torch.allclose(_view("emr", "b"), torch.tensor([0.0, 4.5, 0.0, 0.0, 0.0]))
    assert torch.allclose(_view("emr", "c"), torch.tensor([-4.0, 2.0, 0.0, 5.0, 0.0]) * 12 / 11)


def test_emr_tensor_mean_rescale_as_fusion_bench() -> None:
    # two tensors p = cols 0..2, q = cols 3..4; FusionBench: s = sum over tensors of mean|tau| / same of m*tau_uni
    # a: (2 + 0.25) / (1 + 0) = 2.25; b: (4/3 + 0.25) / (2/3 + 0); c: (7/3 + 2.5) / (2 + 2.5)
    stacked = stack([AdapterDelta({"p": r[:3], "q": r[3:]}) for r in X], list(KEYS))
    u = emr_unify(stacked.matrix, "tensor_mean", stacked.layout)
    assert torch.allclose(u.scales, torch.tensor([2.25, (4 / 3 + 0.25) / (2 / 3), (7 / 3 + 2.5) / 4.5]))
    out = merge("emr", stacked, target="a", rescale="tensor_mean").flatten()
    assert torch.allclose(out, torch.tensor([0.0, 0.0, 6.75, 0.0, 0.0]))
    with pytest.raises(ConfigError, match="merge rule 'emr' needs the adapters' parameter layout"):
        merge_flat("emr", X, range(3), keys=KEYS, target="a", rescale="tensor_mean")
    with pytest.raises(ConfigError, match="unknown EMR rescale 'l2'; valid: sum, tensor_mean"):
        _view("emr", "a", rescale="l2")


# -- TALL and consensus ---------------------------------------------------------------------------------
def test_tall_masks_by_hand() -> None:
    # lam 0.5: tau_MTL = 0.5 * (-1, 1, 1, 5, 0) = (-0.5, 0.5, 0.5, 2.5, 0); mask_lambda 1:
    # a: |a| = 1 2 3 0 .5 vs |mtl - a| = 1.5 2.5 2.5 2.5 .5 -> F F T F T
    # b: |b| = 2 1 1 0 .5 vs 2.5 .5 1.5 2.5 .5 -> F T F F T
    # c: |c| = 4 2 1 5 0 vs 3.5 1.5 1.5 2.5 0 -> T T F T T (0 >= 0: the paper's >=)
    mtl = torch.tensor([-0.5, 0.5, 0.5, 2.5, 0.0])
    u = tall_unify(X, KEYS, lam=0.5, mask_lambda=1.0)
    assert torch.equal(u.body, mtl) and torch.equal(u.scales, torch.ones(3))
    masks = torch.tensor([[0, 0, 1, 0, 1], [0, 1, 0, 0, 1], [1, 1, 0, 1, 1]], dtype=torch.bool)
    assert torch.equal(u.masks, masks)
    for j, key in enumerate(KEYS):
        assert torch.equal(_view("tall_mask", key, lam=0.5, mask_lambda=1.0), torch.where(masks[j], mtl, 0.0))
    # per-domain lambda_t: a at 0.1 keeps every entry whose |a| >= 0.1 * |mtl - a| (all but col 3)
    out = _view("tall_mask", "a", lam=0.5, mask_lambda={"a": 0.1, "b": 1.0, "c": 1.0})
    assert torch.equal(out, torch.tensor([-0.5, 0.5, 0.5, 0.0, 0.0]))
    with pytest.raises(ConfigError, match="mask_lambda gives no value for domain 'b'"):
        _view("tall_mask", "a", mask_lambda={"a": 0.1})
    with pytest.raises(ConfigError, match="mask_lambda must be >= 0, got -1.0"):
        _view("tall_mask", "a", mask_lambda=-1.0)


def test_consensus_keeps_entries_at_least_two_masks_select() -> None:
    # masks of test_tall_masks_by_hand select per column: c; b, c; a; c; a, b, c -> keep cols 1 and 4
    out = merge_flat("consensus_ta", X, range(3), keys=KEYS, lam=0.5, mask_lambda=1.0)
    assert torch.equal(out, torch.tensor([0.0, 0.5, 0.0, 0.0, 0.0]))
    every = merge_flat("consensus_ta", X, range(3), keys=KEYS, lam=0.5, mask_lambda=1.0, min_agree=0)
    assert torch.equal(every, 0.5 * X.sum(0))  # threshold 0: plain task arithmetic
    with pytest.raises(ConfigError, match="min_agree must be an integer >= 0"):
        merge_flat("consensus_ta", X, range(3), keys=KEYS, min_agree=-1)


def test_a_single_domain_is_reproduced_exactly() -> None:
    a = random_delta(bottleneck_shapes(2, 6, 3), 1).flatten()
    a[::7] = 0.0
    u = emr_unify(a[None])
    assert float(u.scales[0]) == 1.0 and torch.equal(u.masks[0], a != 0) and torch.equal(u.view(0), a)
    assert torch.equal(merge_flat("tall_mask", a[None], [0], keys=["a"], target="a"), a)
    assert torch.equal(merge_flat("consensus_ta", a[None], [0], keys=["a"], min_agree=1), a)


def test_target_is_required_and_must_be_mixed() -> None:
    for rule in ("emr", "tall_mask"):
        assert MERGE_RULES.get(rule).needs_target
        with pytest.raises(ConfigError, match=f"merge rule '{rule}' gives one domain's view: it needs the target"):
            merge_flat(rule, X, range(3), keys=KEYS)
        with pytest.raises(ConfigError, match=f"merge rule '{rule}': the target 'c' is not among the adapters "
                                              r"mixed \(a, b\)"):
            merge_flat(rule, X, [1, 0], keys=KEYS, target="c")
    assert not MERGE_RULES.get("consensus_ta").needs_target
    # a rule that needs no target ignores one
    assert torch.equal(merge_flat("average", X, range(3), keys=KEYS, target="a"), merge_flat("average", X, range(3)))


# -- pools on disk ----------------------------------------------------------------------------------------
NAMES = ["alpha", "beta", "gamma"]


@pytest.fixture(scope="module")
def disk(tmp_path_factory) -> dict[str, Path]:
    """Three adapters sharing one init on a tiny encoder saved to disk (the CLI loads it by path)."""
    root = tmp_path_factory.mktemp("masked")
    from adaptermix.backbone.loading import load_encoder

    enc = load_encoder(str(save_tiny_model(root / "model")), precision="fp32")
    dirs = {n: make_adapter(root / "pool" / n, enc, seed=i, scale=0.3, info=TOY_SENTIMENT, data=toy_data())
            for i, n in enumerate(NAMES)}
    dirs["model"] = root / "model"
    return dirs


def _pool(disk: dict[str, Path], names: list[str] = NAMES):
    return load_pool({n: disk[n] for n in names})


@pytest.mark.parametrize("rule", ["emr", "tall_mask"])
@pytest.mark.parametrize("space", ["raw", "tv"])
def test_for_domain_equals_the_in_sweep_rule_after_a_round_trip(disk, tmp_path, rule: str, space: str) -> None:
    pool = _pool(disk)
    art = masked_merge(pool, rule, space)
    loaded = load_masked(save_masked(art, tmp_path / "m"))
    assert loaded.domains == tuple(NAMES) and loaded.kind == rule and loaded.space == space
    rows, base = (pool.flat, None) if space == "raw" else task_vectors(pool)
    for d in NAMES:
        want = merge_flat(rule, rows, [2, 0, 1], layout=pool.stacked.layout, keys=pool.names,
                          fsd=pool.fsd().values, target=d, base=base)
        for source in (art, loaded):
            view = for_domain(source, d)
            assert torch.equal(AdapterDelta.from_state_dict(view.tensors).flatten(), want)
            own = pool.adapters[pool.index(d)]
            assert view.head.keys() == own.head.keys()
            assert all(torch.equal(view.tensors[k], own.tensors[k]) for k in own.head)
            assert view.meta.provenance == {"kind": "masked_view", "rule": rule, "space": space,
                                            "params": art.params, "domain": d,
                                            "source": str(source.path) if source.path else None}
        assert torch.equal(loaded.masks[d], art.masks[d]) and torch.equal(loaded.scales[d], art.scales[d])
        # mix --target writes the same view as an ordinary adapter
        mixed = mix_pool(pool, rule, d, space)
        assert all(torch.equal(mixed.tensors[k], for_domain(art, d).tensors[k]) for k in mixed.tensors)


def test_single_domain_pool_artefact_reproduces_the_adapter(disk) -> None:
    pool = _pool(disk, ["beta"])
    own = pool.adapters[0]
    for rule in ("emr", "tall_mask"):
        art = masked_merge(pool, rule)
        assert float(art.scales["beta"]) == 1.0
        view = for_domain(art, "beta")
        assert view.tensors.keys() == own.tensors.keys()
        assert all(torch.equal(view.tensors[k], own.tensors[k]) for k in own.tensors)
    emr = masked_merge(pool, "emr")
    assert torch.equal(emr.masks["beta"], pool.flat[0] != 0)


@pytest.mark.parametrize("size", [1, 7, 8, 9, 13, 64, 1001])
def test_bit_packing_is_exact(size: int) -> None:
    mask = torch.rand(size, generator=torch.Generator().manual_seed(size)) > 0.5
    packed = pack_mask(mask)
    assert packed.dtype == torch.uint8 and packed.shape == (math.ceil(size / 8),)
    assert torch.equal(unpack_mask(packed, size), mask)


def test_round_trip_with_a_layout_not_divisible_by_8(disk, tmp_path) -> None:
    layout = ParamLayout(("layers.0.attn.up.bias", "layers.0.attn.up.weight"), ((5,), (2, 4)))  # 13 params
    gen = torch.Generator().manual_seed(0)
    meta = load_adapter(disk["alpha"]).meta
    masks = {d: torch.rand(13, generator=gen) > 0.5 for d in ("x", "y")}
    art = MaskedArtefact(
        kind="emr", space="tv", params={"rescale": "sum"}, layout=layout, domains=("x", "y"),
        body=torch.randn(13, generator=gen), base=torch.randn(13, generator=gen), masks=masks,
        scales={"x": torch.tensor(1.5), "y": torch.tensor(0.25)},
        heads={d: {"head.weight": torch.randn(2, 3, generator=gen)} for d in ("x", "y")},
        metas={"x": meta, "y": meta},
    )
    path = save_masked(art, tmp_path / "odd")
    back = load_masked(path)
    for d in ("x", "y"):
        assert torch.equal(back.masks[d], masks[d]) and torch.equal(back.scales[d], art.scales[d])
        assert torch.equal(back.heads[d]["head.weight"], art.heads[d]["head.weight"])
        assert torch.equal(for_domain(back, d).tensors["layers.0.attn.up.weight"],
                           for_domain(art, d).tensors["layers.0.attn.up.weight"])
    assert torch.equal(back.body, art.body) and back.base is not None and torch.equal(back.base, art.base)
    storage = json.loads((path / "adapter.json").read_text())["storage"]
    assert storage["mask_bytes"] == 2 and storage["per_domain_bytes"] == 6


def test_storage_is_at_most_one_bit_and_a_scalar_per_parameter(disk, tmp_path) -> None:
    pool = _pool(disk)
    path = save_masked(masked_merge(pool, "emr"), tmp_path / "emr")
    raw = json.loads((path / "adapter.json").read_text())
    p = pool.flat.shape[1]
    s = raw["storage"]
    assert s["n_params"] == p and s["mask_bytes"] == math.ceil(p / 8) and s["scalar_bytes"] == 4
    assert s["per_domain_bytes"] == math.ceil(p / 8) + 4
    assert s["per_domain_bits_per_param"] <= 1 + (7 + 32) / p
    assert s["shared_bytes"] == 4 * p and s["full_adapter_bytes"] == 4 * p
    from safetensors.torch import load_file

    tensors = load_file(str(path / "adapter.safetensors"))
    for i in range(len(NAMES)):  # what is actually stored per domain, besides its head
        per_domain = [t for k, t in tensors.items() if k.startswith(f"domain.{i}.") and ".head." not in k]
        assert sum(t.numel() * t.element_size() for t in per_domain) == s["per_domain_bytes"]
    assert [d["name"] for d in raw["domains"]] == NAMES and raw["kind"] == "emr"
    assert set(raw["storage"]["head_bytes"]) == set(NAMES)


# -- task-vector space -----------------------------------------------------------------------------------
def test_task_vectors_and_tv_average_equals_raw_average(disk, tmp_path) -> None:
    pool = _pool(disk)
    tau, base = task_vectors(pool)
    assert torch.equal(base, initial_delta(pool.adapters[0]).flatten())
    assert torch.allclose(tau + base, pool.flat, atol=1e-7)
    raw = mix_pool(pool, "average", "beta")
    tv = mix_pool(pool, "average", "beta", "tv")
    assert tv.meta.provenance["space"] == "tv"
    for k, t in raw.tensors.items():
        torch.testing.assert_close(tv.tensors[k], t, atol=1e-6, rtol=0)
    # task arithmetic is where the spaces differ: lam * sum(w - b) + b, not lam * sum(w)
    ta_tv = mix_pool(pool, "task_arithmetic", "beta", "tv", lam=0.5)
    want = 0.5 * tau.sum(0) + base
    assert torch.allclose(AdapterDelta.from_state_dict(ta_tv.tensors).flatten(), want, atol=1e-6)
    out = tmp_path / "tv"
    assert main(["mix", "--rule", "average", "--space", "tv", *(str(disk[n]) for n in NAMES), "-o", str(out)]) == 0
    assert load_adapter(out).meta.provenance["space"] == "tv"


def test_different_inits_are_a_clear_error(disk, tmp_path, capsys) -> None:
    enc = tiny_encoder("bert")
    other = make_adapter(tmp_path / "other", enc, seed=5, init_seed=1)
    mixed = load_pool({"alpha": make_adapter(tmp_path / "alpha", enc, seed=0), "other": other})
    message = (r"adapters 'alpha' and 'other' start from different initialisations \(init bert seed 0 vs init "
               r"bert seed 1\): task vectors need one shared init")
    with pytest.raises(IncompatibleAdaptersError, match=message):
        task_vectors(mixed)
    with pytest.raises(IncompatibleAdaptersError, match=message):
        masked_merge(mixed, "emr", "tv")
    assert main(["mix", "--rule", "average", "--space", "tv", str(tmp_path / "alpha"), str(other),
                 "-o", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err.strip()
    assert "start from different initialisations" in err and "\n" not in err


# -- CLI -------------------------------------------------------------------------------------------------
def _run(argv: list[str], capsys) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err.strip()


def test_mix_writes_the_artefact_and_eval_domain_runs_end_to_end(disk, tmp_path, capsys) -> None:
    pool_dirs = [str(disk[n]) for n in NAMES]
    art = tmp_path / "emr"
    code, out, _ = _run(["mix", "--rule", "emr", *pool_dirs, "-o", str(art)], capsys)
    assert code == 0 and is_masked(art)
    printed = json.loads(out)
    assert printed["domains"] == NAMES and printed["storage"]["per_domain_bits_per_param"] < 1.1
    # the domain's view, evaluated from the artefact, equals the same view written as an ordinary adapter
    code, out, err = _run(["eval", str(art), "--domain", "beta", "--max-length", "32"], capsys)
    assert code == 0, err
    got = json.loads(out)
    assert got["domain"] == "beta" and got["rule"] == "emr" and got["dataset"] == "toy_sentiment"
    view = tmp_path / "beta_view"
    assert _run(["mix", "--rule", "emr", "--target", "beta", *pool_dirs, "-o", str(view)], capsys)[0] == 0
    code, out, _ = _run(["eval", str(view), "--max-length", "32"], capsys)
    assert code == 0 and json.loads(out)["metrics"] == got["metrics"]
    # an ordinary adapter keeps working unchanged
    code, out, _ = _run(["eval", str(disk["alpha"]), "--max-length", "32"], capsys)
    assert code == 0 and "domain" not in json.loads(out)


def test_eval_and_load_errors_are_one_line(disk, tmp_path, capsys) -> None:
    pool_dirs = [str(disk[n]) for n in NAMES]
    art = tmp_path / "tall"
    assert _run(["mix", "--rule", "tall_mask", "--param", "mask_lambda=0.3", *pool_dirs, "-o", str(art)],
                capsys)[0] == 0
    assert load_masked(art).params == {"lam": 1.0, "mask_lambda": 0.3}
    cases = [
        (["eval", str(art)], f"{art} is a masked merge artefact (tall_mask): pass --domain, one of alpha, beta, gamma"),
        (["eval", str(art), "--domain", "delta"],
         f"domain 'delta' is not in the masked merge artefact {art} (domains: alpha, beta, gamma)"),
        (["eval", str(disk["alpha"]), "--domain", "alpha"],
         f"--domain applies to masked merge artefacts (mix --rule emr|tall_mask); {disk['alpha']} is an ordinary "
         "adapter"),
        (["mix", "--rule", "emr", "--space", "dw", *pool_dirs, "-o", str(tmp_path / "dw")],
         "masked merges run in space 'raw' or 'tv', not 'dw'"),
        (["mix", "--rule", "emr", "--heads", "average", *pool_dirs, "-o", str(tmp_path / "h")],
         "a masked merge keeps every domain's own head; --heads applies to ordinary mixtures"),
        (["mix", str(art), str(disk["alpha"]), "-o", str(tmp_path / "x")], f"{art} is a masked merge artefact"),
    ]
    for argv, message in cases:
        code, _, err = _run(argv, capsys)
        assert code == 2 and len(err.splitlines()) == 1, (argv, err)
        assert err.startswith(f"adaptermix: error: {message}"), (argv, err)
    with pytest.raises(ArtefactError, match="pick a domain"):
        load_adapter(art)
    with pytest.raises(ConfigError, match="'emr' gives one domain's view: it needs the target domain"):
        mix_pool(_pool(disk), "emr")


def test_emr_runs_in_a_sweep_as_the_target_view(disk, tmp_path) -> None:
    from adaptermix.sweep.runner import run_sweep
    from adaptermix.sweep.spec import load_spec
    from adaptermix.sweep.store import ResultsStore
    from adaptermix.training.evaluate import evaluate

    spec = {"pool": [str(disk[n]) for n in NAMES], "evaluations": ["clean"], "rules": [{"name": "emr"}],
            "subsets": {"generator": "all", "ks": [3]}, "max_length": 32}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    from adaptermix.backbone.loading import load_encoder

    enc = load_encoder(str(disk["model"]), precision="fp32")
    run_sweep(load_spec(path), tmp_path / "r.sqlite", encoder=enc, progress=False)
    with ResultsStore(tmp_path / "r.sqlite", readonly=True) as store:
        rows = store.rows()
    assert sorted(r["target"] for r in rows) == NAMES
    from adaptermix.data import load_task
    from adaptermix.data.config import DataConfig
    from adaptermix.training.batching import tokenize

    tset = tokenize(enc.tokenizer, load_task(DataConfig(**toy_data()), splits=("test",)).split("test"), 32, False)
    art = masked_merge(_pool(disk), "emr")
    for r in rows:
        model = model_from_adapter(for_domain(art, r["target"]), enc)
        want = evaluate(model, tset, TOY_SENTIMENT)["accuracy"]
        model.detach_body()
        assert r["metric"] == pytest.approx(want)
