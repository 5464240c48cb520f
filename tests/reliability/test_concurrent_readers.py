"""Readers (``stats``, ``export``, raw store reads) while a sweep process writes the store: none fails, none
is locked out, and every row any of them sees is whole and final (no torn or later-changed row)."""

from __future__ import annotations

import csv
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from adaptermix.sweep.export import export_store
from adaptermix.sweep.stats import compute_stats, format_tables
from adaptermix.sweep.store import ResultsStore
from reliability.harness import (
    child_env,
    compare_stores,
    count_trials,
    kill_session,
    row_is_whole,
    same_result,
    sweep_command,
)


class Readers:
    """Reader threads that loop until told to stop, recording what they saw and any failure."""

    def __init__(self, store: Path, reference: dict[str, dict], out: Path) -> None:
        self.store, self.reference, self.out = store, reference, out
        self.stop = threading.Event()
        self.errors: list[str] = []
        self.counts: list[int] = []
        self.exports = 0
        self.threads = [threading.Thread(target=self._guard, args=(f,)) for f in (self._rows, self._export)]

    def _guard(self, loop) -> None:
        try:
            while not self.stop.is_set():
                loop()
        except Exception as exc:  # any failure at all is what this test looks for
            self.errors.append(f"{loop.__name__}: {type(exc).__name__}: {exc}")

    def _rows(self) -> None:
        with ResultsStore(self.store, readonly=True) as s:
            rows = s.rows()
        for row in rows:
            if not row_is_whole(row) or not same_result(self.reference[row["key"]], row):
                self.errors.append(f"torn or changed row {row['key']}")
        if self.counts and len(rows) < self.counts[-1]:
            self.errors.append(f"rows went from {self.counts[-1]} to {len(rows)}")
        self.counts.append(len(rows))

    def _export(self) -> None:
        path = self.out / "trials.csv"
        n = export_store(self.store, path)
        with open(path, newline="", encoding="utf-8") as fh:
            exported = list(csv.DictReader(fh))
        if len(exported) != n or any(not r["key"] or not r["metric_name"] for r in exported):
            self.errors.append(f"export wrote {len(exported)} rows but reported {n}")
        format_tables(compute_stats(self.store))
        self.exports += 1

    def __enter__(self) -> Readers:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=120)


def _cli(*argv: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "adaptermix", *argv]
    return subprocess.run(cmd, env=child_env(), capture_output=True, text=True, timeout=300)


def test_readers_during_a_sweep(sweep_case, tmp_path):
    store = tmp_path / "live.sqlite"
    with ResultsStore(sweep_case.reference, readonly=True) as ref:
        reference = {r["key"]: r for r in ref.rows()}
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            sweep_command(sweep_case.spec, store),
            env=child_env(),
            stdout=subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,
        )
        cli_runs: list[subprocess.CompletedProcess] = []
        try:
            while proc.poll() is None and count_trials(store) == 0:
                time.sleep(0.05)
            with Readers(store, reference, tmp_path) as readers:
                while proc.poll() is None:  # CLI readers, one after the other, for as long as the sweep runs
                    cli_runs.append(_cli("stats", str(store)))
                    cli_runs.append(_cli("export", str(store), "-o", str(tmp_path / "cli.parquet")))
            rc = proc.wait(timeout=300)
            err.seek(0)
            assert rc == 0, err.read().decode()
        finally:
            kill_session(proc)
    assert not readers.errors, readers.errors[:5]
    partial = sorted({c for c in readers.counts if 0 < c < sweep_case.total})
    assert len(partial) >= 3, f"the readers saw too few intermediate states: {partial}"
    assert readers.exports >= 3 and len(cli_runs) >= 2
    for res in cli_runs:
        assert res.returncode == 0 and "locked" not in res.stderr, res.stderr
        assert res.stdout.strip()
    assert compare_stores(sweep_case.reference, store).ok
