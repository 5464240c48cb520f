"""Sweep statistics, read ONLY from the results store (plots and tables never trigger compute).

Tables (each a list of plain dataclass rows):

- ``per_k``: per setting, target and k, the count, mean, variance, std, min and max of the metric
  (Fig. 3 / Section 3.4 "mean and variance"). Variance is the population variance (ddof = 0): with the
  ``all`` generator the rows *are* the whole population of mixtures, and k = 1 / k = N get 0, not NaN.
- ``drops``: per setting and target, the drop from k = 1 to k = N, where N is the largest k stored for
  that target, plus a ``target = "*"`` row averaging over targets (Table 1). ``drop`` is SIGNED,
  ``metric(k=1) - metric(k=N)`` in the metric's own units (x 100 = the paper's percentage points):
  positive means the mixture is worse, negative that it is better. The ``*`` row's ``drop`` (the mean
  signed drop) is Table 1's headline: the paper's "absolute" drop means percentage points, not |drop|.
  ``abs_drop`` is ``|drop|`` per target, and on the ``*`` row the mean of the targets' ``|drop|`` (a
  second view that counts a gain as a loss; not the headline).
- ``correlations``: Pearson and Spearman r with two-sided p-values between an FSD statistic (mean
  pairwise FSD, target sign-change fraction) and the metric, for k = 2, k > 2 and k >= 2 (Sections
  5.3-5.4), pooled over targets (``target = "*"``) and per target. Fewer than 3 points or a constant
  input give NaN. The pooled rows also carry the *within-target* (repeated-measures) correlation
  ``rm_r`` / ``rm_p`` (Bakdash & Marusich 2017): the paper pools mixtures of every target into one
  Pearson r, but targets differ in their metric's level (and kind: accuracy, F1, MCC, Pearson) and in
  their typical FSD, so the pooled r mixes between-target differences into the FSD effect. ``rm_r``
  removes each target's mean from both variables first and tests with N - T - 1 degrees of freedom.
- ``greedy``: per setting, target and size l, the greedy-min-FSD and greedy-max-FSD mixtures' metric
  against the empirical upper and lower bound (max / min over every evaluated subset of size l), plus
  ``target = "*"`` rows averaging over targets (Fig. 7).

A *setting* is everything that is not the mixture (evaluation and its parameters, rule and its parameters,
split, example cap, seed, max length). ``per_k``, ``drops`` and ``correlations`` use the population trials
(tag ``""``: the ``all`` / ``sample`` generators), so greedy picks never bias them; bounds use every
evaluated subset.
"""

from __future__ import annotations

import csv
import io
import math
import warnings
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats as sps

from adaptermix.io import atomic_write_text
from adaptermix.sweep.store import ResultsStore

SETTING_FIELDS = (
    "evaluation",
    "eval_params_json",
    "rule",
    "rule_params_json",
    "split",
    "max_eval_examples",
    "seed",
    "max_length",
)
FSD_STATS = ("mean_pairwise_fsd", "target_sign_change")
ALL = "*"


@dataclass(frozen=True)
class KStats:
    setting: str
    evaluation: str
    target: str
    metric_name: str
    k: int
    count: int
    mean: float
    var: float
    std: float
    min: float
    max: float


@dataclass(frozen=True)
class DropRow:
    setting: str
    evaluation: str
    target: str
    k_max: int | None
    metric_k1: float
    metric_kmax: float
    drop: float
    abs_drop: float
    rel_drop_pct: float


@dataclass(frozen=True)
class CorrelationRow:
    setting: str
    evaluation: str
    target: str
    fsd_stat: str
    k_range: str
    n: int
    pearson_r: float
    pearson_p: float
    spearman_r: float
    spearman_p: float
    # Within-target correlation; only on pooled rows (for one target it would equal pearson_r).
    rm_r: float = math.nan
    rm_p: float = math.nan


@dataclass(frozen=True)
class GreedyRow:
    setting: str
    evaluation: str
    target: str
    l: int  # noqa: E741 - the paper's name for the mixture size in Fig. 7
    greedy_min: float
    greedy_max: float
    upper: float
    lower: float
    n: int


