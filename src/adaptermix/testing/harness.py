"""Fault-injection harness shared by the reliability tests (``tests/reliability/harness.py`` re-exports it)
and ``bench/soak.py``.

It builds a sweep on a tiny random-init BERT saved to disk (so a child process can load it by path, as a
Ray worker would), runs ``python -m adaptermix sweep`` as a real child process, kills it with SIGKILL at
seeded random moments, resumes it, and compares the final store with an uninterrupted run's.

Each child runs in its own session (``start_new_session``), so everything it starts — a local Ray head
(GCS, raylet, dashboard and runtime-env agents) and Ray's worker processes included — can be found by
session id and killed by pid afterwards, without touching any other process on the machine (a broad
``ray stop --force`` would also stop other people's Ray instances).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from adaptermix.backbone.loading import Encoder, load_encoder
from adaptermix.core.errors import AdapterMixError
from adaptermix.core.hashing import short_hash
from adaptermix.sweep.store import ResultsStore
from adaptermix.testing.tiny import save_encoder, tiny_encoder
from adaptermix.testing.toy import TOY_SENTIMENT, make_adapter, toy_data

POOL_NAMES = ("alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta")
#: Float columns compared between stores (the trial content itself is compared through the key).
METRIC_COLUMNS = ("metric", "mean_pairwise_fsd", "target_sign_change")


# ------------------------------------------------------------------------------------------ set-up


def save_tiny_bert(root: Path) -> tuple[Path, Encoder]:
    """Save the tiny BERT + tokenizer under ``root/model`` and load it back by path (as children do)."""
    tiny = tiny_encoder("bert")
    path = save_encoder(tiny, root / "model")
    encoder = load_encoder(str(path))
    assert encoder.fingerprint == tiny.fingerprint, "the saved tiny model must reload bit for bit"
    return path, encoder


def make_sweep(
    root: Path,
    encoder: Encoder,
    n_adapters: int = 5,
    evaluations: Sequence[str] = ("clean", "fgsm"),
    **spec: Any,
) -> Path:
    """A pool of ``n_adapters`` seeded adapters on the toy sentiment data and a sweep spec over every subset.

    ``n`` adapters, ``all`` subsets and ``e`` evaluations expand to ``n * 2**(n-1) * e`` trials
    (5 adapters, clean + FGSM: 160 trials in 80 mixtures).
    """
    names = POOL_NAMES[:n_adapters]
    for i, name in enumerate(names):
        make_adapter(root / "pool" / name, encoder, seed=i, scale=0.3, info=TOY_SENTIMENT, data=toy_data())
    body = {
        "pool": [f"pool/{n}" for n in names],
        "evaluations": list(evaluations),
        "subsets": {"generator": "all"},
        "fgsm": {"epsilon": 0.05},
        **spec,
    }
    path = root / "spec.yaml"
    path.write_text(yaml.safe_dump(body), encoding="utf-8")
    return path


def child_env(ray_tmp: Path | None = None) -> dict[str, str]:
    """Environment of a child ``adaptermix``: one thread, offline, quiet; a private, bounded local Ray.

    ``RAY_OVERRIDE_RESOURCES`` bounds the local Ray instance the CLI starts with ``ray.init()`` (1 CPU, so
    one actor with one thread; a 200 MB object store); ``RAY_TMPDIR`` gives it its own session folder, so
    it never attaches to another Ray instance on the machine; usage statistics stay off (no network).
    """
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "ADAPTERMIX_THREADS": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TRANSFORMERS_VERBOSITY": "error",
        "PYTHONUNBUFFERED": "1",
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_OVERRIDE_RESOURCES": json.dumps({"CPU": 1, "object_store_memory": 200 * 1024**2}),
    }
    env.pop("RAY_ADDRESS", None)
    if ray_tmp is not None:
        env["RAY_TMPDIR"] = str(ray_tmp)
    return env


@contextlib.contextmanager
def ray_tmpdir() -> Iterator[Path]:
    """A short private folder for a local Ray (its socket paths must stay under ~100 characters)."""
    with tempfile.TemporaryDirectory(prefix="amray", dir="/tmp") as tmp:
        yield Path(tmp)


def sweep_command(spec: Path, store: Path, backend: str = "local", extra: Sequence[str] = ()) -> list[str]:
    cmd = [sys.executable, "-m", "adaptermix", "sweep", str(spec), "--store", str(store), "--no-progress"]
    if backend == "ray":
        cmd += ["--backend", "ray", "--workers", "1"]
    return cmd + list(extra)


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run a block with ``n`` torch threads (the children use one), then restore the previous number."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# ---------------------------------------------------------------------------------------- processes


def _session_of(pid: int) -> tuple[int, str] | None:
    """(session id, state) of a process, or None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[3]), fields[0]


