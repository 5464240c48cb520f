"""Ray backend for sweeps: long-lived actors evaluate batches of mixtures; the driver alone writes the store.

Each actor (one per GPU when the cluster has GPUs, else one per ``cpus_per_worker`` CPUs) builds a
:class:`~adaptermix.sweep.runner.SweepContext` once — encoder, adapter pool, live model, tokenised
evaluation sets — and then evaluates groups of trials (mixtures) it is sent. Results stream back to the
driver, which records them in the SQLite store exactly as the local backend does, so resume, dedup and
atomicity are unchanged.

Nothing on the workers needs the driver's files: the pool's artefact files and each target's evaluation
rows are shipped through Ray's object store, so a cluster without a shared filesystem works. The encoder is
loaded on each worker by name (the packaged MiniLM offline, or the hub).

Faults: actors are created with ``max_restarts=-1`` and ``max_task_retries=-1``, so a worker process that
dies is restarted (re-running its set-up) and its in-flight batches are retried; trials are keyed, so a
batch evaluated twice is still stored once.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from adaptermix.core.raycluster import ActorPlan, import_ray, init_ray, pack_tree, unpack_tree
from adaptermix.sweep.context import SweepContext, evaluate_group
from adaptermix.sweep.runner import Backend
from adaptermix.sweep.spec import SweepSpec, Trial
from adaptermix.sweep.store import TrialResult


class _Worker:
    """Actor body: set up once, then evaluate groups of trials."""

    def __init__(self, spec_json: dict[str, Any], pool_files: dict[str, dict[str, bytes]],
                 examples: dict[str, list[Any]], threads: int | None) -> None:
        import torch

        if threads:
            torch.set_num_threads(threads)
        self._tmp = tempfile.TemporaryDirectory(prefix="adaptermix-worker-")
        pool = {}
        for name, files in pool_files.items():
            d = Path(self._tmp.name) / name
            unpack_tree(files, d)
            pool[name] = str(d)
        spec = SweepSpec.model_validate({**spec_json, "pool": pool})
        self.ctx = SweepContext.prepare(spec, examples=examples)

    def pid(self) -> int:
        return os.getpid()

    def run(self, groups: list[list[Trial]]) -> list[list[TrialResult]]:
        return [evaluate_group(self.ctx, g) for g in groups]


def ray_backend(
    address: str | None = None,
    workers: int | None = None,
    groups_per_batch: int = 4,
    cpus_per_worker: int = 2,
    in_flight_per_worker: int = 2,
    on_workers: Callable[[list[Any]], None] | None = None,
) -> Backend:
    """A :data:`Backend` that spreads groups of trials over Ray actors (``address`` None: a local Ray)."""
    ray = import_ray()

    def backend(ctx: SweepContext, groups: list[list[Trial]], sink: Callable[[list[TrialResult]], None]) -> None:
        if not groups:
            return
        init_ray(ray, address)
        plan = ActorPlan.for_cluster(ray, len(groups), workers, cpus_per_worker)
        actor_cls = ray.remote(**plan.options)(_Worker)
        targets = sorted({t.target for g in groups for t in g})
        examples = {t: ctx.eval_set(t).examples for t in targets}
        pool_files = {n_: pack_tree(p) for n_, p in ctx.spec.pool_dirs().items()}
        spec_json = ctx.spec.model_dump(mode="json")
        refs = (ray.put(spec_json), ray.put(pool_files), ray.put(examples))
        actors = [actor_cls.remote(*refs, plan.threads) for _ in range(plan.count)]
        if on_workers is not None:
            on_workers(actors)
        batches = [groups[i : i + groups_per_batch] for i in range(0, len(groups), groups_per_batch)]
        pending: dict[Any, int] = {}
        queue = list(range(len(batches)))
        load = {i: 0 for i in range(len(actors))}
        owner: dict[Any, int] = {}

        def submit() -> None:
            for a in sorted(load, key=load.__getitem__):
                while queue and load[a] < in_flight_per_worker:
                    b = queue.pop(0)
                    ref = actors[a].run.remote(batches[b])
                    pending[ref] = b
                    owner[ref] = a
                    load[a] += 1

        submit()
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                b = pending.pop(ref)
                load[owner.pop(ref)] -= 1
                try:
                    results = ray.get(ref)
                except ray.exceptions.RayActorError:
                    queue.append(b)  # the actor died for good: re-queue its batch on the others
                    continue
                for group_results in results:
                    sink(group_results)
            submit()
        for a in actors:
            ray.kill(a)

    return backend