@dataclass(frozen=True)
class SweepStats:
    per_k: list[KStats]
    drops: list[DropRow]
    correlations: list[CorrelationRow]
    greedy: list[GreedyRow]

    def tables(self) -> dict[str, list[Any]]:
        return {
            "per_k": self.per_k,
            "drops": self.drops,
            "correlations": self.correlations,
            "greedy": self.greedy,
        }


# ------------------------------------------------------------------------------------------ helpers


def _setting_labels(rows: Sequence[Mapping[str, Any]]) -> dict[tuple[Any, ...], str]:
    """Short labels: ``evaluation/rule/split``, plus any other field that tells apart two settings which
    would otherwise get the same label (e.g. ``seed=1`` when a store holds two seeds)."""
    base = (0, 2, 4)
    groups: dict[tuple[Any, ...], list[tuple[Any, ...]]] = defaultdict(list)
    for s in {tuple(r[f] for f in SETTING_FIELDS) for r in rows}:
        groups[tuple(s[i] for i in base)].append(s)
    labels = {}
    for head, settings in groups.items():
        varying = [
            i for i in range(len(SETTING_FIELDS)) if i not in base and len({s[i] for s in settings}) > 1
        ]
        for s in settings:
            extra = "".join(f" {SETTING_FIELDS[i].removesuffix('_json')}={s[i]}" for i in varying)
            labels[s] = "/".join(map(str, head)) + extra
    return labels


def _nan(x: float | None) -> float:
    return math.nan if x is None else float(x)


def _correlate(x: Sequence[float], y: Sequence[float]) -> tuple[float, float, float, float]:
    """(Pearson r, p, Spearman r, p); NaN when fewer than 3 points or an input is constant."""
    xa, ya = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(xa) < 3 or np.ptp(xa) == 0 or np.ptp(ya) == 0:
        return (math.nan,) * 4
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p = sps.pearsonr(xa, ya)
        s = sps.spearmanr(xa, ya)
    return float(p.statistic), float(p.pvalue), float(s.statistic), float(s.pvalue)


def repeated_measures_correlation(
    x: Sequence[float], y: Sequence[float], groups: Sequence[Any]
) -> tuple[float, float]:
    """(r, two-sided p) of the repeated-measures correlation of ``x`` and ``y`` over ``groups``.

    The common within-group slope's correlation: centre ``x`` and ``y`` on each group's means, correlate
    the residuals, and test on N - G - 1 degrees of freedom (N points in the G groups of 2+ points;
    a group of one point carries no within-group information). Equals the t-test of x's coefficient in
    the regression ``y ~ x + group``. NaN when there are no degrees of freedom or no within-group spread.
    """
    xa, ya = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    ga = np.asarray(groups)
    xc, yc, n, g = [], [], 0, 0
    for group in np.unique(ga):
        m = ga == group
        if m.sum() < 2:
            continue
        xc.append(xa[m] - xa[m].mean())
        yc.append(ya[m] - ya[m].mean())
        n, g = n + int(m.sum()), g + 1
    df = n - g - 1
    if df < 1:
        return math.nan, math.nan
    xr, yr = np.concatenate(xc), np.concatenate(yc)
    sxx, syy = float(xr @ xr), float(yr @ yr)
    if sxx <= 0 or syy <= 0:
        return math.nan, math.nan
    r = float(np.clip((xr @ yr) / math.sqrt(sxx * syy), -1.0, 1.0))
    if abs(r) == 1.0:
        return r, 0.0
    t = r * math.sqrt(df / (1.0 - r * r))
    return r, float(2.0 * sps.t.sf(abs(t), df))


def _mean(values: Iterable[float]) -> float:
    vals = [v for v in values if not math.isnan(v)]
    return float(np.mean(vals)) if vals else math.nan


# -------------------------------------------------------------------------------------------- tables


def _per_k(pop: Sequence[Mapping[str, Any]], label: Mapping[tuple[Any, ...], str]) -> list[KStats]:
    groups: dict[tuple[Any, ...], list[float]] = defaultdict(list)
    for r in pop:
        groups[(r["_setting"], r["target"], r["metric_name"], r["k"])].append(r["metric"])
    out = []
    for (setting, target, metric_name, k), vals in sorted(groups.items(), key=lambda kv: str(kv[0])):
        a = np.asarray(vals, dtype=np.float64)
        summary = (len(a), float(a.mean()), float(a.var()), float(a.std()), float(a.min()), float(a.max()))
        out.append(KStats(label[setting], setting[0], target, metric_name, k, *summary))
    return sorted(out, key=lambda s: (s.setting, s.target, s.k))


