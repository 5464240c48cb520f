"""Train a study's adapters on Ray: long-lived actors each load the encoder once and train jobs they are sent.

The driver plans the jobs (skipping finished artefacts exactly as the local trainer does), loads each job's
dataset and ships the rows with the job, so workers need neither the data pack nor the driver's disk. A
worker trains into a scratch folder and returns the artefact's files as bytes; the driver alone writes
them, atomically, to the study folder — so a killed driver loses at most the jobs in flight and a rerun
retrains only those (artefacts are matched by config hash). Actors restart when their process dies and
their in-flight jobs are retried; training is seeded, so a retried job writes the same artefact.

One actor per GPU when the cluster has GPUs (the encoder then loads on that GPU: see
:mod:`adaptermix.core.device`), else one per ``cpus_per_worker`` CPUs.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from adaptermix.core.errors import AdapterMixError, ResourceError
from adaptermix.core.raycluster import ActorPlan, import_ray, init_ray, pack_tree, write_dirs_atomically
from adaptermix.data import load_task
from adaptermix.data.schema import TaskData
from adaptermix.pipeline.train_stage import Trainer, TrainJob


def _splits(job: TrainJob) -> tuple[str, ...]:
    return tuple(dict.fromkeys(("train", "validation", *job.run.eval_splits)))


class _TrainWorker:
    """Actor body: load the encoder once, then train one job per call."""

    def __init__(self, model_name: str, threads: int | None, precision: str | None = None) -> None:
        import torch

        from adaptermix.backbone.loading import load_encoder

        if threads:
            torch.set_num_threads(threads)
        self.encoder = load_encoder(model_name, precision=precision)

    def device(self) -> str:
        return str(self.encoder.device)

    def pid(self) -> int:
        import os

        return os.getpid()

    def train(self, job: TrainJob, task: TaskData) -> tuple[dict[str, bytes], dict[str, dict[str, float]]]:
        from adaptermix.training.run import train_adapter

        with tempfile.TemporaryDirectory(prefix="adaptermix-train-") as scratch:
            # Train into scratch/<domain>; a method may write siblings (AdaMix: <domain>-merged).
            result = train_adapter(job.run, encoder=self.encoder, task=task, config_hash=job.config_hash,
                                   write_to=Path(scratch) / job.path.name)
            return pack_tree(Path(scratch)), result.metrics


def ray_trainer(
    model_name: str,
    address: str | None = None,
    workers: int | None = None,
    cpus_per_worker: int = 2,
    on_workers: Callable[[list[Any]], None] | None = None,
    progress: bool = True,
) -> Trainer:
    """A :data:`~adaptermix.pipeline.train_stage.Trainer` that spreads jobs over Ray actors."""
    from tqdm.auto import tqdm

    ray = import_ray()

    def trainer(jobs: list[TrainJob], done: Callable[[TrainJob, dict[str, dict[str, float]]], None]) -> None:
        if not jobs:
            return
        init_ray(ray, address)
        plan = ActorPlan.for_cluster(ray, len(jobs), workers, cpus_per_worker)
        actor_cls = ray.remote(**plan.options)(_TrainWorker)
        precision = jobs[0].run.model.precision  # one study, one model config: every job shares it
        actors = [actor_cls.remote(model_name, plan.threads, precision) for _ in range(plan.count)]
        if on_workers is not None:
            on_workers(actors)
        queue = list(range(len(jobs)))
        pending: dict[Any, tuple[int, int]] = {}  # ref -> (job index, actor index)
        idle = list(range(len(actors)))
        bar = tqdm(total=len(jobs), desc=f"train adapters on Ray ({plan.count} actors)", unit="adapter",
                   disable=not progress)

        def submit() -> None:
            while queue and idle:
                j, a = queue.pop(0), idle.pop(0)
                task = load_task(jobs[j].run.data, splits=_splits(jobs[j]))
                pending[actors[a].train.remote(jobs[j], task)] = (j, a)

        try:
            submit()
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                for ref in ready:
                    j, a = pending.pop(ref)
                    idle.append(a)
                    try:
                        files, metrics = ray.get(ref)
                    except ray.exceptions.RayActorError:
                        queue.append(j)  # the actor is gone for good: another one trains the job
                        idle.remove(a)
                        continue
                    except ray.exceptions.RayTaskError as exc:  # e.g. bad data: the worker's one-line error
                        cause = getattr(exc, "cause", None)
                        if isinstance(cause, AdapterMixError):
                            raise cause from None
                        raise
                    write_dirs_atomically(files, jobs[j].path.parent)
                    done(jobs[j], metrics)
                    bar.set_postfix_str(f"{jobs[j].label}/{jobs[j].domain}")
                    bar.update(1)
                if not idle and not pending and queue:
                    raise ResourceError(f"every Ray training worker died; {len(queue)} adapter(s) not trained")
                submit()
        finally:
            bar.close()
            for actor in actors:
                ray.kill(actor)

    return trainer
