"""Atomic file output: write to a temporary file in the same directory, fsync, then rename.

A crash or a kill at any moment leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from adaptermix.core.errors import AdapterMixError
from adaptermix.core.hashing import short_hash


class OutputError(AdapterMixError):
    """The output location cannot be written (read-only, disk full, not a directory)."""


class OutputExistsError(OutputError):
    """The output already holds work that this command did not write for the same inputs."""


def follow_link(path: str | os.PathLike[str]) -> Path:
    """``path`` with a symbolic link (or a chain of them) followed to its target, even a missing one.

    Outputs are written *into* what a link points at, leaving the link in place: replacing the link
    itself would cut it off from its folder and leave the old folder behind.
    """
    p = Path(path)
    return p.resolve() if p.is_symlink() else p


def _umask() -> int:
    """The process umask, read without changing it (os.umask would race with other threads)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022


def _default_mode(path: Path, directory: bool) -> None:
    """mkstemp/mkdtemp create 0600/0700 entries; give outputs the usual umask-based permissions."""
    try:
        os.chmod(path, (0o777 if directory else 0o666) & ~_umask())
    except OSError:
        pass


def _blocking_file(folder: Path) -> Path | None:
    """The first existing ancestor-or-self of ``folder`` that is not a folder (so mkdir cannot work)."""
    for candidate in (folder, *folder.parents):
        if candidate.exists():
            return None if candidate.is_dir() else candidate
    return None


def ensure_parent(target: Path, what: str) -> None:
    """Create ``target``'s folder; a failure is one line that names the cause, e.g. a file in the way.

    ``mkdir`` reports a file in the way as EEXIST ("File exists") or ENOTDIR, which reads as if
    ``target`` itself existed; naming the blocking file says what to fix.
    """
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        blocker = _blocking_file(target.parent)
        reason = f"{blocker} is a file, not a folder" if blocker else (exc.strerror or str(exc))
        raise OutputError(f"cannot {what} {target}: {reason}") from None


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it is renamed onto ``path``.

    On any exception the temporary file is removed and ``path`` is untouched.
    """
    target = follow_link(path)
    ensure_parent(target, "write")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise OutputError(f"cannot write {target}: {exc.strerror or exc}") from None
    os.close(fd)
    tmp_path = Path(tmp)
    _default_mode(tmp_path, directory=False)
    try:
        yield tmp_path
        with open(tmp_path, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, target)
    except OSError as exc:
        tmp_path.unlink(missing_ok=True)
        raise OutputError(f"cannot write {target}: {exc.strerror or exc}") from None
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as pretty JSON to ``path`` atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str], *, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary directory that replaces ``path`` as a whole when the block succeeds.

    Used for multi-file artefacts (an adapter directory): readers see the old directory or the new one.
    A symbolic link is followed: its target folder is replaced and the link stays as it was. Nothing is
    left behind: not the temporary folder, nor the old one.
    """
    target = follow_link(path)
    if target.exists() and not target.is_dir():
        raise OutputError(f"cannot write {target}: exists and is not a directory")
    if target.exists() and not overwrite:
        raise OutputError(f"cannot write {target}: already exists")
    ensure_parent(target, "write")
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    except OSError as exc:
        raise OutputError(f"cannot write {target}: {exc.strerror or exc}") from None
    _default_mode(tmp, directory=True)
    try:
        yield tmp
        old = None
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, old)
        os.replace(tmp, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)  # a real folder (links are followed above)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise OutputError(f"cannot write {target}: {exc.strerror or exc}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


# ---------------------------------------------------------------------------------------------------
# Outputs never silently replace work

OUTPUT_STAMP = ".adaptermix-output.json"
"""Hidden file recording which command wrote an output, and from which inputs.

A folder output carries it inside (entry ``"."``); a file output is recorded in the stamp of the folder
that holds it (entry: the file's name). Re-running the same command on the same inputs may replace its
own output (resuming, idempotent re-runs); anything else needs ``--overwrite``.
"""

OutputKind = Literal["dir", "file"]


def output_stamp(command: str, inputs: Any) -> dict[str, str]:
    """The stamp of ``command`` run on ``inputs`` (any JSON-able value): the command and an input hash."""
    blob = json.dumps(inputs, sort_keys=True, default=str).encode("utf-8")
    return {"command": command, "inputs": short_hash(blob)}


def _stamp_place(path: Path, kind: OutputKind) -> tuple[Path, str]:
    """(stamp file, entry) recording the output at ``path``."""
    return (path / OUTPUT_STAMP, ".") if kind == "dir" else (path.parent / OUTPUT_STAMP, path.name)


def _read_stamps(stamp_file: Path) -> dict[str, Any]:
    try:
        data = json.loads(stamp_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    entries = data.get("outputs") if isinstance(data, dict) else None
    return entries if isinstance(entries, dict) else {}


def _same(found: Any, stamp: dict[str, str]) -> bool:
    return isinstance(found, dict) and all(found.get(k) == v for k, v in stamp.items())


def check_output(
    path: str | os.PathLike[str],
    *,
    stamp: dict[str, str],
    overwrite: bool,
    kind: OutputKind = "dir",
    same: bool = False,
) -> Path:
    """Refuse to replace existing work at ``path``; return where the output really goes.

    Allowed: nothing there, an empty folder, an output that ``stamp``'s command wrote from the same
    inputs (or ``same``: the caller knows it is its own by other means), or anything with ``overwrite``.
    Otherwise one line naming the path and ``--overwrite`` (:class:`OutputExistsError`, exit status 2).
    A symbolic link is judged (and later written) by its target; a file where a folder is expected, or
    a folder where a file is expected, is refused even with ``overwrite``.
    """
    target = follow_link(path)
    shown = Path(path)
    if not target.exists():
        return target
    if kind == "dir" and not target.is_dir():
        raise OutputError(f"cannot write {shown}: it is a file, not a folder")
    if kind == "file" and target.is_dir():
        raise OutputError(f"cannot write {shown}: it is a folder, not a file")
    if kind == "dir" and not any(p.name != OUTPUT_STAMP for p in target.iterdir()):
        return target
    stamp_file, entry = _stamp_place(target, kind)
    found = _read_stamps(stamp_file).get(entry)
    if overwrite or same or _same(found, stamp):
        return target
    if isinstance(found, dict) and found.get("command"):
        whose = f"written by `adaptermix {found['command']}`" + (
            " with other inputs" if found.get("command") == stamp["command"] else "")
    else:
        whose = "not written by adaptermix" if kind == "file" or not stamp_file.is_file() else "other work"
    raise OutputExistsError(
        f"{shown} already exists ({whose}); pass --overwrite to replace it, or choose another output"
    )


def mark_output(path: str | os.PathLike[str], stamp: dict[str, str], kind: OutputKind = "dir") -> None:
    """Record that ``stamp``'s command wrote the output at ``path`` (see :func:`check_output`)."""
    stamp_file, entry = _stamp_place(follow_link(path), kind)
    entries = _read_stamps(stamp_file)
    entries[entry] = dict(stamp)
    atomic_write_json(stamp_file, {"outputs": entries})

