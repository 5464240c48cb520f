"""Training a study's adapters on Ray: same artefacts as local training; a killed worker is survived."""

from __future__ import annotations

import pytest
import yaml
from safetensors.torch import load_file

from adaptermix.config import load_config
from adaptermix.pipeline.config import StudyConfig
from adaptermix.pipeline.train_stage import plan_training, train_all
from helpers import TOY_PACK, kill_first_actor, save_tiny_model

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.ray
DOMAINS = ["toy_sentiment", "toy_nli", "toy_sts"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("raytrain") / "model")


def _study(root, model_dir, name):
    cfg = {
        "name": name,
        "output_dir": str(root / name),
        "model": {"name": str(model_dir), "max_length": 32},
        "data": {"data_dir": str(TOY_PACK), "max_train": 48, "max_validation": 8},
        "domains": DOMAINS,
        "methods": [{"name": "pfeiffer", "bottleneck_size": 4}, {"name": "lora", "rank": 2}],
        "train": {"epochs": 2, "batch_size": 8, "progress": False},
    }
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return load_config(StudyConfig, path)


def _weights(adapters):
    return {(a.method, a.domain): load_file(str(a.path / "adapter.safetensors")) for a in adapters}


def _assert_same(local, remote):
    assert set(local) == set(remote) and len(local) == 6
    for key, tensors in local.items():
        assert tensors.keys() == remote[key].keys()
        for name, t in tensors.items():
            assert (t - remote[key][name]).abs().max().item() < 1e-5, (key, name)


def test_ray_training_equals_local_and_is_reused(local_ray, model_dir, tmp_path):
    from adaptermix.pipeline.ray_train import ray_trainer

    local = train_all(_study(tmp_path, model_dir, "local"), progress=False)
    cfg = _study(tmp_path, model_dir, "ray")
    remote = train_all(cfg, trainer=ray_trainer(cfg.model.name, workers=2, progress=False))
    assert [(a.method, a.domain) for a in remote] == [(a.method, a.domain) for a in local]
    assert not any(a.reused for a in remote)
    _assert_same(_weights(local), _weights(remote))
    for a in remote:  # the driver wrote each artefact where the local trainer would, with its config
        saved = yaml.safe_load((a.path / "config.yaml").read_text())
        assert saved["output_dir"] == str(a.path)
    jobs, finished = plan_training(cfg)
    assert len(finished) == len(jobs) == 6  # a rerun trains nothing


def test_killed_training_worker_is_replaced(local_ray, model_dir, tmp_path):
    from adaptermix.pipeline.ray_train import ray_trainer

    killed = []

    kill_one = kill_first_actor(ray, killed)
    local = train_all(_study(tmp_path, model_dir, "local"), progress=False)
    cfg = _study(tmp_path, model_dir, "ray")
    remote = train_all(cfg, trainer=ray_trainer(cfg.model.name, workers=2, on_workers=kill_one, progress=False))
    assert killed, "the test must have killed a worker"
    _assert_same(_weights(local), _weights(remote))
    assert not [p for p in (tmp_path / "ray" / "adapters").rglob("*.tmp")]  # no half-written artefact
