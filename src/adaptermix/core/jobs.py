"""The one resumable grid engine: plan jobs, skip the done ones, claim, execute, record; worker processes.

Every grid of runs in the package goes through here: a study's adapter trainings
(:func:`adaptermix.pipeline.train_stage.local_trainer`) and the AdaMix GLUE experiment
(:mod:`adaptermix.adamix.experiment`). A grid says, through a :class:`JobGrid`, how to tell that a job
is done (its recorded result carries the job's key: a hash of everything that determines it, so a
changed config re-runs exactly the affected jobs), where a job's claim file lives, how to execute a job
and how to record its result. :func:`work_through` then walks a pending list:

1. skip a job that is done (finished meanwhile by another process);
2. take its claim (:mod:`adaptermix.core.claims`; a live claim of another process: skip it, or with
   ``wait_for_others`` come back to it until it is done or its claim is gone);
3. check again that it is not done (another process may have finished and released it in between),
   execute it and record its result while the claim is held, then release the claim.

Several processes over one folder (two invocations, or the ``workers`` spawned by :func:`run_workers`)
therefore never run a job twice, and a killed one loses at most the job it was running (records are
written atomically by the grid; claims of dead processes are stale and taken over, see
:func:`clear_stale_claims`).
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from adaptermix.core.claims import claimed, is_stale
from adaptermix.core.errors import AdapterMixError

J = TypeVar("J")
R = TypeVar("R")

#: ``on_done(position, job, result, seconds)``: called after each job this process ran and recorded
#: (``position`` is 1-based in the pending list).
OnDone = Callable[[int, J, R, float], None]


@dataclass(frozen=True)
class JobGrid(Generic[J, R]):
    """How one grid's jobs are found done, claimed, executed and recorded.

    ``record`` runs while the claim is held and must write atomically (or be a no-op when ``execute``
    itself writes the job's result atomically, as training does with its artefact).
    """

    is_done: Callable[[J], bool]
    claim_path: Callable[[J], Path]
    execute: Callable[[J], R]
    record: Callable[[J, R], None]


def work_through(
    jobs: Sequence[J],
    grid: JobGrid[J, R],
    on_done: OnDone[J, R] | None = None,
    wait_for_others: bool = False,
    poll_s: float = 5.0,
) -> int:
    """Execute each of ``jobs`` that is not done and not claimed by another live process; returns how
    many ran here. With ``wait_for_others``, jobs claimed elsewhere are revisited every ``poll_s``
    seconds until each is done (by its claimant) or free again (then run here)."""
    ran = 0
    remaining = list(enumerate(jobs, 1))
    while remaining:
        held_elsewhere = []
        for position, job in remaining:
            if grid.is_done(job):
                continue
            with claimed(grid.claim_path(job)) as mine:
                if not mine:
                    held_elsewhere.append((position, job))
                    continue
                if grid.is_done(job):
                    continue
                t0 = time.perf_counter()
                result = grid.execute(job)
                grid.record(job, result)
            ran += 1
            if on_done is not None:
                on_done(position, job, result, time.perf_counter() - t0)
        if not wait_for_others or not held_elsewhere:
            break
        time.sleep(poll_s)
        remaining = held_elsewhere
    return ran


def clear_stale_claims(claims: Iterable[Path]) -> list[Path]:
    """Remove the claims among ``claims`` whose process died (killed with SIGKILL, say); returns them."""
    stale = [p for p in sorted(claims) if is_stale(p)]
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def worker_threads(workers: int) -> int:
    """Torch threads for each of ``workers`` processes sharing this machine: 1/N of this process's."""
    import torch

    return max(1, torch.get_num_threads() // workers)


def enter_worker(threads: int) -> None:
    """Start of a spawned worker: use ``threads`` torch threads (and say so to its children)."""
    import torch

    os.environ["ADAPTERMIX_THREADS"] = str(threads)
    torch.set_num_threads(threads)


def run_workers(target: Callable[..., None], args: Sequence[tuple[Any, ...]], label: str) -> None:
    """Run ``target(*a)`` for each ``a`` of ``args`` in its own spawned process and wait for all of them.

    ``target`` must be a module-level function (spawned processes receive it by pickling) that walks the
    grid with :func:`work_through`, so the workers share it through claims. Ctrl-C terminates every
    worker (each releases its claim: run the worker's body under
    :func:`adaptermix.core.signals.exit_on_sigterm`); a worker that failed is named in the error, and what the
    others finished is kept.
    """
    ctx = multiprocessing.get_context("spawn")  # no fork of a process holding torch threads
    procs = [ctx.Process(target=target, args=a, name=f"{label}-w{i + 1}") for i, a in enumerate(args)]
    for p in procs:
        p.start()
    try:
        for p in procs:
            p.join()
    except KeyboardInterrupt:
        for p in procs:  # Ctrl-C reached the workers too (same process group); make sure they are gone
            p.terminate()
            p.join()
        raise
    failed = [p.name or "" for p in procs if p.exitcode != 0]
    if failed:
        raise AdapterMixError(
            f"{', '.join(failed)} failed (see the messages above); finished runs are kept, rerun to resume"
        )
