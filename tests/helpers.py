"""Helpers shared by tests: write a small trained-looking adapter artefact on a tiny encoder."""

from __future__ import annotations

from pathlib import Path

import torch

from adaptermix.artefact import AdapterMeta, new_model, save_adapter, task_to_dict
from adaptermix.backbone.loading import Encoder
from adaptermix.data.schema import TaskInfo
from adaptermix.methods import MethodConfig
from adaptermix.model import HeadConfig

TOY_PACK = Path(__file__).parent / "data" / "pack"
TOY_SENTIMENT = TaskInfo("toy_sentiment", "single", "classification", ("negative", "positive"))


def toy_data(name: str = "toy_sentiment") -> dict:
    """The data config of a dataset of the tiny test data pack."""
    return {"name": name, "data_dir": str(TOY_PACK)}


def make_adapter(
    path: Path,
    encoder: Encoder,
    method: str = "pfeiffer",
    seed: int = 0,
    info: TaskInfo | None = None,
    scale: float = 0.1,
    data: dict | None = None,
    **method_kw: object,
) -> Path:
    """A random (seeded) adapter artefact; ``info`` defaults to a binary task named after the folder.

    ``data`` (a DataConfig mapping) is recorded as the adapter's training data, which is what sweeps
    evaluate a target on.
    """
    info = info or TaskInfo(path.name, "single", "classification", ("neg", "pos"))
    mcfg = MethodConfig(name=method, bottleneck_size=8, rank=2, **method_kw)
    model = new_model(encoder, mcfg, HeadConfig(), info)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in list(model.body.parameters()) + list(model.head.parameters()):
            p.copy_(torch.randn(p.shape, generator=gen) * scale)
    meta = AdapterMeta(method=mcfg.model_dump(mode="json"), head=HeadConfig().model_dump(),
                       base_model=AdapterMeta.describe_base(encoder), task=task_to_dict(info),
                       training={"data": data, "max_length": 32} if data is not None else None)
    state = model.trainable_state()
    model.detach_body()
    return save_adapter(path, state, meta)


def save_tiny_model(path: Path, arch: str = "bert") -> Path:
    """Save a tiny random-init encoder and its tokenizer to ``path`` (for code that loads by path)."""
    from tiny import tiny_encoder

    tiny = tiny_encoder(arch)
    tiny.model.save_pretrained(path)
    tiny.tokenizer.save_pretrained(path)
    return path


def kill_first_actor(ray: object, killed: list[int]):
    """An ``on_workers`` callback for the Ray backends that SIGKILLs the first actor as soon as it is up.

    ``pid()`` is submitted here, before the backend submits any work, and an actor runs its calls in
    order: when it answers, the actor holds (or is about to start) its first piece of work with more
    queued behind it. No sleep before the kill: fast work could all finish first.
    """
    import os
    import signal
    import threading

    def on_workers(actors: list) -> None:
        ref = actors[0].pid.remote()

        def kill() -> None:
            pid = ray.get(ref)  # type: ignore[attr-defined]
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

        threading.Thread(target=kill, daemon=True).start()

    return on_workers


def fake_adamix_executor(cfg, tasks):
    """An AdaMix-experiment executor that trains nothing: it logs (run key, pid) to ``executions.log``
    under the output folder, sleeps briefly so that parallel workers interleave, and returns a result."""
    import os
    import time

    log = Path(cfg.output_dir) / "executions.log"

    def execute(run):
        with open(log, "a", encoding="utf-8") as fh:  # O_APPEND: whole short lines from any process
            fh.write(f"{run.key} {os.getpid()}\n")
        time.sleep(0.3)
        return {
            "variant": run.variant,
            "task": run.task,
            "seed": run.seed,
            "metric": "accuracy",
            "test": {"accuracy": 0.5 + 0.01 * run.seed},
            "params_trained": 1000,
            "params_inference": 1000,
            "modes": {m: {"accuracy": 0.5} for m in run.modes},
        }

    return execute
