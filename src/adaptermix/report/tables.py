"""The report's tables (Table 1, FSD-accuracy correlations, per-k statistics, greedy vs bounds, single
adapters, pruning) as plain :class:`Table` values, written as CSV and rendered as HTML.

Every number comes from :func:`adaptermix.sweep.stats.compute_stats`'s tables or directly from stored
rows; the helpers here only select, average over targets and convert units. Differences of metrics are
shown in percentage points (pp: the metric x 100), as in the paper's Table 1.
"""

from __future__ import annotations

import csv
import io
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from adaptermix.core.io import atomic_write_text
from adaptermix.evaluations.registry import label_of, report_order
from adaptermix.sweep.stats import (
    ALL,
    CorrelationRow,
    DropRow,
    GreedyRow,
    KStats,
    RuleRow,
    SelectionRow,
    SoupChoiceRow,
)
from adaptermix.training.metrics import NEAR_BASELINE_PP, is_near

PP = 100.0  # metric -> percentage points
MEAN_SIGNED_DROP = "mean signed drop"
MEAN_ABS_DROP = "mean absolute drop"
FSD_NAMES = {
    "mean_pairwise_fsd": "mean pairwise FSD",
    "target_sign_change": "target sign-change fraction",
}


@dataclass(frozen=True)
class Table:
    """A titled table: ``name`` is its file stem, ``rows`` hold plain values (float, int, str, None)."""

    name: str
    title: str
    columns: list[str]
    rows: list[list[Any]]
    note: str = ""
    digits: int = 3  # decimals shown in HTML (the CSV keeps full precision)

    def csv(self) -> str:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(self.columns)
        writer.writerows([["" if v is None else v for v in row] for row in self.rows])
        return buf.getvalue()

    def write_csv(self, out_dir: str | Path) -> Path:
        path = Path(out_dir) / f"{self.name}.csv"
        atomic_write_text(path, self.csv())
        return path


def fmt(value: Any, digits: int = 2) -> str:
    """A cell as text: floats rounded, NaN / None as a dash."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}" if abs(value) >= 10**-digits or value == 0 else f"{value:.2g}"
    return str(value)


# ------------------------------------------------------------------------------ averages over targets


def mean_over_targets(per_k: Sequence[KStats], stat: str = "mean") -> dict[int, float]:
    """k -> the per-target ``stat`` (mean, max, min, std) averaged over targets (each target weighs 1)."""
    by_k: dict[int, list[float]] = defaultdict(list)
    for s in per_k:
        by_k[s.k].append(getattr(s, stat))
    return {k: float(np.mean(v)) for k, v in sorted(by_k.items())}


def sparsity_curve(
    dense_per_k: Sequence[KStats], sparse: Mapping[float, Sequence[KStats]]
) -> list[tuple[float, float, int]]:
    """Fig. 8a: (sparsity, single-adapter metric averaged over domains, domains); 0 = dense (k = 1)."""
    levels = {0.0: [s for s in dense_per_k if s.k == 1]}
    levels.update({s: [r for r in rows if r.k == 1] for s, rows in sparse.items()})
    return [
        (s, float(np.mean([r.mean for r in rows])), len(rows)) for s, rows in sorted(levels.items()) if rows
    ]


def sparse_mixing_curves(
    dense_per_k: Sequence[KStats],
    sparse: Mapping[float, Sequence[KStats]],
    guided: Mapping[float, Sequence[KStats]] | None = None,
) -> dict[str, dict[int, float]]:
    """Fig. 8b: curve name -> k -> metric averaged over targets: dense mean, dense max (the empirical
    upper bound), and the mean over mixtures of each sparsity level — every layer pruned (``sparse``) and,
    when given, Alg. 4's FSD-guided choice of the m most conflicting layers (``guided``)."""
    curves = {
        "dense mean": mean_over_targets(dense_per_k),
        "dense max (upper bound)": mean_over_targets(dense_per_k, "max"),
    }
    for s, rows in sorted(sparse.items()):
        if any(r.k > 1 for r in rows):
            curves[f"{s:.0%} sparse, mean"] = mean_over_targets(rows)
    for s, rows in sorted((guided or {}).items()):
        if any(r.k > 1 for r in rows):
            curves[f"{s:.0%} sparse, FSD-guided m layers, mean"] = mean_over_targets(rows)
    return {name: c for name, c in curves.items() if c}