def _drops(per_k: Sequence[KStats]) -> list[DropRow]:
    by_target: dict[tuple[str, str, str], dict[int, float]] = defaultdict(dict)
    for s in per_k:
        by_target[(s.setting, s.evaluation, s.target)][s.k] = s.mean
    rows: list[DropRow] = []
    for (setting, evaluation, target), means in sorted(by_target.items()):
        k_max = max(means)
        if 1 not in means or k_max == 1:
            continue
        drop = means[1] - means[k_max]
        rel = 100.0 * drop / means[1] if means[1] else math.nan
        rows.append(DropRow(setting, evaluation, target, k_max, means[1], means[k_max], drop, abs(drop), rel))
    for setting in sorted({r.setting for r in rows}):
        group = [r for r in rows if r.setting == setting]
        rows.append(
            DropRow(
                setting,
                group[0].evaluation,
                ALL,
                None,
                *(
                    _mean(getattr(r, f) for r in group)
                    for f in ("metric_k1", "metric_kmax", "drop", "abs_drop", "rel_drop_pct")
                ),
            )
        )
    return rows


K_RANGES = {"k=2": lambda k: k == 2, "k>2": lambda k: k > 2, "k>=2": lambda k: k >= 2}


def _correlations(
    pop: Sequence[Mapping[str, Any]], label: Mapping[tuple[Any, ...], str]
) -> list[CorrelationRow]:
    """Vectorised over one setting's rows: a boolean mask per (target, k range), NaN where FSD is missing."""
    by_setting: dict[tuple[Any, ...], list[Mapping[str, Any]]] = defaultdict(list)
    for r in pop:
        by_setting[r["_setting"]].append(r)
    out = []
    for setting, rows in sorted(by_setting.items(), key=lambda kv: str(kv[0])):
        targets = np.array([r["target"] for r in rows])
        ks = np.array([r["k"] for r in rows])
        metric = np.array([r["metric"] for r in rows], dtype=np.float64)
        fsd = {stat: np.array([_nan(r[stat]) for r in rows], dtype=np.float64) for stat in FSD_STATS}
        for target in [ALL, *sorted(set(targets.tolist()))]:
            in_target = np.ones(len(rows), bool) if target == ALL else targets == target
            for stat, x in fsd.items():
                for name, in_range in K_RANGES.items():
                    mask = in_target & in_range(ks) & ~np.isnan(x)
                    if not mask.any():
                        continue
                    corr = _correlate(x[mask], metric[mask])
                    rm = (
                        repeated_measures_correlation(x[mask], metric[mask], targets[mask])
                        if target == ALL
                        else (math.nan, math.nan)
                    )
                    out.append(
                        CorrelationRow(
                            label[setting], setting[0], target, stat, name, int(mask.sum()), *corr, *rm
                        )
                    )
    return out


def _greedy(rows: Sequence[Mapping[str, Any]], label: Mapping[tuple[Any, ...], str]) -> list[GreedyRow]:
    # Distinct subsets per (setting, target, size): a greedy pick is usually also an `all` trial.
    evaluated: dict[tuple[Any, ...], dict[str, float]] = defaultdict(dict)
    picks: dict[tuple[Any, ...], dict[str, float]] = defaultdict(dict)
    for r in rows:
        group = (r["_setting"], r["target"], r["k"])
        evaluated[group][r["subset_json"]] = r["metric"]
        if r["tag"] in ("greedy_min", "greedy_max"):
            picks[group][r["tag"]] = r["metric"]
    out = []
    for (setting, target, size), pick in sorted(picks.items(), key=lambda kv: str(kv[0])):
        vals = list(evaluated[(setting, target, size)].values())
        out.append(
            GreedyRow(
                label[setting],
                setting[0],
                target,
                size,
                pick.get("greedy_min", math.nan),
                pick.get("greedy_max", math.nan),
                max(vals),
                min(vals),
                len(vals),
            )
        )
    out.sort(key=lambda g: (g.setting, g.target, g.l))
    averages = []
    for setting, size in sorted({(g.setting, g.l) for g in out}):
        members = [g for g in out if g.setting == setting and g.l == size]
        averages.append(
            GreedyRow(
                setting,
                members[0].evaluation,
                ALL,
                size,
                _mean(g.greedy_min for g in members),
                _mean(g.greedy_max for g in members),
                _mean(g.upper for g in members),
                _mean(g.lower for g in members),
                len(members),
            )
        )
    return out + averages


