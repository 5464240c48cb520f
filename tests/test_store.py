"""Results store: dedup, resume, merge, crash safety (real SIGKILL), concurrent readers, bad files, export."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from adaptermix.config import validate
from adaptermix.errors import AdapterMixError, ArtefactError
from adaptermix.io import OutputError
from adaptermix.sweep.export import EXPORT_FORMATS, export_store
from adaptermix.sweep.shards import StoreConflictError, merge
from adaptermix.sweep.spec import SweepSpec, Trial, expand, shard
from adaptermix.sweep.stats import compute_stats
from adaptermix.sweep.store import (
    AdversarialExample,
    Provenance,
    ResultsStore,
    TrialResult,
)

NAMES = [f"d{i}" for i in range(7)]
BATCH = 4

# A stand-in runner: records the spec's trials in batches, skipping finished keys (what the real runner
# does). The metric is a function of the key, so any run gives the same value for the same trial.
WRITER = """
import sys, time
from adaptermix.config import validate
from adaptermix.sweep.spec import SweepSpec, expand
from adaptermix.sweep.store import Provenance, ResultsStore, TrialResult

path, batch, pause = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
names = [f"d{i}" for i in range(7)]
trials = expand(validate(SweepSpec, {"pool": {n: n for n in names}}), names)
store = ResultsStore(path)
store.begin_run(Provenance.collect("{}", "fp", 0))
todo = [t for t in trials if t.key not in store.finished_keys()]
for i in range(0, len(todo), batch):
    store.record([TrialResult(t, "accuracy", int(t.key[:8], 16) / 16**8, {"n": 1}) for t in todo[i : i + batch]])
    time.sleep(pause)