# -------------------------------------------------------------------------------------------- tables


def drop_table(drops: Mapping[str, Sequence[DropRow]], method: str = "") -> Table:
    """Table 1: signed drop from k = 1 to k = N per target (pp), one row per evaluation; the headline
    average is the mean SIGNED drop (the paper's "absolute" means percentage points, not |drop|), and the
    mean absolute drop follows as a second, labelled column."""
    targets = sorted({d.target for rows in drops.values() for d in rows} - {ALL})
    rows = []
    for evaluation in report_order(drops):
        cell = {d.target: d.drop * PP for d in drops[evaluation]}
        avg = next((d for d in drops[evaluation] if d.target == ALL), None)
        rows.append(
            [
                label_of(evaluation),
                *(cell.get(t) for t in targets),
                cell.get(ALL),
                None if avg is None else avg.abs_drop * PP,
            ]
        )
    return Table(
        f"table1_drops{_suffix(method)}",
        "Table 1: drop from k = 1 to k = N (percentage points; positive = the mixture is worse)",
        ["evaluation", *targets, MEAN_SIGNED_DROP, MEAN_ABS_DROP],
        rows,
        "(metric(k=1) − metric(k=N)) × 100 per target (N = the largest k stored), signed: a negative value "
        f"means the mixture of all N adapters beats the single adapter. {MEAN_SIGNED_DROP}: the headline, "
        f"as in the paper's Table 1 (whose 'absolute' means percentage points); {MEAN_ABS_DROP}: the mean of "
        "|drop| over targets, which counts a gain as a loss.",
        digits=2,
    )


def correlation_table(
    correlations: Mapping[str, Sequence[CorrelationRow]], method: str = "", target: str = ALL
) -> Table:
    """Sections 5.3-5.4: Pearson / Spearman r (two-sided p) between an FSD statistic and the metric; the
    pooled table adds the within-target (repeated-measures) r and p."""
    pooled = target == ALL
    rows = [
        [
            label_of(e),
            FSD_NAMES.get(c.fsd_stat, c.fsd_stat),
            c.k_range,
            c.n,
            c.pearson_r,
            c.pearson_p,
            c.spearman_r,
            c.spearman_p,
            *((c.rm_r, c.rm_p) if pooled else ()),
        ]
        for e in report_order(correlations)
        for c in correlations[e]
        if c.target == target
    ]
    note = (
        "mean pairwise FSD: mean FSD over the pairs of the subset; target sign-change fraction: share of the "
        "target adapter's weights whose sign the mixture flips."
    )
    if pooled:
        note += (
            " Within-target r: repeated-measures correlation (each target's mean of FSD and of the metric "
            "removed, N - T - 1 degrees of freedom), which keeps differences between targets' levels and "
            "metric kinds out of the FSD effect."
        )
    return Table(
        f"correlations{_suffix(method)}",
        "FSD–metric correlation (pooled over targets)" if pooled else f"FSD–metric correlation ({target})",
        ["evaluation", "FSD statistic", "k", "n", "Pearson r", "Pearson p", "Spearman r", "Spearman p"]
        + (["within-target r", "within-target p"] if pooled else []),
        rows,
        note,
    )


def per_k_table(per_k: Mapping[str, Sequence[KStats]], method: str = "") -> Table:
    """Fig. 3's numbers: per evaluation, target and k — count, mean, std, min, max of the metric."""
    rows = [
        [label_of(e), s.target, s.metric_name, s.k, s.count, s.mean, s.std, s.min, s.max]
        for e in report_order(per_k)
        for s in per_k[e]
    ]
    return Table(
        f"per_k{_suffix(method)}",
        "Metric per target and number of mixed adapters k",
        ["evaluation", "target", "metric", "k", "mixtures", "mean", "std", "min", "max"],
        rows,
    )


