"""The one resumable grid engine (adaptermix.jobs): done jobs skipped, claims respected, waits for others."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from adaptermix.claims import release, try_claim
from adaptermix.jobs import JobGrid, clear_stale_claims, work_through


def file_grid(root: Path, ran: list[str]) -> JobGrid[str, str]:
    """Jobs are names; done = ``<name>.out`` exists; executing one records its name in ``ran``."""

    def execute(job: str) -> str:
        ran.append(job)
        return job.upper()

    def record(job: str, result: str) -> None:
        (root / f"{job}.out").write_text(result)

    return JobGrid(lambda j: (root / f"{j}.out").is_file(), lambda j: root / f"{j}.claim", execute, record)


def test_work_through_runs_each_pending_job_once_and_resumes(tmp_path: Path) -> None:
    ran: list[str] = []
    seen: list[tuple[int, str, str]] = []
    grid = file_grid(tmp_path, ran)
    (tmp_path / "b.out").write_text("B")  # finished by an earlier run
    assert work_through(["a", "b", "c"], grid, on_done=lambda i, j, r, s: seen.append((i, j, r))) == 2
    assert ran == ["a", "c"] and seen == [(1, "a", "A"), (3, "c", "C")]
    assert (tmp_path / "c.out").read_text() == "C" and not list(tmp_path.glob("*.claim"))
    assert work_through(["a", "b", "c"], grid) == 0  # a rerun finds everything done


def test_work_through_skips_or_waits_for_jobs_claimed_elsewhere(tmp_path: Path) -> None:
    ran: list[str] = []
    grid = file_grid(tmp_path, ran)
    claim = tmp_path / "a.claim"
    assert try_claim(claim)  # "another process" (this live one) holds job a
    assert work_through(["a", "b"], grid) == 1 and ran == ["b"]

    def other_finishes() -> None:
        time.sleep(0.2)
        (tmp_path / "a.out").write_text("A (other)")
        release(claim)

    worker = threading.Thread(target=other_finishes)
    worker.start()
    assert work_through(["a", "b"], grid, wait_for_others=True, poll_s=0.05) == 0
    worker.join()
    assert ran == ["b"] and (tmp_path / "a.out").read_text() == "A (other)"  # waited, did not run it


def test_clear_stale_claims_keeps_live_ones(tmp_path: Path) -> None:
    import socket
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale, live = tmp_path / "x.claim", tmp_path / "y.claim"
    stale.write_text(f"{socket.gethostname()} {int(dead.stdout)}\n")
    assert try_claim(live)
    assert clear_stale_claims(tmp_path.glob("*.claim")) == [stale]
    assert live.exists() and not stale.exists()
