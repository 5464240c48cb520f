"""Markdown tables of the AdaMix experiment, computed only from the per-run result files.

Each table has one row per variant (or ``variant:mode`` for an inference mode of the unmerged checkpoint)
and one column per task with its own headline metric (accuracy, F1 for MRPC, MCC for CoLA, Pearson for
STS-B), as mean ± sample std over the seeds that finished, x 100; the best mean of a column is bold. The
average column is given only for rows that have every task of the table.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

SHORT_METRIC = {
    "accuracy": "acc",
    "matthews_correlation": "mcc",
    "pearson": "pearson",
    "f1": "F1",
    "macro_f1": "macro-F1",
    "spearman": "spearman",
}
MODE_LABEL = {"random": "RandomRouting", "fixed": "FixedRouting", "ensemble": "Ensemble"}
ALL_EXPERT_MODES = ("random", "ensemble")  # modes that must keep every expert at inference


class TableLike(Protocol):
    @property
    def title(self) -> str: ...
    @property
    def rows(self) -> list[str]: ...
    @property
    def note(self) -> str: ...
    @property
    def tasks(self) -> list[str] | None: ...


@dataclass(frozen=True)
class ResultRow:
    """The part of one run's result record that the tables use."""

    variant: str
    task: str
    seed: int
    metric: str
    test: Mapping[str, float]
    modes: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    params_trained: int = 0
    params_inference: int = 0

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ResultRow:
        return cls(
            d["variant"],
            d["task"],
            int(d["seed"]),
            d["metric"],
            d["test"],
            d.get("modes") or {},
            int(d.get("params_trained") or 0),
            int(d.get("params_inference") or 0),
        )

    def value(self, mode: str | None) -> float | None:
        """The headline metric under ``mode`` (None: the merged / ordinary evaluation)."""
        metrics = self.test if mode is None else self.modes.get(mode)
        return None if metrics is None else metrics.get(self.metric)


def _split(row_key: str) -> tuple[str, str | None]:
    variant, _, mode = row_key.partition(":")
    return variant, mode or None


def _fmt_params(n: int) -> str:
    return f"{n / 1e6:.2f}M" if n >= 1e6 else f"{n / 1e3:.0f}k"


def _cell(values: list[float]) -> str:
    mean = statistics.fmean(values) * 100
    std = statistics.stdev(values) * 100 if len(values) > 1 else float("nan")
    spread = f" ± {std:.1f}" if len(values) > 1 else ""
    return f"{mean:.1f}{spread} ({len(values)})"


def render_table(
    table: TableLike, rows: Sequence[ResultRow], labels: Mapping[str, str], tasks: Sequence[str]
) -> str:
    """One Markdown table (see the module docstring)."""
    values: dict[tuple[str, str], list[float]] = defaultdict(list)
    params: dict[str, int] = {}
    metric_of: dict[str, str] = {}
    for r in rows:
        metric_of[r.task] = r.metric
        for key in table.rows:
            variant, mode = _split(key)
            v = r.value(mode) if r.variant == variant else None
            if v is not None:
                values[(key, r.task)].append(v)
                params[key] = r.params_trained if mode in ALL_EXPERT_MODES else r.params_inference
    cols = [t for t in (table.tasks or tasks) if any((k, t) in values for k in table.rows)]
    if not cols:
        return f"### {table.title}\n\n(no finished runs yet)\n"
    best = {t: max(statistics.fmean(values[(k, t)]) for k in table.rows if (k, t) in values) for t in cols}
    head = (
        ["Model", "#Params"]
        + [f"{t} ({SHORT_METRIC.get(metric_of[t], metric_of[t])})" for t in cols]
        + ["Avg"]
    )
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key in table.rows:
        variant, mode = _split(key)
        label = labels.get(variant, variant) + (f"-{MODE_LABEL.get(mode, mode)}" if mode else "")
        cells = []
        for t in cols:
            vs = values.get((key, t))
            text = _cell(vs) if vs else "–"
            cells.append(
                f"**{text}**" if vs and statistics.fmean(vs) == best[t] and len(table.rows) > 1 else text
            )
        means = [statistics.fmean(values[(key, t)]) * 100 for t in cols if (key, t) in values]
        avg = f"{statistics.fmean(means):.1f}" if len(means) == len(cols) else "–"
        lines.append(
            "| " + " | ".join([label, _fmt_params(params[key]) if key in params else "–", *cells, avg]) + " |"
        )
    note = f"\n{table.note.strip()}\n" if table.note.strip() else ""
    return f"### {table.title}\n\n" + "\n".join(lines) + "\n" + note


def render_tables(
    tables: Sequence[TableLike],
    rows: Sequence[ResultRow],
    labels: Mapping[str, str],
    tasks: Sequence[str],
    header: str = "",
) -> str:
    """Every configured table, preceded by ``header`` (the settings the numbers were produced with)."""
    parts = ["# AdaMix experiment results\n", header + "\n" if header else ""]
    parts += [render_table(t, rows, labels, tasks) for t in tables]
    return "\n".join(p for p in parts if p)