def greedy_table(greedy: Sequence[GreedyRow], method: str = "") -> Table:
    """Fig. 7's numbers: greedy min-FSD / max-FSD mixing vs the empirical bounds per l (average first)."""
    ordered = sorted(greedy, key=lambda g: (g.target != ALL, g.target, g.l))
    soup = any(not (math.isnan(g.soup_similarity) and math.isnan(g.soup_cluster)) for g in greedy)
    rows = [
        ["average" if g.target == ALL else g.target, g.l, g.greedy_min, g.greedy_max, g.upper, g.lower, g.n]
        + ([g.soup_similarity, g.soup_cluster] if soup else []) + [g.random, g.random_n]
        for g in ordered
    ]
    columns = ["target", "l", "greedy min-FSD", "greedy max-FSD", "upper bound", "lower bound", "n"]
    columns += (["AdapterSoup similarity", "AdapterSoup cluster"] if soup else []) + ["random", "random n"]
    return Table(
        f"greedy{_suffix(method)}",
        "Greedy FSD mixing (Alg. 1) vs empirical bounds" + (", AdapterSoup and random selection" if soup else ""),
        columns,
        rows,
        "n: evaluated subsets of size l (per target) or targets averaged (average rows). random: the mean "
        "metric over the evaluated population mixtures of size l that contain the target (random n of "
        "them), i.e. the expected metric of a uniformly random pick when every such mixture was evaluated.",
    )


def selection_table(rows: Sequence[SelectionRow], method: str = "") -> Table:
    """Per target and l: which selection wins at equal l and by how much (points)."""
    out = [
        [r.target, r.l, r.greedy_min, r.soup_similarity, r.soup_cluster, r.random, r.best, r.margin * PP,
         r.soup_similarity_vs_greedy * PP, r.soup_similarity_vs_random * PP]
        for r in sorted(rows, key=lambda r: (r.target, r.l))
    ]
    return Table(
        f"selection_wins{_suffix(method)}",
        "Which selection wins at equal l (per target)",
        ["target", "l", "greedy min-FSD", "AdapterSoup similarity", "AdapterSoup cluster", "random", "best",
         "margin (pp)", "similarity − greedy (pp)", "similarity − random (pp)"],
        out,
        "margin: the winner's metric minus the runner-up's, in percentage points; l = 1 (the target alone) "
        "is left out. Greedy max-FSD, the paper's adversarial control, is not a contender.",
    )


def selection_wins(rows: Sequence[SelectionRow]) -> dict[str, int]:
    """Selection -> the (target, l) it wins outright (ties count for none)."""
    out: dict[str, int] = defaultdict(int)
    for r in rows:
        if not r.best.startswith("tie"):
            out[r.best] += 1
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def soup_choice_table(rows: Sequence[SoupChoiceRow], method: str = "") -> Table:
    """The adapters AdapterSoup's generators chose per target, in order, with their scores."""
    grouped: dict[tuple[str, str], list[SoupChoiceRow]] = defaultdict(list)
    for r in rows:
        grouped[(r.target, r.generator)].append(r)
    out = []
    for (target, gen), picks in sorted(grouped.items()):
        picks.sort(key=lambda r: r.rank)
        chosen = ", ".join(f"{r.adapter} ({r.score:.2f})" for r in picks[1:]) or "none passed the threshold"
        out.append([target, gen.removeprefix("adaptersoup_"), picks[0].score_kind, chosen,
                    f"{picks[0].target_texts} ({picks[0].n_target_texts} texts)"])
    return Table(
        f"adaptersoup{_suffix(method)}",
        "AdapterSoup's selections (recorded in the store)",
        ["target", "rule", "score", "chosen after the target (score)", "target's texts"],
        out,
        "Candidates are represented by their training texts; the target by a sample of its validation split "
        "(train where the dataset has none); the test split is never read.",
    )