print("done", len(todo))
"""


def all_trials() -> list[Trial]:
    return expand(validate(SweepSpec, {"pool": {n: n for n in NAMES}}), NAMES)


def result(trial: Trial, metric: float | None = None) -> TrialResult:
    value = int(trial.key[:8], 16) / 16**8 if metric is None else metric
    return TrialResult(trial, "accuracy", value, {"accuracy": value, "n": 1}, 0.1, 0.05, "raw", 10, 0.01)


def start_writer(tmp_path: Path, store: Path, pause: float) -> subprocess.Popen:
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    return subprocess.Popen(
        [sys.executable, str(script), str(store), str(BATCH), str(pause)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def read_count(path: Path) -> int:
    if not path.exists():
        return 0
    with ResultsStore(path, readonly=True) as reader:
        return reader.count()


# ------------------------------------------------------------------------------------- basic behaviour


def test_record_is_idempotent_and_resumable(tmp_path: Path) -> None:
    trials = all_trials()[:10]
    with ResultsStore(tmp_path / "r.sqlite") as store:
        assert store.record([result(t) for t in trials[:6]]) == 6
        assert store.record([result(t) for t in trials]) == 4, "only the 4 new trials are inserted"
        assert store.record([result(t, 0.0) for t in trials]) == 0, "a stored trial is never overwritten"
        assert store.finished_keys() == {t.key for t in trials}
        assert store.count() == 10 and store.integrity_check() == "ok"
        row = next(r for r in store.rows() if r["key"] == trials[0].key)
    assert Trial.from_dict(__import__("json").loads(row["trial_json"])) == trials[0]
    assert row["metric"] == pytest.approx(int(trials[0].key[:8], 16) / 16**8)
    assert (row["k"], row["fsd_space"], row["n_examples"]) == (trials[0].k, "raw", 10)


def test_store_settings_and_schema(tmp_path: Path) -> None:
    with ResultsStore(tmp_path / "r.sqlite") as store:
        conn = store._conn
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == "1"
    assert not list(tmp_path.glob(".*init*")), "no temporary file is left behind"


def test_non_finite_metrics_become_null(tmp_path: Path) -> None:
    trial = all_trials()[0]
    with ResultsStore(tmp_path / "r.sqlite") as store:
        store.record([TrialResult(trial, "mcc", float("nan"), {"mcc": float("nan"), "acc": 0.5})])
        row = store.rows()[0]
    assert row["metric"] is None and row["metrics_json"] == '{"acc":0.5,"mcc":null}'


def test_adversarial_examples_and_provenance(tmp_path: Path) -> None:
    trial = all_trials()[0]
    ex = AdversarialExample(
        0, "a good film", "a decent film", "1", True, "1", "0", queries=12, perturbed_words=1
    )
    with ResultsStore(tmp_path / "r.sqlite") as store:
        store.begin_run(Provenance.collect('{"pool": []}', "fp-a", 3))
        store.record([TrialResult(trial, "accuracy", 0.5, {}, adversarial_examples=(ex,))])
        store.record([TrialResult(trial, "accuracy", 0.5, {}, adversarial_examples=(ex,))])
        assert store.rows()[0]["run_id"] == store.run_id is not None
        (adv,) = store.rows("adversarial_examples")
        (prov,) = store.rows("provenance")
        assert adv["adversarial"] == "a decent film" and adv["success"] == 1 and adv["trial_key"] == trial.key
        assert prov["model_fingerprint"] == "fp-a" and prov["package_version"] and prov["seed"] == 3
        with pytest.raises(ArtefactError, match="holds results of model fp-a"):
            store.begin_run(Provenance.collect("{}", "fp-b", 0))
        store.begin_run(Provenance.collect("{}", "fp-b", 0), allow_other_model=True)


# ------------------------------------------------------------------------------------------ bad files


@pytest.mark.parametrize("readonly", [False, True])
@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not a database at all " * 50, "not an SQLite database"),
        (b"", "empty or not an adaptermix results store"),
    ],
)
def test_bad_files_are_one_line_artefact_errors(
    tmp_path: Path, readonly: bool, content: bytes, message: str
) -> None:
    path = tmp_path / "bad.sqlite"
    path.write_bytes(content)
    with pytest.raises(ArtefactError, match=message) as info:
        ResultsStore(path, readonly=readonly)
    assert "\n" not in str(info.value)
    assert path.read_bytes() == content, "a bad file is never modified"


def test_truncated_store_and_foreign_database(tmp_path: Path) -> None:
    good = tmp_path / "good.sqlite"
    with ResultsStore(good) as store:
        store.record([result(t) for t in all_trials()[:50]])
    data = good.read_bytes()
    (tmp_path / "trunc.sqlite").write_bytes(data[: len(data) // 2])
    with pytest.raises(ArtefactError, match="corrupted"):
        ResultsStore(tmp_path / "trunc.sqlite").rows()
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE x (a)")
    with pytest.raises(ArtefactError, match="not an adaptermix results store"):
        ResultsStore(other)
    with pytest.raises(ArtefactError, match="not found"):
        ResultsStore(tmp_path / "missing.sqlite", readonly=True)


def test_other_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite"
    ResultsStore(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    conn.close()
    with pytest.raises(ArtefactError, match="schema version 2; this adaptermix reads version 1"):
        ResultsStore(path, readonly=True)


def test_disk_full_keeps_earlier_results(tmp_path: Path) -> None:
    trials = all_trials()
    with ResultsStore(tmp_path / "r.sqlite") as store:
        store.record([result(t) for t in trials[:8]])
        pages = store._conn.execute("PRAGMA page_count").fetchone()[0]
        store._conn.execute(f"PRAGMA max_page_count = {pages}")  # the "disk" is now full
        big = [TrialResult(t, "accuracy", 0.5, {"blob": "x" * 4000}) for t in trials[8:40]]
        with pytest.raises(OutputError, match="disk full") as info:
            store.record(big)
        assert "\n" not in str(info.value)
        assert store.count() == 8 and store.integrity_check() == "ok"


def test_read_only_location_is_a_clear_error(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        where = Path("/proc/self")  # read-only even for root, who ignores permission bits
    else:
        where = tmp_path / "ro"
        where.mkdir()
        where.chmod(0o555)
    with pytest.raises(OutputError, match="cannot") as info:
        ResultsStore(where / "results.sqlite")
    assert "\n" not in str(info.value) and not (where / "results.sqlite").exists()
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError):
        ResultsStore(tmp_path / "file" / "results.sqlite")


def test_reader_cannot_write(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite"
    ResultsStore(path).close()
    with ResultsStore(path, readonly=True) as reader, pytest.raises(OutputError, match="read-only"):
        reader.record([result(all_trials()[0])])


# ----------------------------------------------------------------------------------------------- merge


def comparable(path: Path) -> list[tuple]:
    with ResultsStore(path, readonly=True) as reader:
        return [(r["key"], r["metric"], r["metrics_json"], r["trial_json"]) for r in reader.rows()]


def test_merge_of_shards_equals_a_single_store(tmp_path: Path) -> None:
    trials = all_trials()
    with ResultsStore(tmp_path / "single.sqlite") as single:
        single.record([result(t) for t in trials])
    shards = []
    for i in range(1, 4):
        shards.append(tmp_path / f"shard{i}.sqlite")
        with ResultsStore(shards[-1]) as store:
            store.begin_run(Provenance.collect("{}", "fp", 0))
            store.record([result(t) for t in shard(trials, i, 3)])
    assert merge(tmp_path / "merged.sqlite", shards) == len(trials)
    assert comparable(tmp_path / "merged.sqlite") == comparable(tmp_path / "single.sqlite")
    assert merge(tmp_path / "merged.sqlite", shards) == 0, "merging again adds nothing"
    with ResultsStore(tmp_path / "merged.sqlite", readonly=True) as merged:
        assert len(merged.rows("provenance")) == 3


def test_merge_conflict_leaves_destination_unchanged(tmp_path: Path) -> None:
    trials = all_trials()[:5]
    for name, value in (("a", 0.5), ("b", 0.7)):
        with ResultsStore(tmp_path / f"{name}.sqlite") as store:
            store.record([result(t, value) for t in trials])
    with ResultsStore(tmp_path / "c.sqlite") as store:
        store.record([result(t, 0.5 + 1e-13) for t in trials])  # round-off is not a conflict
    assert merge(tmp_path / "dst.sqlite", [tmp_path / "a.sqlite", tmp_path / "c.sqlite"]) == 5
    before = comparable(tmp_path / "dst.sqlite")
    with pytest.raises(StoreConflictError, match="different results"):
        merge(tmp_path / "dst.sqlite", [tmp_path / "b.sqlite"])
    assert comparable(tmp_path / "dst.sqlite") == before


def test_merge_refuses_stores_of_different_models(tmp_path: Path) -> None:
    for name in ("a", "b"):
        with ResultsStore(tmp_path / f"{name}.sqlite") as store:
            store.begin_run(Provenance.collect("{}", f"model-{name}", 0))
    with pytest.raises(StoreConflictError, match="different models"):
        merge(tmp_path / "dst.sqlite", [tmp_path / "a.sqlite", tmp_path / "b.sqlite"])


def test_merge_refuses_shards_of_other_weights_and_keeps_the_weights(tmp_path: Path) -> None:
    """Trial keys name adapters, not weights: shards computed with a retrained adapter must not combine."""
    trials = all_trials()[:4]
    for name, digest in (("a", "1" * 64), ("b", "1" * 64), ("c", "2" * 64)):
        with ResultsStore(tmp_path / f"{name}.sqlite") as store:
            store.check_adapters({"d0": digest})
            store.record([result(t, 0.5) for t in trials])
    assert merge(tmp_path / "dst.sqlite", [tmp_path / "a.sqlite", tmp_path / "b.sqlite"]) == 4
    with ResultsStore(tmp_path / "dst.sqlite", readonly=True) as merged:
        assert merged.adapter_hashes() == {"d0": "1" * 64}
    before = comparable(tmp_path / "dst.sqlite")
    with pytest.raises(StoreConflictError, match="different weights for adapter 'd0'"):
        merge(tmp_path / "dst.sqlite", [tmp_path / "c.sqlite"])
    assert comparable(tmp_path / "dst.sqlite") == before


# ------------------------------------------------------------------------------ crash and concurrency


def test_sigkill_mid_sweep_then_resume(tmp_path: Path) -> None:
    path = tmp_path / "sweep.sqlite"
    expected = {t.key for t in all_trials()}
    for threshold in (40, 200):
        proc = start_writer(tmp_path, path, pause=0.01)
        deadline = time.monotonic() + 60
        while proc.poll() is None and read_count(path) < threshold and time.monotonic() < deadline:
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        with ResultsStore(path, readonly=True) as reader:  # recovery from the hot WAL, read-only
            assert reader.integrity_check() == "ok"
            count = reader.count()
        assert count % BATCH == 0, "a batch is committed whole or not at all"
        assert count < len(expected), "the kill landed mid-sweep"
    done = start_writer(tmp_path, path, pause=0.0)
    out, err = done.communicate(timeout=120)
    assert done.returncode == 0, err
    with ResultsStore(path, readonly=True) as reader:
        rows = reader.rows()
        assert reader.integrity_check() == "ok"
    keys = [r["key"] for r in rows]
    assert len(keys) == len(set(keys)) == len(expected) and set(keys) == expected  # no duplicate, no gap
    assert all(r["metric"] == pytest.approx(int(r["key"][:8], 16) / 16**8) for r in rows)


def test_concurrent_readers_while_a_sweep_writes(tmp_path: Path) -> None:
    path = tmp_path / "sweep.sqlite"
    proc = start_writer(tmp_path, path, pause=0.002)
    errors: list[BaseException] = []
    reads = [0, 0]

    def reader(slot: int) -> None:
        last = 0
        while proc.poll() is None:
            try:
                if path.exists():
                    count = read_count(path)
                    assert count % BATCH == 0 and count >= last, (
                        f"torn or shrinking read: {count} after {last}"
                    )
                    last = count
                    stats = compute_stats(path)
                    assert sum(s.count for s in stats.per_k) % BATCH == 0
                    export_store(path, tmp_path / f"export{slot}.csv")
                    reads[slot] += 1
            except BaseException as exc:  # noqa: BLE001 - collected and re-raised by the test thread
                errors.append(exc)
                return

    threads = [threading.Thread(target=reader, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    proc.communicate(timeout=120)
    for t in threads:
        t.join()
    assert proc.returncode == 0 and not errors, errors[:1]
    assert sum(reads) >= 4
    assert read_count(path) == len(all_trials())


# ---------------------------------------------------------------------------------------------- export


@pytest.mark.parametrize("fmt", EXPORT_FORMATS.names())
def test_export_round_trip(tmp_path: Path, fmt: str) -> None:
    trials = all_trials()[:25]
    with ResultsStore(tmp_path / "r.sqlite") as store:
        store.record([result(t) for t in trials])
    out = tmp_path / f"trials.{fmt}"
    assert export_store(tmp_path / "r.sqlite", out) == 25
    if fmt == "parquet":
        table = pq.read_table(out)
        assert table.num_rows == 25 and set(table.column("key").to_pylist()) == {t.key for t in trials}
        assert str(table.schema.field("k").type) == "int64"
    else:
        lines = out.read_text().splitlines()
        assert len(lines) == 26 and lines[0].startswith("key,run_id,target")
    assert not list(tmp_path.glob(".trials*")), "no temporary file is left behind"


def test_export_errors(tmp_path: Path) -> None:
    ResultsStore(tmp_path / "r.sqlite").close()
    assert export_store(tmp_path / "r.sqlite", tmp_path / "empty.parquet") == 0
    assert pq.read_table(tmp_path / "empty.parquet").num_columns > 20
    with pytest.raises(AdapterMixError, match="unknown export format 'xlsx'"):
        export_store(tmp_path / "r.sqlite", tmp_path / "t.xlsx")
    with pytest.raises(AdapterMixError, match="export format"):
        export_store(tmp_path / "r.sqlite", tmp_path / "noext")


def test_trial_record_names_every_trials_column_and_trials_reads_them(tmp_path) -> None:
    """The typed row (``TrialRecord``) and the table's columns are one list: a column added to one and not the
    other fails here; ``trials()`` returns exactly the rows ``rows("trials")`` does."""
    from adaptermix.sweep.store import TRIAL_COLUMNS, TrialRecord

    assert list(TrialRecord.__annotations__) == list(TRIAL_COLUMNS)
    with ResultsStore(tmp_path / "s.sqlite") as store:
        assert store.trials() == store.rows("trials") == []
