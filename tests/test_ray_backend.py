"""The Ray backend on a local Ray instance: same store as the local backend; a killed worker is survived."""

from __future__ import annotations

import pytest
import yaml

from adaptermix.backbone import load_encoder
from adaptermix.sweep.runner import run_sweep
from adaptermix.sweep.spec import load_spec
from adaptermix.sweep.store import ResultsStore
from helpers import TOY_SENTIMENT, kill_first_actor, make_adapter, toy_data
from tiny import tiny_encoder

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.ray
NAMES = ["alpha", "beta", "gamma", "delta"]


@pytest.fixture(scope="module")
def spec_file(tmp_path_factory):
    root = tmp_path_factory.mktemp("raysweep")
    tiny = tiny_encoder("bert")
    tiny.model.save_pretrained(root / "model")
    tiny.tokenizer.save_pretrained(root / "model")
    enc = load_encoder(str(root / "model"))  # workers load the encoder by this path
    assert enc.fingerprint == tiny.fingerprint
    for i, n in enumerate(NAMES):
        make_adapter(root / "pool" / n, enc, seed=i, scale=0.3, info=TOY_SENTIMENT, data=toy_data())
    spec = {"pool": [f"pool/{n}" for n in NAMES], "evaluations": ["clean", "fgsm"], "subsets": {"generator": "all"}}
    (root / "spec.yaml").write_text(yaml.safe_dump(spec))
    return root / "spec.yaml", enc


def _table(store):
    with ResultsStore(store, readonly=True) as s:
        return {r["key"]: (r["metric"], r["mean_pairwise_fsd"], r["target_sign_change"]) for r in s.rows()}


def test_ray_backend_equals_local(local_ray, spec_file, tmp_path):
    from adaptermix.sweep.ray_backend import ray_backend

    path, enc = spec_file
    spec = load_spec(path)
    run_sweep(spec, tmp_path / "local.sqlite", encoder=enc, progress=False)
    run_sweep(spec, tmp_path / "ray.sqlite", encoder=enc, progress=False, backend=ray_backend(workers=2))
    local, remote = _table(tmp_path / "local.sqlite"), _table(tmp_path / "ray.sqlite")
    assert len(local) == 4 * 8 * 2 and set(local) == set(remote)
    for key, (m, f, s) in local.items():
        rm, rf, rs = remote[key]
        assert rm == pytest.approx(m, abs=1e-9) and rs == pytest.approx(s)
        assert (rf is None and f is None) or rf == pytest.approx(f)


def test_killed_worker_is_replaced_and_nothing_is_lost(local_ray, spec_file, tmp_path):
    from adaptermix.sweep.ray_backend import ray_backend

    path, enc = spec_file
    spec = load_spec(path)
    killed = []

    kill_one = kill_first_actor(ray, killed)
    backend = ray_backend(workers=2, groups_per_batch=1, in_flight_per_worker=1, on_workers=kill_one)
    summary = run_sweep(spec, tmp_path / "r.sqlite", encoder=enc, progress=False, backend=backend)
    assert killed, "the test must have killed a worker"
    rows = _table(tmp_path / "r.sqlite")
    assert summary.ran == len(rows) == 64
    with ResultsStore(tmp_path / "r.sqlite", readonly=True) as s:
        assert s.integrity_check() == "ok"