def rule_table(rows: Sequence[RuleRow], method: str = "") -> Table:
    """"Which rule?": per rule (best first), the all-domain mixture against the single adapters."""
    avgs = [r for r in rows if r.target == ALL]
    out = []
    for a in avgs:
        per = [r for r in rows if r.setting == a.setting and r.target != ALL]
        worst = max(per, key=lambda r: r.drop_pts)
        out.append([a.rule, a.evaluation, a.n, a.metric_single, a.metric_all, a.drop_pts, a.pct_of_single,
                    f"{worst.target} ({worst.drop_pts:.1f})", a.storage_bits_per_param, a.storage])
    return Table(
        f"rules{_suffix(method)}",
        "Which rule? The all-domain mixture (k = N) vs the single adapters (k = 1), mean over targets",
        ["rule", "evaluation", "targets", "single", "all-domain", "drop (pp)", "% of single", "worst (pp)",
         "extra bits/param per domain", "per-domain storage"],
        out,
        "drop: single − all-domain in percentage points (positive = the mixture is worse). Masked rules keep a "
        "packed 1-bit mask and one float32 scalar per domain (1 + 32/P bits per parameter); static rules keep "
        "one shared adapter. Per-target values: rules_per_target CSV.",
        digits=3,
    )


def rule_target_table(rows: Sequence[RuleRow], method: str = "") -> Table:
    """The "which rule?" numbers per rule and target."""
    out = [[r.rule, r.evaluation, r.target, r.k, r.metric_single, r.metric_all, r.drop_pts, r.pct_of_single]
           for r in rows if r.target != ALL]
    return Table(
        f"rules_per_target{_suffix(method)}",
        "Which rule? Per target",
        ["rule", "evaluation", "target", "k", "single", "all-domain", "drop (pp)", "% of single"],
        out,
    )


def single_adapter_table(
    single: Mapping[str, Mapping[str, tuple[str, float | None]]],
    baselines: Mapping[str, Mapping[str, float | None]] | None = None,
) -> Table:
    """The test metric of every single adapter: one row per domain, one column per method, the
    constant-prediction baseline (majority training class / training mean) and the methods whose adapter
    is within :data:`NEAR_BASELINE_PP` points of it (or below it) — such an adapter learnt little."""
    methods = sorted(single)
    domains = sorted({d for per in single.values() for d in per})
    baselines = baselines or {}
    rows = []
    for d in domains:
        metric = next(single[m][d][0] for m in methods if d in single[m])
        base = next((b for m in methods if (b := baselines.get(m, {}).get(d)) is not None), None)
        values = [single[m].get(d, ("", None))[1] for m in methods]
        near = [
            m
            for m, v in zip(methods, values, strict=True)
            if v is not None
            and (b := baselines.get(m, {}).get(d)) is not None
            and is_near(v, b)
        ]
        rows.append([d, metric, *values, base, f"⚠ {', '.join(near)}" if near else ""])
    return Table(
        "single_adapters",
        "Single adapters (k = 1): test metric and its constant-prediction baseline",
        ["domain", "metric", *methods, "baseline", f"within {NEAR_BASELINE_PP:g} pts of baseline"],
        rows,
        "baseline: the test metric of always predicting the majority class of the training labels (regression: "
        "the training mean, whose Pearson / Spearman is undefined and shown as 0); – where the artefact "
        f"predates stored baselines. ⚠ marks the methods whose adapter is at most {NEAR_BASELINE_PP:g} "
        "points above it (or below it).",
    )


def sparsity_table(
    curve: Sequence[tuple[float, float, int]], method: str = "", variant: str = ""
) -> Table:
    """Fig. 8a's numbers; ``variant`` names the selection (whole adapter / per layer) in title and file."""
    rows = [[f"{s:.0%}", m, n] for s, m, n in curve]
    return Table(
        f"sparsity{_suffix(method)}{_suffix(variant.split(' ')[0] if variant else '')}",
        "Single sparse adapters: metric averaged over domains" + (f" ({variant})" if variant else ""),
        ["sparsity", "mean metric", "domains"],
        rows,
        "0% = the dense adapter (k = 1). whole adapter: the top (1 − d) of all the adapter's parameters by "
        "magnitude are kept (the paper's Fig. 8a); per layer: every layer is pruned to d on its own.",
    )


