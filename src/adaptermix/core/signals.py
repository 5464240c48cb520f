"""Signal handling shared by the CLI and worker processes."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager


def _raise_exit(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


@contextmanager
def exit_on_sigterm() -> Iterator[None]:
    """Turn SIGTERM (``kill``, a scheduler's stop, ``Process.terminate``) into ``SystemExit(143)`` while
    the block runs, so that ``finally`` blocks run as they do for Ctrl-C: atomic writes remove their
    temporary files and claim files are released instead of being left for the next run to clear.
    Python's default for SIGTERM is to die without unwinding."""
    try:
        previous = signal.signal(signal.SIGTERM, _raise_exit)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
