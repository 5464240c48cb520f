"""AdaMix: experts, stochastic routing, consistency, merging and inference modes, on tiny encoders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from adaptermix.adamix import consistency_loss, merge_artefact, merge_expert_tensors, merged_path
from adaptermix.adamix.inference import evaluate_mode, predict_mode
from adaptermix.artefact import (
    AdapterMeta,
    load_adapter,
    model_from_adapter,
    new_model,
    save_adapter,
    task_to_dict,
)
from adaptermix.data import load_task
from adaptermix.data.config import DataConfig
from adaptermix.data.schema import TaskInfo
from adaptermix.errors import ArtefactError
from adaptermix.methods import METHODS, MethodConfig
from adaptermix.methods.adamix import AdaMixBody, AdaMixInference
from adaptermix.model import AdapterModel, HeadConfig
from adaptermix.training.batching import collate, tokenize
from adaptermix.training.loop import task_loss
from tiny import ARCHS, tiny_encoder

PACK = Path(__file__).parent / "data" / "pack"
INFO = TaskInfo(
    name="toy", task="single", problem="classification", label_names=("neg", "pos"), metric="accuracy"
)
REG_INFO = TaskInfo(name="toy_reg", task="single", problem="regression", label_names=(), metric="pearson")
SHARING = ("up", "down", "none")
PLACEMENTS = ("houlsby", "pfeiffer")
TEXTS = ["the movie was good", "awful boring plot", "not very fun", "great acting and music", "the cat sat"]


def adamix_cfg(
    m: int = 4, sharing: str = "up", placement: str = "houlsby", weight: float = 1.0
) -> MethodConfig:
    return MethodConfig.model_validate(
        {
            "name": "adamix",
            "bottleneck_size": 8,
            "adamix": {
                "num_experts": m,
                "sharing": sharing,
                "placement": placement,
                "consistency_weight": weight,
            },
        }
    )


def make_model(cfg: MethodConfig, arch: str = "bert", info: TaskInfo = INFO) -> AdapterModel:
    return new_model(tiny_encoder(arch), cfg, HeadConfig(dropout=0.0), info)


def batch(arch: str = "bert") -> dict[str, torch.Tensor]:
    from adaptermix.data.schema import Example

    tset = tokenize(tiny_encoder(arch).tokenizer, [Example(t, 0) for t in TEXTS], 16, False)
    return collate(tset, list(range(len(TEXTS))))


def randomise(model: AdapterModel, seed: int = 0) -> None:
    """Give every expert its own random weights (fresh up-projections are zero, so all routes agree)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.body.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.3)


@pytest.fixture
def detach_after():
    models: list[AdapterModel] = []
    yield models.append
    for m in models:
        m.detach_body()


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("placement", PLACEMENTS)
def test_one_expert_equals_plain_bottleneck(arch: str, placement: str, detach_after) -> None:
    mix = make_model(adamix_cfg(m=1, placement=placement), arch)
    detach_after(mix)
    plain_cfg = MethodConfig(name=placement, bottleneck_size=8)
    # The same init seed gives the same initial weights (experts are copies of the plain init).
    fresh = METHODS.get(placement).build_body(plain_cfg, 32, 2).state_dict()
    assert {k: v.shape for k, v in fresh.items()} == {
        k: v.shape[1:] for k, v in mix.body.state_dict().items()
    }
    assert all(torch.equal(fresh[k], v[0]) for k, v in mix.body.state_dict().items())
    randomise(mix)
    mix.body.seed_routing(0)
    mix.eval()
    with torch.no_grad():
        merged_logits = mix(**batch(arch))
        mix.body.train()  # routed (train-mode) forward with M = 1 has only one route
        routed_logits = mix(**batch(arch))
    mix.detach_body()
    plain = make_model(plain_cfg, arch)
    detach_after(plain)
    plain.load_trainable_state(
        {k: (v[0] if k.startswith("layers.") else v) for k, v in mix.trainable_state().items()}
    )
    plain.eval()
    with torch.no_grad():
        want = plain(**batch(arch))
    assert torch.equal(merged_logits, want)
    assert torch.equal(routed_logits, want)


