"""The results store: one SQLite file (WAL mode), one row per trial, plus provenance. Schema and guarantees
are documented in docs/results-store.md.

Why SQLite: every batch of results is committed in one transaction, so a process killed at any moment
loses at most the trials in flight and never leaves a half-written row or a corrupt file; the primary key
on the content key makes a rerun idempotent (``INSERT OR IGNORE``); WAL lets readers (``stats``,
``export``) read a consistent snapshot while the sweep writes, without blocking it.

``synchronous=FULL`` (not NORMAL): in WAL mode NORMAL already survives a killed process, but a power
loss or OS crash could roll back the last commits. FULL fsyncs the WAL on each commit, so a trial the
runner has recorded (and will therefore skip on resume) is really on disk. A commit holds a whole batch of
evaluated mixtures, so one fsync per commit is negligible next to the model forward passes.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import subprocess
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypedDict, cast

from adaptermix._version import __version__
from adaptermix.core.errors import AdapterMixError, ArtefactError, ResourceError
from adaptermix.core.io import OutputError, ensure_parent
from adaptermix.core.timestamps import utc_stamp
from adaptermix.evaluations.base import AdversarialExample  # lives with the evaluation outcomes; re-exported
from adaptermix.sweep.spec import Trial, canonical_json

SCHEMA_VERSION = 1
BUSY_TIMEOUT_S = 60.0
#: ``meta`` keys ``selection:<generator>:<target>`` hold the JSON of a selection a generator followed
#: (AdapterSoup's, :class:`adaptermix.sweep.soup.SoupSelection`). Rows of the key-value ``meta`` table, so
#: the schema (version 1) is unchanged and stores written before selections existed load as they are.
SELECTION_PREFIX = "selection:"

#: Column name -> SQLite type of the ``trials`` table, in table order (also drives the Parquet schema).
TRIAL_COLUMNS: dict[str, str] = {
    "key": "TEXT PRIMARY KEY",
    "run_id": "TEXT",
    "target": "TEXT NOT NULL",
    "subset_json": "TEXT NOT NULL",
    "k": "INTEGER NOT NULL",
    "tag": "TEXT NOT NULL",
    "rule": "TEXT NOT NULL",
    "rule_params_json": "TEXT NOT NULL",
    "split": "TEXT NOT NULL",
    "evaluation": "TEXT NOT NULL",
    "eval_params_json": "TEXT NOT NULL",
    "max_eval_examples": "INTEGER",
    "seed": "INTEGER NOT NULL",
    "max_length": "INTEGER",
    "metric_name": "TEXT NOT NULL",
    "metric": "REAL",
    "metrics_json": "TEXT NOT NULL",
    "mean_pairwise_fsd": "REAL",
    "target_sign_change": "REAL",
    "fsd_space": "TEXT",
    "n_examples": "INTEGER",
    "seconds": "REAL",
    "created_at": "TEXT NOT NULL",
    "trial_json": "TEXT NOT NULL",
}
class TrialRecord(TypedDict):
    """One row of the ``trials`` table as :meth:`ResultsStore.trials` returns it (the columns of
    :data:`TRIAL_COLUMNS`, SQLite's values unconverted: JSON columns are strings, NULLs are None)."""

    key: str
    run_id: str | None
    target: str
    subset_json: str
    k: int
    tag: str
    rule: str
    rule_params_json: str
    split: str
    evaluation: str
    eval_params_json: str
    max_eval_examples: int | None
    seed: int
    max_length: int | None
    metric_name: str
    metric: float | None
    metrics_json: str
    mean_pairwise_fsd: float | None
    target_sign_change: float | None
    fsd_space: str | None
    n_examples: int | None
    seconds: float | None
    created_at: str
    trial_json: str


PROVENANCE_COLUMNS: dict[str, str] = {
    "run_id": "TEXT PRIMARY KEY",
    "package_version": "TEXT NOT NULL",
    "git_revision": "TEXT NOT NULL",
    "model_fingerprint": "TEXT NOT NULL",
    "seed": "INTEGER NOT NULL",
    "spec_json": "TEXT NOT NULL",
    "started_at": "TEXT NOT NULL",
}
ADVERSARIAL_COLUMNS: dict[str, str] = {
    "trial_key": "TEXT NOT NULL REFERENCES trials(key)",
    "idx": "INTEGER NOT NULL",
    "original": "TEXT NOT NULL",
    "adversarial": "TEXT NOT NULL",
    "original_pair": "TEXT",
    "adversarial_pair": "TEXT",
    "original_label": "TEXT NOT NULL",
    "original_prediction": "TEXT",
    "new_prediction": "TEXT",
    "success": "INTEGER NOT NULL",
    "queries": "INTEGER",
    "perturbed_words": "INTEGER",
}
TABLES: dict[str, dict[str, str]] = {
    "trials": TRIAL_COLUMNS,
    "provenance": PROVENANCE_COLUMNS,
    "adversarial_examples": ADVERSARIAL_COLUMNS,
}


def _create_sql() -> list[str]:
    def table(name: str, cols: Mapping[str, str], extra: str = "") -> str:
        body = ", ".join(f"{c} {t}" for c, t in cols.items())
        return f"CREATE TABLE IF NOT EXISTS {name} ({body}{extra})"

    return [
        "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        table("provenance", PROVENANCE_COLUMNS),
        table("trials", TRIAL_COLUMNS),
        "CREATE INDEX IF NOT EXISTS trials_by_setting ON trials (target, evaluation, k)",
        table("adversarial_examples", ADVERSARIAL_COLUMNS, ", PRIMARY KEY (trial_key, idx)"),
    ]


def _plain(obj: Any) -> Any:
    """JSON-safe copy: NaN/Inf floats become null (JSON has no NaN), numpy scalars become Python ones."""
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _real(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(float(x)) else float(x)


def git_revision() -> str:
    """The git commit of the installed package's source tree, or ``"unknown"`` outside a checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


@dataclass(frozen=True)
class Provenance:
    """Who wrote a run's results: package version, git revision, model fingerprint, seed, the spec."""

    run_id: str
    package_version: str
    git_revision: str
    model_fingerprint: str
    seed: int
    spec_json: str
    started_at: str

    @classmethod
    def collect(cls, spec_json: str, model_fingerprint: str, seed: int) -> Provenance:
        """A new run's provenance (fresh run id, this package's version and git revision, now)."""
        return cls(
            uuid.uuid4().hex, __version__, git_revision(), model_fingerprint, seed, spec_json, utc_stamp()
        )

    def row(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def precision(self) -> str:
        """The run's resolved encoder precision, from its spec (runs from before precision existed: fp32)."""
        return spec_precision(self.spec_json)


def spec_precision(spec_json: str) -> str:
    """``fp32`` / ``bf16`` recorded in a run's spec JSON; fp32 where absent or unresolved (older runs)."""
    try:
        value = json.loads(spec_json).get("precision")
    except (ValueError, AttributeError):
        value = None
    return value if value in ("fp32", "bf16") else "fp32"


@dataclass(frozen=True)
class TrialResult:
    """What the runner measured for one trial; ``metrics`` holds every metric and attack statistic."""

    trial: Trial
    metric_name: str
    metric: float | None
    metrics: Mapping[str, Any]
    mean_pairwise_fsd: float | None = None
    target_sign_change: float | None = None
    fsd_space: str | None = None
    n_examples: int | None = None
    seconds: float | None = None
    adversarial_examples: tuple[AdversarialExample, ...] = ()

    def row(self, run_id: str | None, created_at: str) -> dict[str, Any]:
        """The ``trials`` row of this result."""
        t = self.trial
        return {
            "key": t.key,
            "run_id": run_id,
            "target": t.target,
            "subset_json": canonical_json(list(t.subset)),
            "k": t.k,
            "tag": t.tag,
            "rule": t.rule,
            "rule_params_json": canonical_json(dict(t.rule_params)),
            "split": t.split,
            "evaluation": t.evaluation,
            "eval_params_json": canonical_json(dict(t.eval_params)),
            "max_eval_examples": t.max_eval_examples,
            "seed": t.seed,
            "max_length": t.max_length,
            "metric_name": self.metric_name,
            "metric": _real(self.metric),
            "metrics_json": json.dumps(_plain(self.metrics), sort_keys=True, separators=(",", ":")),
            "mean_pairwise_fsd": _real(self.mean_pairwise_fsd),
            "target_sign_change": _real(self.target_sign_change),
            "fsd_space": self.fsd_space,
            "n_examples": self.n_examples,
            "seconds": _real(self.seconds),
            "created_at": created_at,
            "trial_json": t.canonical,
        }


# -------------------------------------------------------------------------------------- SQL errors

# SQLite's primary result codes (https://sqlite.org/rescode.html), spelled out because the sqlite3 module
# only exports them from Python 3.11 on (on 3.10 reading sqlite3.SQLITE_BUSY failed at import).
SQLITE_PERM, SQLITE_BUSY, SQLITE_READONLY, SQLITE_IOERR = 3, 5, 8, 10
SQLITE_CORRUPT, SQLITE_FULL, SQLITE_CANTOPEN, SQLITE_NOTADB = 11, 13, 14, 26

# Primary SQLite result code -> (error class for a writer, error class for a reader, what it means).
_SQLITE_CODES: dict[int, tuple[type[AdapterMixError], type[AdapterMixError], str]] = {
    SQLITE_NOTADB: (ArtefactError, ArtefactError, "not an SQLite database"),
    SQLITE_CORRUPT: (ArtefactError, ArtefactError, "the database file is corrupted"),
    SQLITE_FULL: (OutputError, OutputError, "disk full"),
    SQLITE_READONLY: (OutputError, ArtefactError, "read-only location"),
    SQLITE_CANTOPEN: (OutputError, ArtefactError, "cannot open the file"),
    SQLITE_PERM: (OutputError, ArtefactError, "permission denied"),
    SQLITE_IOERR: (OutputError, ArtefactError, "I/O error"),
    SQLITE_BUSY: (
        ResourceError,
        ResourceError,
        f"locked by another process for over {BUSY_TIMEOUT_S:.0f} s",
    ),
}


@contextmanager
def _sql_errors(path: Path, action: str, *, readonly: bool) -> Iterator[None]:
    """Turn SQLite failures a user can cause (bad file, full disk, read-only dir) into one-line errors."""
    try:
        yield
    except sqlite3.Error as exc:
        code = getattr(exc, "sqlite_errorcode", None)
        known = _SQLITE_CODES.get(code & 0xFF) if isinstance(code, int) else None
        if known is None:
            raise
        writer_cls, reader_cls, what = known
        detail = " ".join(str(exc).split())
        cls = reader_cls if readonly else writer_cls
        raise cls(f"results store {path}: cannot {action}: {what} ({detail})") from None


# ------------------------------------------------------------------------------------------- store


class ResultsStore:
    """One results store file. ``readonly=True`` opens a ``mode=ro`` reader that never writes or creates.

    Use one writer per store at a time (the sweep runner, or the Ray driver); any number of readers may
    read concurrently and each query sees a committed snapshot.
    """

    def __init__(self, path: str | Path, *, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self.run_id: str | None = None
        self._conn = self._open()

    # -- opening -------------------------------------------------------------------------------------

    def _errors(self, action: str) -> Any:
        return _sql_errors(self.path, action, readonly=self.readonly)

    def _open(self) -> sqlite3.Connection:
        if self.readonly and not self.path.is_file():
            raise ArtefactError(f"results store not found: {self.path}")
        if self.path.exists() and not self.path.is_file():
            raise OutputError(f"results store {self.path}: exists and is not a file")
        if not self.readonly and not self.path.exists():
            self._create()
        conn = self._connect(self._reader_uri() if self.readonly else str(self.path))
        try:
            with self._errors("open"):
                self._check_schema(conn)  # first, so a file that is not a store is never written to
                if not self.readonly:
                    conn.execute("PRAGMA journal_mode = WAL")
                    conn.execute("PRAGMA synchronous = FULL")
        except BaseException:
            conn.close()
            raise
        return conn

    def _reader_uri(self) -> str:
        """``mode=ro`` URI; ``immutable=1`` as well for a store in a folder this process cannot write.

        A WAL-mode reader must create the ``-shm`` index next to the store, which fails in a read-only
        folder (an archive, a read-only mount). With no ``-wal`` file beside it no writer can be active
        there (a writer would need that folder too), so the file is complete and reading it as immutable,
        without locks or ``-shm``, is safe.
        """
        uri = self.path.resolve().as_uri() + "?mode=ro"
        folder = self.path.resolve().parent
        wal = folder / f"{self.path.name}-wal"
        if not os.access(folder, os.W_OK) and not wal.exists():
            uri += "&immutable=1"
        return uri

    def _connect(self, target: str) -> sqlite3.Connection:
        with self._errors("open"):
            # isolation_level=None: no implicit transactions; every write goes through _transaction().
            conn = sqlite3.connect(target, uri=self.readonly, timeout=BUSY_TIMEOUT_S, isolation_level=None)
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        return conn

    def _create(self) -> None:
        """Build the empty store in a temporary file, then hard-link it into place.

        Readers therefore see no file or a complete store, never a half-initialised one; ``os.link``
        fails if another writer created the store first, and that store is then used as it is.
        """
        ensure_parent(self.path, "create results store")
        tmp = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex}.init")
        try:
            conn = self._connect(str(tmp))
            try:
                with self._errors("create"):
                    conn.execute("PRAGMA journal_mode = WAL")  # persistent: stored in the file header
                    conn.executescript(";\n".join(_create_sql()) + ";")
                    conn.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
                    conn.execute("INSERT INTO meta VALUES ('created_at', ?)", (utc_stamp(),))
            finally:
                conn.close()  # checkpoints and removes the temporary WAL: the file is complete
            try:
                os.link(tmp, self.path)
            except FileExistsError:
                pass
            except OSError:  # a filesystem without hard links: rename unless someone was faster
                if not self.path.exists():
                    os.replace(tmp, self.path)
        except OSError as exc:
            raise OutputError(f"cannot create results store {self.path}: {exc.strerror or exc}") from None
        finally:
            for leftover in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
                leftover.unlink(missing_ok=True)

    def _check_schema(self, conn: sqlite3.Connection) -> None:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "meta" not in tables:
            raise ArtefactError(f"{self.path} is empty or not an adaptermix results store")
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if row is None or row[0] != str(SCHEMA_VERSION):
            found = row[0] if row else "missing"
            raise ArtefactError(
                f"results store {self.path} has schema version {found}; this adaptermix reads version {SCHEMA_VERSION}"
            )
        if not TABLES.keys() <= tables:
            raise ArtefactError(
                f"results store {self.path} lacks the tables {sorted(TABLES.keys() - tables)}"
            )

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> ResultsStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing -------------------------------------------------------------------------------------

    @contextmanager
    def _transaction(self, action: str) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT; any failure rolls the whole batch back, earlier commits stay."""
        if self.readonly:
            raise OutputError(f"results store {self.path} was opened read-only; cannot {action}")
        with self._errors(action):
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise

    def begin_run(self, provenance: Provenance, *, allow_other_model: bool = False) -> None:
        """Record a run's provenance. Refuses a store that holds results of a different model.

        Trial keys do not name the model, so resuming into a store written with other adapters would
        skip trials whose stored metrics belong to another model; ``allow_other_model`` overrides that.
        """
        fingerprint = provenance.model_fingerprint
        others = self.fingerprints() - {"", fingerprint}
        if fingerprint and others and not allow_other_model:
            raise ArtefactError(
                f"results store {self.path} holds results of model {sorted(others)[0]}, not {fingerprint}; "
                "use a new store"
            )
        # Never mix precisions in one store (bf16 trials have keys of their own, but statistics read every
        # row of a store): a store written in fp32 (every store from before precision existed) stays fp32.
        held = self.precisions() - {provenance.precision}
        if held:
            raise ArtefactError(
                f"results store {self.path} holds {sorted(held)[0]} results and this run computes "
                f"{provenance.precision}; use a new store, or --precision {sorted(held)[0]}"
            )
        self._insert("provenance", [provenance.row()], "record the run's provenance")
        self.run_id = provenance.run_id

    def record(self, results: Sequence[TrialResult], run_id: str | None = None) -> int:
        """Insert a batch of results in one transaction; returns how many were new.

        ``INSERT OR IGNORE`` on the key: a trial already stored is left as it was, never duplicated.
        ``run_id`` defaults to the run started with :meth:`begin_run`.
        """
        now = utc_stamp()
        rows = [r.row(run_id or self.run_id, now) for r in results]
        examples = [
            {"trial_key": r.trial.key, **_plain(vars(ex)), "success": int(ex.success)}
            for r in results
            for ex in r.adversarial_examples
        ]
        with self._transaction("write results") as conn:
            before = conn.total_changes
            self._insert_rows(conn, "trials", rows)
            added = conn.total_changes - before
            self._insert_rows(conn, "adversarial_examples", examples)
        return added

    def _insert(self, table: str, rows: Sequence[Mapping[str, Any]], action: str) -> None:
        with self._transaction(action) as conn:
            self._insert_rows(conn, table, rows)

    @staticmethod
    def _insert_rows(conn: sqlite3.Connection, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
        cols = list(TABLES[table])
        sql = f"INSERT OR IGNORE INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
        conn.executemany(sql, ([row.get(c) for c in cols] for row in rows))

    # -- reading -------------------------------------------------------------------------------------

    def finished_keys(self) -> set[str]:
        """Keys of every stored trial: the runner skips these on a rerun or resume."""
        with self._errors("read"):
            return {r[0] for r in self._conn.execute("SELECT key FROM trials")}

    def rows(self, table: str = "trials") -> list[dict[str, Any]]:
        """Every row of ``table`` as dicts, read in one query (one consistent snapshot)."""
        cols = list(TABLES[table])
        order = "key" if table == "trials" else cols[0]
        with self._errors("read"):
            cur = self._conn.execute(f"SELECT {', '.join(cols)} FROM {table} ORDER BY {order}")
            return [dict(zip(cols, r, strict=True)) for r in cur]

    def trials(self) -> list[TrialRecord]:
        """Every trial, typed (:class:`TrialRecord`), in one query: :meth:`rows` of ``trials``."""
        return cast("list[TrialRecord]", self.rows("trials"))

    def count(self, table: str = "trials") -> int:
        TABLES[table]  # noqa: B018 - only known table names reach the SQL text
        with self._errors("read"):
            return int(self._conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])

    def created_at(self) -> datetime | None:
        """When the store was created (UTC), from its ``meta`` table."""
        with self._errors("read"):
            row = self._conn.execute("SELECT value FROM meta WHERE key = 'created_at'").fetchone()
        try:
            return datetime.fromisoformat(row[0]) if row else None
        except ValueError:
            return None

    def adapter_hashes(self) -> dict[str, str]:
        """Pool adapter name -> SHA-256 of the weights its stored results were computed with."""
        with self._errors("read"):
            rows = self._conn.execute("SELECT key, value FROM meta WHERE key LIKE 'adapter_sha256:%'")
            return {k.split(":", 1)[1]: v for k, v in rows}

    def stale_adapters(self, hashes: Mapping[str, str]) -> list[str]:
        """Names whose stored results came from other weights than ``hashes`` says (sorted)."""
        stored = self.adapter_hashes()
        return sorted(n for n, h in hashes.items() if n in stored and stored[n] != h)

    def check_adapters(self, hashes: Mapping[str, str]) -> None:
        """Refuse a store whose results were computed with other weights under the same adapter names,
        then record the names this run adds.

        Trial keys name adapters, not their weights, so resuming into a store after an adapter was
        retrained would silently skip trials whose stored metrics belong to the old weights.
        """
        stale = self.stale_adapters(hashes)
        if stale:
            raise ArtefactError(
                f"results store {self.path} holds results of other weights for adapter(s) "
                f"{', '.join(repr(n) for n in stale)} (retrained since?); use a new store"
            )
        stored = self.adapter_hashes()
        rows = [(f"adapter_sha256:{n}", h) for n, h in sorted(hashes.items()) if n not in stored]
        if rows:
            with self._transaction("record the pool's adapters") as conn:
                conn.executemany("INSERT OR IGNORE INTO meta VALUES (?, ?)", rows)

    def record_selections(self, selections: Mapping[tuple[str, str], Mapping[str, Any]]) -> None:
        """Store (generator, target) -> selection JSON; a newer run's selection replaces an older one."""
        rows = [(f"{SELECTION_PREFIX}{gen}:{target}", canonical_json(_plain(dict(sel))))
                for (gen, target), sel in sorted(selections.items())]
        if rows:
            with self._transaction("record the generators' selections") as conn:
                conn.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", rows)

    def selections(self) -> dict[tuple[str, str], dict[str, Any]]:
        """(generator, target) -> the recorded selection JSON (empty for stores without any)."""
        with self._errors("read"):
            rows = self._conn.execute("SELECT key, value FROM meta WHERE key LIKE ? ORDER BY key",
                                      (f"{SELECTION_PREFIX}%",)).fetchall()
        out = {}
        for key, value in rows:
            gen, _, target = key[len(SELECTION_PREFIX):].partition(":")
            try:
                data = json.loads(value)
            except ValueError:
                continue  # an unreadable entry is skipped, never fatal for a reader
            if isinstance(data, dict):
                out[(gen, target)] = data
        return out

    def fingerprints(self) -> set[str]:
        """Model fingerprints of every recorded run."""
        with self._errors("read"):
            return {r[0] for r in self._conn.execute("SELECT model_fingerprint FROM provenance")}

    def precisions(self) -> set[str]:
        """Encoder precisions (``fp32`` / ``bf16``) of every recorded run."""
        with self._errors("read"):
            return {spec_precision(r[0]) for r in self._conn.execute("SELECT spec_json FROM provenance")}

    def integrity_check(self) -> str:
        """SQLite's ``PRAGMA integrity_check``: ``"ok"`` for a sound file."""
        with self._errors("check"):
            return "; ".join(r[0] for r in self._conn.execute("PRAGMA integrity_check"))
