"""Fixtures of the reliability suite: one tiny on-disk model, one sweep and its uninterrupted reference."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from adaptermix.backbone.loading import Encoder
from adaptermix.sweep.runner import run_sweep
from adaptermix.sweep.spec import describe_expansion, load_spec
from reliability.harness import make_sweep, save_tiny_model, torch_threads


@dataclass(frozen=True)
class SweepCase:
    """A sweep on the tiny model: its spec, the number of trials, and a store of an uninterrupted run."""

    root: Path
    model: Path
    encoder: Encoder
    spec: Path
    total: int
    reference: Path


@pytest.fixture(autouse=True)
def quiet_transformers() -> Iterator[None]:
    """The tiny checkpoint has no pooler; transformers' load report would add lines to stderr."""
    from transformers.utils import logging as hf_logging

    before = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    yield
    hf_logging.set_verbosity(before)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Encoder]:
    """The tiny BERT saved with ``save_pretrained`` and loaded back by path, as a child process does."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    return save_tiny_model(tmp_path_factory.mktemp("tiny-model"))


def _sweep_case(
    tmp_path_factory: pytest.TempPathFactory, tiny_model: tuple[Path, Encoder], n: int
) -> SweepCase:
    model, encoder = tiny_model
    root = tmp_path_factory.mktemp(f"sweep{n}")
    spec = make_sweep(root, encoder, n_adapters=n)
    loaded = load_spec(spec)
    total = describe_expansion(loaded, list(loaded.pool_dirs())).total
    reference = root / "reference.sqlite"
    with torch_threads(1):  # the children run with one thread too
        run_sweep(loaded, reference, encoder=encoder, progress=False)
    return SweepCase(root, model, encoder, spec, total, reference)


@pytest.fixture(scope="session")
def sweep_case(tmp_path_factory: pytest.TempPathFactory, tiny_model: tuple[Path, Encoder]) -> SweepCase:
    """5 adapters x every subset x (clean, FGSM) = 160 trials (80 mixtures), run once, uninterrupted."""
    return _sweep_case(tmp_path_factory, tiny_model, 5)


@pytest.fixture(scope="session")
def large_sweep_case(tmp_path_factory: pytest.TempPathFactory, tiny_model: tuple[Path, Encoder]) -> SweepCase:
    """6 adapters: 384 trials. The Ray driver records whole batches (8 trials) at once, so 5 kills that
    must each land before the end need more trials than the local backend does."""
    return _sweep_case(tmp_path_factory, tiny_model, 6)