@pytest.mark.parametrize("sharing", SHARING)
def test_expert_shapes_and_merged_parameter_count(sharing: str) -> None:
    cfg = adamix_cfg(m=4, sharing=sharing)
    body = METHODS.get("adamix").build_body(cfg, 32, 2)
    plain = METHODS.get("houlsby").build_body(MethodConfig(name="houlsby", bottleneck_size=8), 32, 2)
    state = body.state_dict()
    for name, t in state.items():
        shared = name.split(".")[-2] == sharing
        assert t.shape[0] == (1 if shared else 4), name
    merged = merge_expert_tensors(state)
    assert sum(t.numel() for t in merged.values()) == sum(p.numel() for p in plain.parameters())
    assert {k: v.shape for k, v in merged.items()} == {k: v.shape for k, v in plain.state_dict().items()}


def test_merging_equal_experts_is_identity() -> None:
    plain = METHODS.get("houlsby").build_body(MethodConfig(name="houlsby", bottleneck_size=8), 32, 2)
    gen = torch.Generator().manual_seed(1)
    single = {k: torch.randn(v.shape, generator=gen) for k, v in plain.state_dict().items()}
    single["head.out.weight"] = torch.randn(2, 32, generator=gen)
    copies = {
        k: (v if k.startswith("head.") else v.unsqueeze(0).repeat(4, *([1] * v.dim())))
        for k, v in single.items()
    }
    merged = merge_expert_tensors(copies)
    assert all(torch.equal(merged[k], v) for k, v in single.items())


def test_routing_reproducible_for_a_seed_and_different_across_steps(detach_after) -> None:
    model = make_model(adamix_cfg(m=4, sharing="none"))
    detach_after(model)
    model.train()

    def routes(seed: int, steps: int = 6) -> list:
        model.body.seed_routing(seed)
        out = []
        with torch.no_grad():
            for _ in range(steps):
                model(**batch())
                out.append(model.body.routing.route)
        return out

    first, again, other = routes(3), routes(3), routes(4)
    assert first == again
    assert first != other
    assert len({str(r) for r in first}) > 1  # a new route every step
    assert all(0 <= k < 4 for r in first for layer in r for pair in layer for k in pair)


def test_unseeded_routing_follows_the_global_seed(detach_after) -> None:
    def first_route() -> list:
        model = make_model(adamix_cfg(m=8, sharing="none"))
        detach_after(model)
        model.train()
        torch.manual_seed(11)
        with torch.no_grad():
            model(**batch())
        route = model.body.routing.route
        model.detach_body()
        return route

    assert first_route() == first_route()


@pytest.mark.parametrize("regression", [False, True])
def test_consistency_zero_on_same_route_positive_otherwise(regression: bool, detach_after) -> None:
    model = make_model(adamix_cfg(m=4, sharing="none"), info=REG_INFO if regression else INFO)
    detach_after(model)
    randomise(model)
    model.eval()
    body: AdaMixBody = model.body  # type: ignore[assignment]
    body.train()  # routed forwards; encoder and head dropout stay off so only the route differs
    a_route, b_route = body.draw_route(torch.Generator().manual_seed(0)), body.fixed_route()
    assert a_route != b_route
    b = batch()
    with torch.no_grad():
        with body.pinned_route(a_route):
            a1, a2 = model(**b), model(**b)
        with body.pinned_route(b_route):
            b1 = model(**b)
    assert consistency_loss(a1, a2, regression).item() == 0.0
    assert consistency_loss(a1, b1, regression).item() > 1e-6
    labels = torch.rand(len(TEXTS)) if regression else torch.tensor([0, 1, 0, 1, 1])
    with torch.no_grad(), body.pinned_route(a_route):
        # Both passes take the pinned route: the loss is the task loss alone.
        assert torch.allclose(
            body.training_loss(model, b, labels, regression), task_loss(a1, labels, regression)
        )


