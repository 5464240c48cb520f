"""Claim files: exclusive, released on exit, stale claims of dead processes taken over."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from adaptermix.claims import claimed, is_stale, release, try_claim


def test_a_claim_is_exclusive_until_released(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "job.claim"
    assert try_claim(path)
    assert path.read_text().split() == [socket.gethostname(), str(os.getpid())]
    assert not try_claim(path)  # held by a live process (this one)
    release(path)
    assert not path.exists()
    release(path)  # releasing twice is harmless
    assert try_claim(path)


def test_claimed_releases_on_error(tmp_path: Path) -> None:
    path = tmp_path / "job.claim"
    with pytest.raises(RuntimeError), claimed(path) as mine:
        assert mine and path.exists()
        raise RuntimeError("boom")
    assert not path.exists()
    with claimed(path) as first, claimed(path) as second:
        assert first and not second
    assert not path.exists()  # the second block did not hold it, so only the first removed it


def test_stale_claim_of_a_dead_process_is_taken_over(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    path = tmp_path / "job.claim"
    path.write_text(f"{socket.gethostname()} {int(dead.stdout)}\n")
    assert is_stale(path)
    assert try_claim(path)
    assert path.read_text().split()[1] == str(os.getpid())


def test_claims_from_other_hosts_and_fresh_empty_claims_are_respected(tmp_path: Path) -> None:
    other = tmp_path / "other.claim"
    other.write_text("some-other-host 1\n")
    assert not is_stale(other) and not try_claim(other)
    empty = tmp_path / "empty.claim"
    empty.write_text("")
    assert not is_stale(empty)  # its writer may be between create and write
    old = 1_000_000_000
    os.utime(empty, (old, old))
    assert is_stale(empty) and try_claim(empty)


def test_sigterm_unwinds_and_releases_the_claim(tmp_path: Path) -> None:
    import signal

    from adaptermix.signals import exit_on_sigterm

    path = tmp_path / "job.claim"
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(SystemExit) as exc, exit_on_sigterm(), claimed(path) as mine:
        assert mine
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(1000):  # the handler runs between bytecodes; give it a moment
            pass
        pytest.fail("SIGTERM did not interrupt the block")
    assert exc.value.code == 143
    assert not path.exists()  # released by the unwinding, not left stale
    assert signal.getsignal(signal.SIGTERM) == before  # the handler is restored


def test_cli_reports_sigterm_after_cleanup(tmp_path: Path) -> None:
    """A terminated command exits 143 with one line and leaves no temporary file."""
    script = (
        "import os, signal, sys\n"
        "from adaptermix.cli.base import COMMANDS\n"
        "from adaptermix.cli import main as m\n"
        "from adaptermix.io import atomic_path\n"
        "def run(args):\n"
        f"    with atomic_path({str(tmp_path / 'out.txt')!r}) as tmp:\n"
        "        tmp.write_text('half')\n"
        "        os.kill(os.getpid(), signal.SIGTERM)\n"
        "        for _ in range(10**6): pass\n"
        "parser = m.build_parser()\n"
        "m.build_parser = lambda: parser\n"
        "parser.parse_args = lambda argv=None: type('A', (), {'verbose': False, '_run': staticmethod(run)})()\n"
        "sys.exit(m.main([]))\n"
    )
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert res.returncode == 143, res.stderr
    assert res.stderr.strip() == "adaptermix: terminated"
    assert list(tmp_path.iterdir()) == []  # no out.txt, no .out.txt.*.tmp