def session_processes(sid: int) -> list[int]:
    """Live (non-zombie) processes of session ``sid``."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            info = _session_of(int(entry.name))
            if info is not None and info[0] == sid and info[1] != "Z":
                out.append(int(entry.name))
    return out


def kill_session(proc: subprocess.Popen, timeout: float = 30.0) -> int:
    """SIGKILL the child, then every process left in its session (Ray's head and workers); returns how
    many leftovers there were. Only processes of the session this harness created are touched."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    leftovers: set[int] = set()
    deadline = time.monotonic() + timeout
    while pids := session_processes(proc.pid):
        leftovers.update(pids)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if time.monotonic() > deadline:
            raise RuntimeError(f"processes of session {proc.pid} survive SIGKILL: {pids}")
        time.sleep(0.1)
    return len(leftovers)


def count_trials(store: Path) -> int:
    """Rows in the store's ``trials`` table (0 while it does not exist yet); a read-only reader."""
    try:
        with ResultsStore(store, readonly=True) as s:
            return s.count()
    except AdapterMixError:
        if store.exists():
            raise
        return 0


def store_integrity(store: Path) -> str:
    """``PRAGMA integrity_check`` of the store (``"ok"``, or ``"missing"`` before it exists)."""
    if not store.exists():
        return "missing"
    with ResultsStore(store, readonly=True) as s:
        return s.integrity_check()


@dataclass
class FaultRun:
    """What :func:`sweep_with_kills` did."""

    kills: int = 0
    attempts: int = 0
    leftovers: int = 0  # processes (Ray head, workers) that outlived a killed driver and were reaped
    counts_at_kill: list[int] = field(default_factory=list)
    integrity_at_kill: list[str] = field(default_factory=list)  # PRAGMA integrity_check right after each kill
    sessions: list[int] = field(default_factory=list)  # session ids of every child started
    seconds: float = 0.0
    final_stdout: str = ""


def _tail(fh: Any, limit: int = 2000) -> str:
    fh.seek(0)
    return fh.read().decode("utf-8", "replace")[-limit:]


def sweep_with_kills(
    cmd: Sequence[str],
    store: Path,
    total: int,
    kills: int,
    seed: int,
    env: dict[str, str],
    jitter_s: float = 0.2,
    timeout_s: float = 300.0,
) -> FaultRun:
    """Run ``cmd`` (a sweep into ``store`` of ``total`` trials), SIGKILL it ``kills`` times, resume, finish.

    The kill moments are seeded and spread over the run: attempt ``i`` is killed once the store holds a
    random number of new trials, drawn from the next ``1/(k+1)`` of the trials still to run (``k`` kills
    still to inject), plus a random 0..``jitter_s`` delay, so a kill lands mid-mixture, mid-commit or
    while results are in flight from Ray workers. Every attempt records at least one new trial before it
    is killed, so the run always makes progress; the share left for later kills absorbs the overshoot
    between reaching the goal and the kill (the Ray driver records whole batches at once). Each attempt
    has ``timeout_s`` to make its progress or finish.
    """
    rng = random.Random(seed)
    run = FaultRun()
    started = time.monotonic()
    while True:
        before = count_trials(store)
        run.attempts += 1
        deadline = time.monotonic() + timeout_s
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            proc = subprocess.Popen(list(cmd), env=env, stdout=out, stderr=err, start_new_session=True)
            run.sessions.append(proc.pid)
            try:
                if run.kills < kills:
                    share = max(1, (total - before) // (kills - run.kills + 1))
                    goal = before + 1 + rng.randrange(share)
                    while proc.poll() is None and count_trials(store) < goal:
                        if time.monotonic() > deadline:
                            raise TimeoutError(f"no progress to {goal} trials within {timeout_s:.0f} s")
                        time.sleep(0.05)
                    if proc.poll() is None:
                        time.sleep(rng.uniform(0.0, jitter_s))
                        run.leftovers += kill_session(proc)
                        run.kills += 1
                        run.counts_at_kill.append(count_trials(store))
                        run.integrity_at_kill.append(store_integrity(store))
                        continue
                else:
                    proc.wait(timeout=timeout_s)
                run.leftovers += kill_session(proc)  # reap anything a finished driver left behind
                if proc.returncode != 0:
                    raise RuntimeError(f"sweep exited {proc.returncode}: {_tail(err)}")
                run.final_stdout = _tail(out, 100_000)
                break
            except BaseException:
                kill_session(proc)
                raise
    run.seconds = time.monotonic() - started
    return run


# ------------------------------------------------------------------------------------------ stores


def _close(a: Any, b: Any, tol: float) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=tol, abs_tol=tol)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k], tol) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y, tol) for x, y in zip(a, b, strict=True))
    return a == b


