"""Export a results-store table to CSV or Parquet, atomically (a reader never sees half a file).

Formats are plug-ins in :data:`EXPORT_FORMATS` (one line each); the format is named or taken from the
output file's suffix. The export reads one consistent snapshot through a read-only connection, so it is
safe while a sweep is writing the store.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from adaptermix.core.errors import ConfigError
from adaptermix.core.io import atomic_path
from adaptermix.core.registry import Registry
from adaptermix.sweep.store import TABLES, ResultsStore

Writer = Callable[[Sequence[Mapping[str, Any]], Mapping[str, str], Path], None]
EXPORT_FORMATS: Registry[Writer] = Registry("export format")

# SQLite declared type (first word) -> Arrow type, so an empty table still has a typed schema.
_ARROW_TYPES = {"TEXT": pa.string(), "INTEGER": pa.int64(), "REAL": pa.float64()}


def _write_csv(rows: Sequence[Mapping[str, Any]], columns: Mapping[str, str], path: Path) -> None:
    """RFC 4180 CSV with a header row; NULL is an empty cell."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(columns), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def _write_parquet(rows: Sequence[Mapping[str, Any]], columns: Mapping[str, str], path: Path) -> None:
    """Parquet with a schema typed from the store's declared column types."""
    schema = pa.schema([(name, _ARROW_TYPES[decl.split()[0]]) for name, decl in columns.items()])
    table = pa.Table.from_pylist(list(rows), schema=schema)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


EXPORT_FORMATS.register("csv", _write_csv)
EXPORT_FORMATS.register("parquet", _write_parquet)


def export_store(store: str | Path, out: str | Path, fmt: str | None = None, table: str = "trials") -> int:
    """Write ``table`` of the store at ``store`` to ``out`` as ``fmt`` (default: ``out``'s suffix).

    Returns the number of rows written.
    """
    out_path = Path(out)
    name = fmt or out_path.suffix.lstrip(".").lower()
    if not name:
        raise ConfigError(
            f"cannot tell the export format of {out_path}; use --format {'|'.join(EXPORT_FORMATS.names())}"
        )
    writer = EXPORT_FORMATS.get(name)
    if table not in TABLES:
        raise ConfigError(f"unknown results-store table {table!r}; valid: {', '.join(TABLES)}")
    with ResultsStore(store, readonly=True) as reader:
        rows = reader.rows(table)
    writer(rows, TABLES[table], out_path)
    return len(rows)
