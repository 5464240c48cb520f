"""A full disk or a read-only output directory: one clear line, exit 2, earlier results intact, and no
temporary or half-written file left behind.

"Disk full" is a real kernel limit, portable and unprivileged: the child runs under ``RLIMIT_FSIZE``
(Python ignores SIGXFSZ, so writes past the limit fail with EFBIG, which SQLite reports as an I/O error
and a short write as "disk full"). "Read-only" is ``chmod 555`` for a normal user and ``chattr +i`` for
root (root ignores permission bits); where neither works the tests skip.
"""

from __future__ import annotations

import contextlib
import os
import re
import resource
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from adaptermix.cli.main import main
from adaptermix.sweep.runner import run_sweep
from adaptermix.sweep.spec import load_spec
from adaptermix.sweep.store import ResultsStore
from reliability.harness import child_env, compare_stores, sweep_command, torch_threads

DENIED = r"(Permission denied|Operation not permitted|Read-only file system)"


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """Make ``folder`` refuse new entries for this process, even as root; restore it afterwards."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        undo = ["chmod", "755", str(folder)]
    elif (
        shutil.which("chattr")
        and subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode == 0
    ):
        undo = ["chattr", "-i", str(folder)]
    else:
        pytest.skip("cannot make a folder read-only for root here (no chattr +i)")
    try:
        probe = folder / ".probe"
        try:
            probe.touch()
        except OSError:
            pass
        else:
            probe.unlink()
            pytest.skip("the folder stayed writable")
        yield
    finally:
        subprocess.run(undo, check=True)


def _rows(store: Path) -> dict[str, dict]:
    with ResultsStore(store, readonly=True) as s:
        assert s.integrity_check() == "ok"
        return {r["key"]: r for r in s.rows()}


def _stray(folder: Path) -> list[str]:
    """Temporary or half-written files: anything but the store and SQLite's own -wal / -shm."""
    return sorted(p.name for p in folder.iterdir() if not re.fullmatch(r"[^.].*\.sqlite(-wal|-shm)?", p.name))


def _partial_store(case, store: Path) -> dict[str, dict]:
    """The k = 1 trials of the sweep (10 of 160), written by an earlier run."""
    with torch_threads(1):
        run_sweep(load_spec(case.spec, ["subsets.ks=[1]"]), store, encoder=case.encoder, progress=False)
    rows = _rows(store)
    ResultsStore(store).close()  # the last connection out checkpoints and removes -wal / -shm
    assert sorted(p.name for p in store.parent.iterdir()) == [store.name]
    return rows


def _main(capsys, argv: list[str]) -> tuple[int, str]:
    code = main(argv)
    return code, capsys.readouterr().err


def _file_size_limit(limit: int):
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))

    return apply


def test_disk_full_during_sweep_keeps_earlier_results(sweep_case, tmp_path):
    store = tmp_path / "full.sqlite"
    earlier = _partial_store(sweep_case, store)
    res = subprocess.run(
        sweep_command(sweep_case.spec, store),
        env=child_env(),
        capture_output=True,
        text=True,
        preexec_fn=_file_size_limit(64 * 1024),
        timeout=300,
    )
    what = r"(disk full \(database or disk is full\)|I/O error \(disk I/O error\))"
    assert res.returncode == 2
    assert re.fullmatch(
        rf"adaptermix: error: results store {re.escape(str(store))}: cannot write results: {what}\n",
        res.stderr,
    ), res.stderr
    after = _rows(store)  # integrity "ok", and every earlier row still there, unchanged
    assert len(earlier) < len(after) < sweep_case.total
    assert all(after[k] == row for k, row in earlier.items())
    assert _stray(tmp_path) == []
    # with room again, the resume finishes and matches an uninterrupted run
    with torch_threads(1):
        summary = run_sweep(load_spec(sweep_case.spec), store, encoder=sweep_case.encoder, progress=False)
    assert summary.skipped == len(after)
    assert compare_stores(sweep_case.reference, store).ok