def same_result(a: dict[str, Any], b: dict[str, Any], tol: float = 1e-9) -> bool:
    """Two ``trials`` rows hold the same trial and the same numbers (up to ``tol``)."""
    return (
        a["trial_json"] == b["trial_json"]
        and a["metric_name"] == b["metric_name"]
        and a["n_examples"] == b["n_examples"]
        and all(_close(a[c], b[c], tol) for c in METRIC_COLUMNS)
        and _close(json.loads(a["metrics_json"]), json.loads(b["metrics_json"]), tol)
    )


def row_is_whole(row: dict[str, Any]) -> bool:
    """A row a reader may see: its key is the hash of its own trial JSON and its JSON columns parse."""
    key = short_hash(row["trial_json"])  # the trial key: the first 16 hex digits of its JSON's SHA-256
    try:
        metrics = json.loads(row["metrics_json"])
        trial = json.loads(row["trial_json"])
    except (TypeError, ValueError):
        return False
    return (
        key == row["key"]
        and isinstance(metrics, dict)
        and trial["target"] == row["target"]
        and trial["evaluation"] == row["evaluation"]
        and row["metric_name"] is not None
        and row["created_at"] is not None
    )


@dataclass
class StoreDiff:
    """A store compared with a reference store of the same sweep."""

    trials: int
    expected: int
    duplicates: int
    gaps: int  # expected trials missing
    extra: int  # trials the reference does not have
    lost: int  # trials stored with different metrics (or a torn row)
    orphans: int  # trials whose run_id names no recorded run
    integrity: str

    @property
    def ok(self) -> bool:
        return (
            self.trials == self.expected
            and not (self.duplicates or self.gaps or self.extra or self.lost or self.orphans)
            and self.integrity == "ok"
        )


def compare_stores(reference: Path, candidate: Path, tol: float = 1e-9) -> StoreDiff:
    """Keys, metrics, duplicates, gaps, provenance links and ``PRAGMA integrity_check`` of ``candidate``."""
    with ResultsStore(reference, readonly=True) as ref:
        want = {r["key"]: r for r in ref.rows()}
    with ResultsStore(candidate, readonly=True) as cand:
        rows = cand.rows()
        runs = {r["run_id"] for r in cand.rows("provenance")}
        integrity = cand.integrity_check()
        conn = cand._conn  # raw SQL for what the API deliberately cannot express: duplicate keys
        duplicates = conn.execute("SELECT COUNT(*) - COUNT(DISTINCT key) FROM trials").fetchone()[0]
        duplicates += conn.execute(
            "SELECT COUNT(*) FROM (SELECT 1 FROM adversarial_examples"
            " GROUP BY trial_key, idx HAVING COUNT(*) > 1)"
        ).fetchone()[0]
    got = {r["key"]: r for r in rows}
    lost = sum(
        1 for k, r in got.items() if k in want and not (row_is_whole(r) and same_result(want[k], r, tol))
    )
    return StoreDiff(
        trials=len(rows),
        expected=len(want),
        duplicates=int(duplicates),
        gaps=len(want.keys() - got.keys()),
        extra=len(got.keys() - want.keys()),
        lost=lost,
        orphans=sum(1 for r in rows if r["run_id"] not in runs),
        integrity=integrity,
    )
