"""Helpers shared by tests: write a small trained-looking adapter artefact on a tiny encoder.

The toy data and adapters are re-exported from :mod:`adaptermix.testing` (shared with ``bench/soak.py``);
the Ray and AdaMix test doubles below are the tests' own."""

from __future__ import annotations

from pathlib import Path

from adaptermix.testing.tiny import save_tiny_model
from adaptermix.testing.toy import TOY_PACK, TOY_SENTIMENT, make_adapter, toy_data

__all__ = ["TOY_PACK", "TOY_SENTIMENT", "fake_adamix_executor", "kill_first_actor", "make_adapter",
           "save_tiny_model", "toy_data"]


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