def test_disk_full_during_export_leaves_no_file(sweep_case, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    cmd = [sys.executable, "-m", "adaptermix", "export", str(sweep_case.reference), "-o", str(out / "t.csv")]
    res = subprocess.run(
        cmd,
        env=child_env(),
        capture_output=True,
        text=True,
        preexec_fn=_file_size_limit(40 * 1024),
        timeout=300,
    )
    assert (res.returncode, res.stderr) == (
        2,
        f"adaptermix: error: cannot write {out / 't.csv'}: File too large\n",
    )
    assert list(out.iterdir()) == []


def test_resume_into_read_only_dir(sweep_case, tmp_path, capsys):
    folder = tmp_path / "ro"
    folder.mkdir()
    store = folder / "s.sqlite"
    earlier = _partial_store(sweep_case, store)
    listing = sorted(os.listdir(folder))
    with read_only(folder), torch_threads(1):
        code, err = _main(capsys, ["sweep", str(sweep_case.spec), "--store", str(store), "--no-progress"])
    assert (code, err) == (
        2,
        f"adaptermix: error: results store {store}: cannot open: cannot open the file"
        " (unable to open database file)\n",
    )
    assert sorted(os.listdir(folder)) == listing
    assert _rows(store) == earlier


def test_outputs_into_read_only_dir(sweep_case, tmp_path, capsys):
    folder = tmp_path / "ro"
    folder.mkdir()
    pool = sweep_case.root / "pool"
    no_db = re.escape("cannot open: cannot open the file (unable to open database file)")
    cases = (
        (
            ["export", str(sweep_case.reference), "-o", f"{folder}/t.csv"],
            rf"cannot write {folder}/t\.csv: {DENIED}",
        ),
        (
            ["stats", str(sweep_case.reference), "-o", f"{folder}/st"],
            rf"cannot write {folder}/st/\w+\.csv: {DENIED}",
        ),
        (
            ["mix", str(pool / "alpha"), str(pool / "beta"), "-o", f"{folder}/mixed"],
            rf"cannot write {folder}/mixed: {DENIED}",
        ),
        (
            ["prune", str(pool / "alpha"), "--sparsity", "0.5", "-o", f"{folder}/p"],
            rf"cannot write {folder}/p: {DENIED}",
        ),
        (
            ["sweep", str(sweep_case.spec), "--store", f"{folder}/new.sqlite"],
            rf"results store {folder}/new\.sqlite: {no_db}",
        ),
    )
    with read_only(folder):
        for argv, expected in cases:
            code, err = _main(capsys, argv)
            assert code == 2 and re.fullmatch(f"adaptermix: error: {expected}\n", err), (argv, err)
    assert list(folder.iterdir()) == []


def test_output_under_a_regular_file(sweep_case, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    code, err = _main(capsys, ["export", str(sweep_case.reference), "-o", str(blocker / "t.csv")])
    assert (code, err) == (2, f"adaptermix: error: cannot write {blocker / 't.csv'}: {blocker} is a file, not a folder\n")
    code, err = _main(capsys, ["sweep", str(sweep_case.spec), "--store", str(blocker / "s.sqlite")])
    assert (code, err) == (
        2,
        f"adaptermix: error: cannot create results store {blocker / 's.sqlite'}: {blocker} is a file, not a folder\n",
    )
    assert sorted(os.listdir(tmp_path)) == ["file"]


def test_store_in_read_only_dir_is_readable(sweep_case, tmp_path, capsys):
    folder = tmp_path / "archive"
    folder.mkdir()
    shutil.copy(sweep_case.reference, folder / "s.sqlite")
    with read_only(folder):
        code, err = _main(capsys, ["stats", str(folder / "s.sqlite")])
        assert (code, err) == (0, "")
        assert _main(capsys, ["export", str(folder / "s.sqlite"), "-o", str(tmp_path / "t.csv")])[0] == 0