def compute_stats(store: ResultsStore | str | Path | Sequence[Mapping[str, Any]]) -> SweepStats:
    """Every statistics table from one consistent snapshot of the store's ``trials`` table (or from
    already-read ``trials`` rows, e.g. a selection of them)."""
    raw: Sequence[Mapping[str, Any]]
    if isinstance(store, ResultsStore):
        raw = store.rows("trials")
    elif isinstance(store, Sequence) and not isinstance(store, str):
        raw = list(store)
    else:
        with ResultsStore(store, readonly=True) as reader:
            raw = reader.rows("trials")
    rows = [{**r, "_setting": tuple(r[f] for f in SETTING_FIELDS)} for r in raw if r["metric"] is not None]
    label = _setting_labels(rows)
    pop = [r for r in rows if r["tag"] == ""]
    per_k = _per_k(pop, label)
    return SweepStats(per_k, _drops(per_k), _correlations(pop, label), _greedy(rows, label))


# -------------------------------------------------------------------------------------------- output


def _cell(column: str, value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}" if column.endswith("_p") else f"{value:.4f}"
    return str(value)


def _columns(table: Sequence[Any], cls: type) -> list[str]:
    return [f.name for f in fields(cls)] if not table else list(asdict(table[0]))


_ROW_TYPES = {"per_k": KStats, "drops": DropRow, "correlations": CorrelationRow, "greedy": GreedyRow}


def write_stats_csv(stats: SweepStats, out_dir: str | Path) -> list[Path]:
    """One CSV per table (``per_k.csv``, ``drops.csv``, ``correlations.csv``, ``greedy.csv``), atomically."""
    paths = []
    for name, table in stats.tables().items():
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        cols = _columns(table, _ROW_TYPES[name])
        writer.writerow(cols)
        writer.writerows([asdict(row)[c] for c in cols] for row in table)
        path = Path(out_dir) / f"{name}.csv"
        atomic_write_text(path, buf.getvalue())
        paths.append(path)
    return paths


def format_table(rows: Sequence[Any], cls: type) -> str:
    """Aligned text table: strings left-aligned, numbers right-aligned."""
    cols = _columns(rows, cls)
    cells = [[_cell(c, asdict(r)[c]) for c in cols] for r in rows]
    width = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(cols)]
    numeric = [bool(rows) and not isinstance(asdict(rows[0])[c], str) for c in cols]

    def line(values: Sequence[str]) -> str:
        return "  ".join(
            v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, width, numeric, strict=True)
        )

    return "\n".join([line(cols), line(["-" * w for w in width]), *(line(r) for r in cells)]).rstrip()


_TITLES = {
    "per_k": "Metric per target and number of mixed adapters k (Fig. 3)",
    "drops": (
        "Drop from k = 1 to k = N (Table 1). drop: signed metric(k=1) - metric(k=N), the headline "
        "(positive = the mixture is worse; x 100 = percentage points); abs_drop: |drop| "
        "(on the * row the mean absolute drop, which counts a gain as a loss)"
    ),
    "correlations": "Correlation between FSD and the metric (Sections 5.3-5.4)",
    "greedy": "Greedy FSD mixing vs empirical bounds (Fig. 7)",
}


def format_tables(stats: SweepStats) -> str:
    """Every table as aligned text for the terminal (empty tables say so)."""
    parts = []
    for name, table in stats.tables().items():
        body = format_table(table, _ROW_TYPES[name]) if table else "(no rows)"
        parts.append(f"{_TITLES[name]}\n{body}")
    return "\n\n".join(parts) + "\n"