def sparse_mixing_table(curves: Mapping[str, Mapping[int, float]], method: str = "") -> Table:
    ks = sorted({k for c in curves.values() for k in c})
    names = list(curves)
    rows = [[k, *(curves[n].get(k) for n in names)] for k in ks]
    return Table(
        f"sparse_mixing{_suffix(method)}",
        "Mixing sparse adapters vs dense mixtures (averaged over targets)",
        ["k", *names],
        rows,
    )


def _suffix(method: str) -> str:
    return f"_{method}" if method else ""


def fsd_floor_table(fsd: Mapping[str, Any], method: str) -> Table | None:
    """Fig. 4 beside its noise floor: each domain's FSD to its replicates, then every domain pair's FSD and
    its excess over the floor, ``FSD(i, j) - (floor_i + floor_j) / 2`` (in percent / pp). None without
    replicates."""
    nf = fsd.get("noise_floor")
    if not nf:
        return None
    rows: list[list[Any]] = []
    for d, f in nf["floor"].items():
        n = len(nf["replicate_fsd"].get(d, []))
        rows.append([f"{d} vs its replicate{'s' if n != 1 else ''}", _pct(f), _pct(f), None, None])
    for r in nf["pairs"]:
        rows.append([f"{r['adapter_a']} vs {r['adapter_b']}", _pct(r["fsd"]), _pct(r["floor_a"]), _pct(r["floor_b"]),
                     _pct(r["excess"])])
    return Table(
        f"fsd_noise_floor_{method}",
        f"FSD against its noise floor ({method})",
        ["pair", "FSD (%)", "floor a (%)", "floor b (%)", "excess over floor (pp)"],
        rows,
        "Floor: FSD between a domain's adapter and a replicate trained with another seed and training sample "
        "(same init). A cross-domain FSD says something about domains only where its excess is clearly > 0.",
        digits=2,
    )


def fsd_kind_table(fsd: Mapping[str, Any], method: str) -> Table | None:
    """FSD by tensor kind: mean over domain pairs, and (with replicates) mean over domain-replicate pairs."""
    rows_in = fsd.get("by_kind")
    if not rows_in:
        return None
    domains = set(fsd.get("names") or [])
    replicate_of = (fsd.get("noise_floor") or {}).get("replicate_of") or {}
    cross: dict[tuple[str, str], list[float]] = defaultdict(list)
    floor: dict[tuple[str, str], list[float]] = defaultdict(list)
    sizes: dict[tuple[str, str], int] = {}
    for r in rows_in:
        key = (r["kind"], r["space"])
        sizes[key] = r["n_params"]
        a, b = r["adapter_a"], r["adapter_b"]
        if a in domains and b in domains:
            cross[key].append(r["fsd"])
        elif replicate_of.get(a) == b or replicate_of.get(b) == a:
            floor[key].append(r["fsd"])
    rows = [[kind, space, sizes[(kind, space)], _pct(_mean(cross.get((kind, space)))),
             _pct(_mean(floor.get((kind, space))))] for kind, space in sizes]
    return Table(
        f"fsd_by_kind_{method}",
        f"FSD by tensor kind ({method})",
        ["kind", "space", "parameters", "mean cross-domain FSD (%)", "mean noise floor (%)"],
        rows,
        "Kinds add back to 'all' as their parameter-count-weighted mean. Noise floor: a domain's adapter vs its "
        "replicates (empty without replicates).",
        digits=2,
    )


def _pct(v: float | None) -> float | None:
    return None if v is None else v * 100


def _mean(v: list[float] | None) -> float | None:
    return sum(v) / len(v) if v else None
