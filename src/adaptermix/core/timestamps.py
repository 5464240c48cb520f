"""The one time stamp: ``created_at`` of artefacts, masked artefacts and results stores (and a store's
``started_at``). UTC, ISO 8601 to the second, e.g. ``2025-01-31T12:00:00+00:00``: the format every
artefact written so far carries, so old ones compare and load unchanged."""

from __future__ import annotations

from datetime import datetime, timezone


def utc_stamp() -> str:
    """The current UTC time as ``YYYY-MM-DDTHH:MM:SS+00:00``."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
