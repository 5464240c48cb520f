"""Combining shard stores (``adaptermix merge``): one store from the stores of a sharded sweep.

Kept apart from :mod:`adaptermix.sweep.store` (one store's reads and writes); every check runs on read-only
views before the destination is opened, so a conflicting shard leaves it unchanged.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from adaptermix.core.errors import ArtefactError
from adaptermix.sweep.store import TABLES, ResultsStore


class StoreConflictError(ArtefactError):
    """Two stores hold different results for the same trial key."""


def _same_result(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Equal trial content and metrics equal up to float round-off (results from different devices)."""

    def close(x: Any, y: Any) -> bool:
        if isinstance(x, (int, float)) and isinstance(y, (int, float)):
            return math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12)
        if isinstance(x, dict) and isinstance(y, dict):
            return x.keys() == y.keys() and all(close(x[k], y[k]) for k in x)
        if isinstance(x, list) and isinstance(y, list):
            return len(x) == len(y) and all(close(p, q) for p, q in zip(x, y, strict=True))
        return x == y

    return (
        a["trial_json"] == b["trial_json"]
        and a["metric_name"] == b["metric_name"]
        and close(a["metric"], b["metric"])
        and close(json.loads(a["metrics_json"]), json.loads(b["metrics_json"]))
    )


def combine_stores(dst: str | Path, srcs: Sequence[str | Path]) -> int:
    """Combine shard stores into ``dst`` (created if missing) in one transaction; returns rows added.

    Trials are deduplicated by key. The same key with different metrics (or content), or stores of
    different models, precisions or adapter weights (under one adapter name), is a
    :class:`StoreConflictError` and ``dst`` is left unchanged.
    """
    # Every check runs on read-only views before ``dst`` is opened for writing: a missing, broken or
    # conflicting shard leaves no new (empty) ``dst`` behind and an existing one unchanged.
    dst_path = Path(dst)
    seen: dict[str, Mapping[str, Any]] = {}
    fingerprints: set[str] = set()
    precisions: set[str] = set()
    adapters: dict[str, str] = {}
    selections: dict[tuple[str, str], dict[str, Any]] = {}
    if dst_path.exists():
        with ResultsStore(dst_path, readonly=True) as existing:
            seen = {r["key"]: r for r in existing.rows("trials")}
            fingerprints = existing.fingerprints()
            precisions = existing.precisions()
            adapters = existing.adapter_hashes()
            selections = existing.selections()
    tables: dict[str, list[dict[str, Any]]] = {name: [] for name in TABLES}
    for src in srcs:
        if dst_path.exists() and Path(src).resolve() == dst_path.resolve():
            continue
        with ResultsStore(src, readonly=True) as store:
            fingerprints |= store.fingerprints()
            precisions |= store.precisions()
            for name, digest in store.adapter_hashes().items():
                if adapters.setdefault(name, digest) != digest:
                    raise StoreConflictError(f"stores hold results of different weights for adapter {name!r} ({src})")
            read = {name: store.rows(name) for name in TABLES}
            for key, sel in store.selections().items():
                if selections.setdefault(key, sel) != sel:
                    raise StoreConflictError(f"stores hold different {key[0]} selections for {key[1]!r} ({src})")
        for name in TABLES:
            tables[name].extend(read[name])
        for row in read["trials"]:
            prior = seen.setdefault(row["key"], row)
            if not _same_result(prior, row):
                raise StoreConflictError(f"trial {row['key']} has different results in {src} and another store")
    if len(fingerprints - {""}) > 1:
        raise StoreConflictError(f"stores hold results of different models: {', '.join(sorted(fingerprints))}")
    if len(precisions) > 1:
        raise StoreConflictError(f"stores hold results of different precisions: {', '.join(sorted(precisions))}")
    with ResultsStore(dst_path) as out:
        before = out.count()
        with out._transaction(f"merge into {dst}") as conn:
            for name, rows in tables.items():
                out._insert_rows(conn, name, rows)
        out.check_adapters(adapters)  # the merged store keeps the weights its results belong to
        out.record_selections(selections)  # and the selections its generators followed
        return out.count() - before


#: Deprecated name of :func:`combine_stores` (kept for existing imports; "merge" names weight merging,
#: :mod:`adaptermix.merging`). The CLI command stays ``adaptermix merge``.
merge = combine_stores