@pytest.mark.parametrize(("weight", "forwards"), [(0.0, 1), (1.0, 2)])
def test_training_loss_passes(weight: float, forwards: int, detach_after) -> None:
    model = make_model(adamix_cfg(weight=weight))
    detach_after(model)
    model.train()
    calls = []
    handle = model.encoder_model.register_forward_pre_hook(lambda *_: calls.append(1))
    loss = model.body.training_loss(model, batch(), torch.tensor([0, 1, 0, 1, 1]), False)
    handle.remove()
    loss.backward()
    assert len(calls) == forwards
    grads = [p.grad for p in model.body.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def test_consistency_gradient_reaches_both_passes() -> None:
    a = torch.randn(4, 3, requires_grad=True)
    b = torch.randn(4, 3, requires_grad=True)
    consistency_loss(a, b, False).backward()
    assert a.grad.abs().sum() > 0 and b.grad.abs().sum() > 0


def save_unmerged(
    model: AdapterModel, path: Path, info: TaskInfo = INFO, cfg: MethodConfig | None = None
) -> Path:
    meta = AdapterMeta(
        method=(cfg or adamix_cfg()).model_dump(mode="json"),
        head=HeadConfig(dropout=0.0).model_dump(),
        base_model=AdapterMeta.describe_base(model.encoder),
        task=task_to_dict(info),
    )
    return save_adapter(path, model.trainable_state(), meta)


@pytest.mark.parametrize("placement", PLACEMENTS)
@pytest.mark.parametrize("sharing", SHARING)
def test_merged_artefact_loads_through_ordinary_path(
    placement: str, sharing: str, tmp_path: Path, detach_after
) -> None:
    cfg = adamix_cfg(m=3, sharing=sharing, placement=placement)
    model = make_model(cfg)
    detach_after(model)
    randomise(model)
    model.eval()
    with torch.no_grad():
        want = model(**batch())  # eval mode default: experts averaged in place
    src = save_unmerged(model, tmp_path / "mix", cfg=cfg)
    out = merge_artefact(src, tmp_path / "merged")
    merged = load_adapter(out)
    assert merged.meta.method["name"] == placement
    assert merged.meta.provenance["kind"] == "adamix_merged"
    loaded = model_from_adapter(merged, tiny_encoder("bert"))
    detach_after(loaded)
    model.detach_body()
    assert type(loaded.body) is not AdaMixBody
    with torch.no_grad():
        got = loaded(**batch())
    assert torch.allclose(got, want, atol=1e-6)
    # ... and the unmerged checkpoint reloads too (all experts).
    again = model_from_adapter(load_adapter(src), tiny_encoder("bert"))
    detach_after(again)
    loaded.detach_body()
    with torch.no_grad():
        assert torch.allclose(again(**batch()), want, atol=1e-6)


def test_merge_refuses_a_plain_adapter(tmp_path: Path, detach_after) -> None:
    model = make_model(MethodConfig(name="houlsby", bottleneck_size=8))
    detach_after(model)
    src = save_unmerged(model, tmp_path / "plain", cfg=MethodConfig(name="houlsby", bottleneck_size=8))
    with pytest.raises(ArtefactError, match="only 'adamix'"):
        merge_artefact(src, tmp_path / "out")


@pytest.mark.parametrize("mode", list(AdaMixInference))
def test_each_inference_mode_runs(mode: AdaMixInference, detach_after) -> None:
    model = make_model(adamix_cfg(m=4, sharing="none"))
    detach_after(model)
    randomise(model)
    model.eval()
    tset = tokenize(
        tiny_encoder("bert").tokenizer,
        load_task(DataConfig(name="toy_sentiment", data_dir=str(PACK)), splits=("test",)).split("test"),
        16,
        False,
    )
    out = predict_mode(model, tset, mode, regression=False, routes=3, seed=7, batch_size=4)
    assert out.shape == (len(tset), 2) and np.isfinite(out).all()
    again = predict_mode(model, tset, mode, regression=False, routes=3, seed=7, batch_size=4)
    np.testing.assert_array_equal(out, again)  # random routes are seeded
    metrics = evaluate_mode(model, tset, INFO, mode, routes=3, seed=7, batch_size=4)
    assert 0.0 <= metrics["accuracy"] <= 1.0
    assert model.body.inference is AdaMixInference.MERGED  # the mode is scoped to the call
    if mode is AdaMixInference.ENSEMBLE:
        np.testing.assert_allclose(np.exp(out).sum(-1), 1.0, rtol=1e-5)  # log of averaged probabilities
    if mode is AdaMixInference.FIXED:
        with torch.no_grad(), model.body.pinned_route(model.body.fixed_route()):
            from adaptermix.training.evaluate import predict

            np.testing.assert_allclose(out, predict(model, tset, 4), atol=1e-6)


def test_regression_end_to_end_writes_unmerged_and_merged(tmp_path: Path) -> None:
    from adaptermix.adamix.inference import eval_adamix
    from adaptermix.training.config import TrainRunConfig
    from adaptermix.training.run import eval_adapter, train_adapter

    enc = tiny_encoder("bert")
    cfg = TrainRunConfig.model_validate(
        {
            "model": {"max_length": 32},
            "data": {"name": "toy_sts", "data_dir": str(PACK)},
            "method": {"name": "adamix", "bottleneck_size": 8, "adamix": {"num_experts": 2}},
            "train": {"epochs": 2, "batch_size": 8, "progress": False, "seed": 3, "learning_rate": 1e-2},
            "output_dir": str(tmp_path / "sts"),
            "eval_splits": ["test"],
        }
    )
    out = train_adapter(cfg, encoder=enc)
    assert np.isfinite(out.metrics["test"]["pearson"])
    unmerged, merged = load_adapter(out.path), load_adapter(merged_path(out.path))
    assert unmerged.meta.method["name"] == "adamix" and merged.meta.method["name"] == "houlsby"
    assert merged.path == tmp_path / "sts-merged"
    # The merged artefact evaluates exactly as the unmerged one in MERGED mode.
    plain = eval_adapter(merged.path, "test", encoder=enc, max_length=32)
    for mode in AdaMixInference:
        metrics = eval_adamix(out.path, mode, routes=2, split="test", encoder=enc, max_length=32)
        assert np.isfinite(metrics["pearson"])
        if mode is AdaMixInference.MERGED:
            assert metrics["pearson"] == pytest.approx(plain["pearson"], abs=1e-5)
            assert metrics["pearson"] == pytest.approx(out.metrics["test"]["pearson"], abs=1e-5)


def test_cli_merge(tmp_path: Path, detach_after, capsys) -> None:
    from adaptermix.cli.main import main

    model = make_model(adamix_cfg(m=2))
    detach_after(model)
    randomise(model)
    src = save_unmerged(model, tmp_path / "mix", cfg=adamix_cfg(m=2))
    assert main(["adamix", "merge", str(src), "-o", str(tmp_path / "out")]) == 0
    assert load_adapter(tmp_path / "out").meta.method["name"] == "houlsby"
    assert main(["adamix", "merge", str(tmp_path / "out"), "-o", str(tmp_path / "again")]) == 2
    assert "only 'adamix'" in capsys.readouterr().err


def experiment_cfg(tmp_path: Path, **over):
    from adaptermix.adamix.experiment import ExperimentConfig
    from adaptermix.config import read_yaml

    raw = read_yaml(Path(__file__).parents[1] / "configs" / "adamix-glue.yaml")
    return ExperimentConfig.model_validate({**raw, "output_dir": str(tmp_path), **over})


def test_experiment_plan_default_and_full_grid(tmp_path: Path) -> None:
    from adaptermix.adamix.experiment import plan_runs

    cfg = experiment_cfg(tmp_path)
    default, full = plan_runs(cfg), plan_runs(cfg, full=True)
    # A variant's own tasks bound it in both grids; the default grid also keeps only default_tasks.
    expected = {(k, t) for k, v in cfg.variants.items() for t in cfg.tasks if t in (v.tasks or cfg.tasks)}
    assert {(r.variant, r.task) for r in full} == expected
    assert len(full) == len(expected) * len(cfg.seeds)
    assert {(r.variant, r.task) for r in default} == {(k, t) for k, t in expected if t in cfg.default_tasks}
    assert ("adamix-nocons", "cola") not in expected  # the ablations run on the paper's five tasks
    assert ("adamix", "cola") in expected
    assert len({r.key for r in full}) == len(full)  # every run has its own key
    adamix = [r for r in default if r.variant == "adamix"]
    assert all(r.modes == ("random", "fixed", "ensemble") for r in adamix)
    assert all(r.cfg.method.init_seed == r.seed == r.cfg.train.seed for r in default)
    # The key changes when anything that determines a run changes, not when the output folder does.
    moved = plan_runs(experiment_cfg(tmp_path / "elsewhere"))
    assert [r.key for r in moved] == [r.key for r in default]
    faster = plan_runs(experiment_cfg(tmp_path, train={**cfg.train.model_dump(), "learning_rate": 0.5}))
    assert not {r.key for r in faster} & {r.key for r in default}


def test_experiment_rejects_unknown_rows(tmp_path: Path) -> None:
    from adaptermix.adamix.experiment import plan_runs
    from adaptermix.errors import ConfigError

    with pytest.raises(ConfigError, match="names no variant"):
        plan_runs(experiment_cfg(tmp_path, tables=[{"title": "t", "rows": ["nope"]}]))


def test_experiment_tables_from_result_files(tmp_path: Path) -> None:
    from adaptermix.adamix.experiment import is_done, plan_runs, write_tables
    from adaptermix.io import atomic_write_json

    cfg = experiment_cfg(tmp_path)
    runs = [r for r in plan_runs(cfg) if r.task == "sst2" and r.variant in ("adamix", "houlsby")]
    for i, run in enumerate(runs):
        atomic_write_json(
            run.result_path(tmp_path),
            {
                "key": run.key,
                "variant": run.variant,
                "task": run.task,
                "seed": run.seed,
                "metric": "accuracy",
                "test": {"accuracy": 0.8 + 0.01 * i},
                "params_trained": 2000,
                "params_inference": 1000,
                "modes": {
                    "random": {"accuracy": 0.7},
                    "fixed": {"accuracy": 0.6},
                    "ensemble": {"accuracy": 0.75},
                }
                if run.variant == "adamix"
                else {},
            },
        )
        assert is_done(run, tmp_path)
    text = write_tables(cfg)
    assert (tmp_path / "results.md").read_text() == text
    table1 = text.split("### ")[1]
    assert "| AdaMix | 1k |" in table1 and "sst2 (acc)" in table1 and "(3)" in table1
    assert "cola" not in table1  # no finished run: no column
    assert "AdaMix-RandomRouting | 2k | 70.0 ± 0.0 (3)" in text
    assert "| AdaMix-NoConsistencyLoss | – | – | – |" in text.split("### ")[3]  # not run yet: empty row
    # Results of another config (different key) are not shown.
    other = experiment_cfg(tmp_path, train={**cfg.train.model_dump(), "learning_rate": 0.5})
    assert "(no finished runs yet)" in write_tables(other)


def test_merged_adapter_mixes_like_any_bottleneck_adapter(tmp_path: Path, detach_after) -> None:
    from adaptermix.errors import IncompatibleAdaptersError
    from adaptermix.merging import merge
    from adaptermix.pool import load_pool

    mix = make_model(adamix_cfg(m=3))
    detach_after(mix)
    randomise(mix, seed=1)
    src = save_unmerged(mix, tmp_path / "mix")
    merged = merge_artefact(src, tmp_path / "mix-merged")
    plain_cfg = MethodConfig(name="houlsby", bottleneck_size=8)
    plain = make_model(plain_cfg)
    detach_after(plain)
    randomise(plain, seed=2)
    other = save_unmerged(plain, tmp_path / "plain", cfg=plain_cfg)
    pool = load_pool([merged, other])
    assert 0.0 < pool.fsd().values[0, 1] < 1.0
    soup = merge("average", pool.stacked)
    assert soup.layout == pool.stacked.layout
    assert all(torch.isfinite(t).all() for t in soup.tensors.values())
    with pytest.raises(IncompatibleAdaptersError):  # the unmerged checkpoint is not an ordinary adapter
        load_pool([src, other])


def test_experiment_dry_run_writes_nothing(tmp_path: Path, minilm_ready, capsys) -> None:
    from adaptermix.adamix.experiment import run_experiment

    cfg = experiment_cfg(tmp_path / "exp", data_dir=str(minilm_ready), default_tasks=["rte"])
    text = run_experiment(cfg, dry_run=True)
    assert "(no finished runs yet)" in text
    assert "pending" in capsys.readouterr().out
    assert not (tmp_path / "exp").exists()  # no results.md, no folders: a dry run only reports


def test_experiment_workers_share_the_grid_without_repeating_a_run(tmp_path: Path) -> None:
    """Two spawned workers over one grid: every run executed exactly once, by both workers, no claim left."""
    from adaptermix.adamix.experiment import is_done, plan_runs, run_experiment
    from helpers import fake_adamix_executor

    cfg = experiment_cfg(tmp_path / "exp", seeds=[1, 2], default_tasks=["sst2"])
    runs = plan_runs(cfg)
    text = run_experiment(cfg, workers=2, executor_factory=fake_adamix_executor)
    lines = (tmp_path / "exp" / "executions.log").read_text().split("\n")[:-1]
    keys = [line.split()[0] for line in lines]
    assert sorted(keys) == sorted(r.key for r in runs)  # each run once, none twice
    assert len({line.split()[1] for line in lines}) == 2  # both workers took runs
    assert all(is_done(r, tmp_path / "exp") for r in runs)
    assert not list((tmp_path / "exp").rglob("*.claim"))
    assert "51.5 ± 0.7 (2)" in text  # seeds 1 and 2: 0.51, 0.52
    # A second call finds nothing pending and runs nothing.
    run_experiment(cfg, workers=2, executor_factory=fake_adamix_executor)
    assert (tmp_path / "exp" / "executions.log").read_text().count("\n") == len(runs)


def test_experiment_skips_runs_claimed_by_a_live_process(tmp_path: Path) -> None:
    from adaptermix.adamix.experiment import plan_runs, work_through
    from adaptermix.claims import try_claim
    from helpers import fake_adamix_executor

    cfg = experiment_cfg(tmp_path, seeds=[1], default_tasks=["sst2"])
    runs = plan_runs(cfg)
    assert try_claim(runs[0].claim_path(tmp_path))  # "another worker" (this live process) holds run 0
    assert work_through(cfg, runs, fake_adamix_executor(cfg, ["sst2"])) == len(runs) - 1
    assert not runs[0].result_path(tmp_path).exists()


def test_experiment_rejects_zero_workers(tmp_path: Path) -> None:
    from adaptermix.adamix.experiment import run_experiment
    from adaptermix.errors import ConfigError

    with pytest.raises(ConfigError, match="workers"):
        run_experiment(experiment_cfg(tmp_path), workers=0)


def test_ablation_tables_keep_to_their_own_tasks(tmp_path: Path) -> None:
    """Tables 4 and 6 list the paper's five ablation tasks only, so their rows get an average."""
    from adaptermix.adamix.experiment import plan_runs, work_through, write_tables
    from helpers import fake_adamix_executor

    cfg = experiment_cfg(tmp_path, seeds=[1], default_tasks=["sst2", "cola"])
    runs = plan_runs(cfg)
    assert {r.task for r in runs if r.variant == "adamix-nocons"} == {"sst2"}  # not on CoLA
    work_through(cfg, runs, fake_adamix_executor(cfg, ["sst2", "cola"]))
    tables = write_tables(cfg).split("### ")
    assert "cola (" in tables[1] and "cola (" not in tables[3] and "cola (" not in tables[4]
    assert "| AdaMix-NoConsistencyLoss | 1k | **51.0 (1)** | 51.0 |" in tables[3]  # ties are all bold


def test_experiment_clears_stale_claims_of_dead_workers(tmp_path: Path) -> None:
    import socket
    import subprocess
    import sys

    from adaptermix.adamix.experiment import plan_runs, run_experiment
    from adaptermix.claims import try_claim
    from helpers import fake_adamix_executor

    cfg = experiment_cfg(tmp_path, seeds=[1], default_tasks=["sst2"])
    runs = plan_runs(cfg)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale, live = runs[0].claim_path(tmp_path), runs[1].claim_path(tmp_path)
    stale.parent.mkdir(parents=True)
    stale.write_text(f"{socket.gethostname()} {int(dead.stdout)}\n")  # a worker killed with SIGKILL
    assert try_claim(live)  # a live worker (this process) is still on run 1
    run_experiment(cfg, executor_factory=fake_adamix_executor)
    assert runs[0].result_path(tmp_path).is_file() and not stale.exists()
    assert live.exists() and not runs[1].result_path(tmp_path).exists()


def test_experiment_run_reuses_an_adapter_trained_with_the_same_key(tmp_path: Path, monkeypatch) -> None:
    """A run killed after training (before its result was written) reuses its adapter on the rerun: the
    training is resumed by the study pipeline's training key, the result is the same."""
    from adaptermix.adamix import runner
    from adaptermix.adamix.experiment import Run
    from adaptermix.data.config import DataConfig
    from adaptermix.data.schema import SPLITS
    from adaptermix.training.config import TrainRunConfig

    enc = tiny_encoder("bert")
    cfg = experiment_cfg(tmp_path, model={"max_length": 32}, inference={"modes": ["fixed"]})
    run_cfg = TrainRunConfig.model_validate(
        {
            "model": {"max_length": 32},
            "data": {"name": "toy_sentiment", "data_dir": str(PACK)},
            "method": {"name": "adamix", "bottleneck_size": 8, "adamix": {"num_experts": 2}},
            "train": {"epochs": 1, "batch_size": 8, "progress": False, "seed": 1},
            "output_dir": str(tmp_path / "adapters" / "adamix" / "toy_sentiment" / "seed1"),
            "eval_splits": ["test"],
        }
    )
    task = load_task(DataConfig(name="toy_sentiment", data_dir=str(PACK)), splits=SPLITS)
    assets = runner.Assets(enc, {"toy_sentiment": task}, {})
    run = Run("adamix", "toy_sentiment", 1, run_cfg, ("fixed",))
    first = runner.execute_run(run, assets, cfg)
    assert first["train_seconds"] is not None
    monkeypatch.setattr(runner, "train_adapter", lambda *a, **k: pytest.fail("trained again"))
    again = runner.execute_run(run, assets, cfg)
    assert again["train_seconds"] is None
    assert again["test"] == first["test"] and again["modes"] == first["modes"]
