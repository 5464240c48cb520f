"""kill -9 a running ``adaptermix sweep`` at 5 seeded random moments, resume each time, and finish: the
store equals an uninterrupted run's (same keys, same metrics), with no duplicate, no gap, a sound file.

Local backend and Ray backend (a local Ray instance started by the CLI inside the killed process; the
driver is SIGKILLed, and whatever it leaves behind is reaped by session id).
"""

from __future__ import annotations

import json

import pytest

from reliability.harness import (
    child_env,
    compare_stores,
    ray_tmpdir,
    session_processes,
    sweep_command,
    sweep_with_kills,
)

KILLS = 5


def _check(case, store, run) -> None:
    assert run.kills == KILLS, f"only {run.kills} kills landed before the sweep finished"
    assert len(set(run.counts_at_kill)) == KILLS and run.counts_at_kill == sorted(run.counts_at_kill)
    assert run.integrity_at_kill == ["ok"] * KILLS
    summary = json.loads(run.final_stdout[run.final_stdout.index("{") :])
    assert summary["trials"] == case.total and summary["already_done"] + summary["ran"] == case.total
    assert summary["already_done"] >= run.counts_at_kill[-1] > 0
    diff = compare_stores(case.reference, store)
    assert diff.ok, diff
    assert (diff.trials, diff.duplicates, diff.gaps, diff.lost) == (case.total, 0, 0, 0)


def test_kill_resume_local(sweep_case, tmp_path):
    store = tmp_path / "killed.sqlite"
    cmd = sweep_command(sweep_case.spec, store)
    run = sweep_with_kills(cmd, store, sweep_case.total, KILLS, seed=7, env=child_env())
    _check(sweep_case, store, run)
    assert run.attempts == KILLS + 1


@pytest.mark.ray
def test_kill_resume_ray(large_sweep_case, tmp_path):
    pytest.importorskip("ray")
    case = large_sweep_case
    store = tmp_path / "killed-ray.sqlite"
    cmd = sweep_command(case.spec, store, backend="ray")
    with ray_tmpdir() as ray_tmp:
        run = sweep_with_kills(cmd, store, case.total, KILLS, seed=11, env=child_env(ray_tmp), jitter_s=0.1)
        assert list((ray_tmp / "ray").glob("session_*")), "the sweep did not start a local Ray"
        assert not any(session_processes(pid) for pid in run.sessions), "Ray processes outlived the test"
    _check(case, store, run)
