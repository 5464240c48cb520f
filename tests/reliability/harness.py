"""Fault-injection harness shared by the reliability tests and ``bench/soak.py``: re-exported from
:mod:`adaptermix.testing.harness` (``save_tiny_model`` is its ``save_tiny_bert``)."""

from __future__ import annotations

from adaptermix.testing.harness import (
    METRIC_COLUMNS,
    POOL_NAMES,
    FaultRun,
    StoreDiff,
    child_env,
    compare_stores,
    count_trials,
    kill_session,
    make_sweep,
    ray_tmpdir,
    row_is_whole,
    same_result,
    session_processes,
    store_integrity,
    sweep_command,
    sweep_with_kills,
    torch_threads,
)
from adaptermix.testing.harness import save_tiny_bert as save_tiny_model

__all__ = [
    "METRIC_COLUMNS", "POOL_NAMES", "FaultRun", "StoreDiff", "child_env", "compare_stores", "count_trials",
    "kill_session", "make_sweep", "ray_tmpdir", "row_is_whole", "same_result", "save_tiny_model",
    "session_processes", "store_integrity", "sweep_command", "sweep_with_kills", "torch_threads",
]
