"""Claim files: several processes work through one resumable grid without running a job twice.

A claim is a file created with ``O_CREAT | O_EXCL`` (atomic on local filesystems and NFSv3+) beside the
job's result, holding ``host pid``. Whoever creates it runs the job and removes the claim afterwards,
also when the job raises or the process is interrupted. A claim whose process is gone (killed with
SIGKILL, machine rebooted) is *stale*: on the same host a dead pid is detected and the claim taken over;
a claim from another host is respected (its liveness cannot be checked from here), so a crashed remote
worker's claims must be removed by hand (``*.claim`` files) before its jobs are run elsewhere.

This is what Ray or a job queue would give on a cluster; for a handful of local worker processes sharing a
folder, a file per job is the whole coordination and survives any one of them being killed.
"""

from __future__ import annotations

import errno
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

#: An empty claim (its writer died between create and write) is stale after this many seconds.
EMPTY_CLAIM_GRACE_S = 30.0


def _owner() -> str:
    return f"{socket.gethostname()} {os.getpid()}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def is_stale(path: Path) -> bool:
    """True when ``path`` is a claim whose owner on this host is no longer running."""
    try:
        text = path.read_text(encoding="utf-8").split()
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return False
    if len(text) != 2 or not text[1].isdigit():
        return age > EMPTY_CLAIM_GRACE_S
    host, pid = text[0], int(text[1])
    return host == socket.gethostname() and not _pid_alive(pid)


def try_claim(path: str | os.PathLike[str]) -> bool:
    """Create the claim ``path`` for this process; False when another live process holds it."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(2):  # a second try after removing a stale claim
        try:
            fd = os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            if not is_stale(target):
                return False
            target.unlink(missing_ok=True)
            continue
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(_owner() + "\n")
        return True
    return False


def release(path: str | os.PathLike[str]) -> None:
    """Remove this process's claim (no error if it is already gone)."""
    try:
        Path(path).unlink()
    except OSError as exc:
        if exc.errno != errno.ENOENT:
            raise


@contextmanager
def claimed(path: str | os.PathLike[str]) -> Iterator[bool]:
    """``with claimed(p) as mine:`` — ``mine`` says whether this process holds the claim; it is released
    on leaving the block, whatever happens inside."""
    mine = try_claim(path)
    try:
        yield mine
    finally:
        if mine:
            release(path)
