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
