"""The paper's figures, one function each. Every function takes data already read from the results
store or the study's JSON files and returns a matplotlib Figure (save it with :func:`plots.save_figure`);
none of them computes a mixture or a metric.

Metrics are plotted in their own units (accuracy in [0, 1]); FSD statistics in percent. Figures that
average over targets weigh every target equally (as the paper's Fig. 7 and 8 do).
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.axis import Axis
from matplotlib.ticker import MaxNLocator

from adaptermix.evaluations.registry import colour_of, label_of, report_order
from adaptermix.report.plots import annotated_heatmap, fsd_heatmap, plt
from adaptermix.report.tables import FSD_NAMES
from adaptermix.sweep.stats import ALL, GreedyRow, KStats, RuleRow

BAR_COLOR = "skyblue"  # the paper's sky-blue FSD bars
MIX_COLOR = "tab:red"  # solid red: accuracy after mixing
SINGLE_COLOR = "tab:blue"  # dashed blue: the standalone adapter
Figure = plt.Figure


def _integer_ticks(axis: Axis) -> None:
    """Only integer ticks on ``axis`` (mixture sizes), keeping its default (Auto, a MaxN) locator."""
    locator = axis.get_major_locator()
    if isinstance(locator, MaxNLocator):
        locator.set_params(integer=True)


def _grid(n: int, panel: tuple[float, float] = (3.2, 2.5), ncols: int = 4) -> tuple[Figure, list[Any]]:
    """A figure with ``n`` panels in a grid (unused cells removed)."""
    ncols = max(1, min(ncols, n))
    nrows = max(1, math.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(panel[0] * ncols, panel[1] * nrows + 0.6), squeeze=False)
    flat = list(axes.ravel())
    for ax in flat[n:]:
        fig.delaxes(ax)
    return fig, flat[:n]


def _finish(fig: Figure, title: str, legend: bool = True) -> Figure:
    if legend:
        handles, labels = [], []
        for ax in fig.axes:
            for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
                if lab not in labels and not lab.startswith("_"):
                    handles.append(h)
                    labels.append(lab)
        if handles:
            fig.legend(
                handles,
                labels,
                loc="lower center",
                ncol=min(4, len(labels)),
                frameon=False,
                bbox_to_anchor=(0.5, -0.02),
            )
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.06 if legend else 0, 1, 0.97))
    return fig


# ------------------------------------------------------------------------------------ Fig. 2 and 4


def similarity_heatmap(similarity: Mapping[str, Any], title: str = "Dataset similarity") -> Figure:
    """Fig. 2a: cosine similarity between dataset centroids, annotated."""
    names = list(similarity["names"])
    values = np.asarray(similarity["matrix"], dtype=float).reshape(len(names), len(names))
    return annotated_heatmap(values, names, title, cmap="magma", colorbar_label="cosine similarity of centroids",
                             fmt=".2f", dark_text=lambda v: v > 0.6,
                             vmin=min(0.0, float(values.min(initial=0))), vmax=1, margin=(1.2, 0.9))


def fsd_matrix_figure(fsd: Mapping[str, Any], title: str = "FSD") -> Figure:
    """Fig. 4: the pool's FSD matrix (``fsd.json``) as an annotated heatmap in percent. The space the FSD
    was computed in (``raw`` parameters or ``dw``) is the colour bar's label."""
    values = np.asarray(fsd["fsd"], dtype=float)
    floor = (fsd.get("noise_floor") or {}).get("floor") or {}
    if any(v is not None for v in floor.values()):
        # The diagonal (0 by definition) shows each domain's noise floor: its FSD to its own replicates.
        values = values.copy()
        for i, name in enumerate(fsd["names"]):
            if floor.get(name) is not None:
                values[i, i] = floor[name]
        title = f"{title}\n(diagonal: noise floor, same domain other seed/sample)"
    fig = fsd_heatmap(values, list(fsd["names"]), title)
    if fsd.get("space"):
        fig.axes[1].set_ylabel(f"FSD (%), {fsd['space']} parameters")
    return fig


# ------------------------------------------------------------------------------------------ Fig. 3


def per_k_grid(
    per_k: Mapping[str, Sequence[KStats]], title: str = "Metric vs number of mixed adapters"
) -> Figure:
    """Fig. 3 / 10-13: per target, the mean metric vs k with a min-max band, one per evaluation."""
    targets = sorted({s.target for rows in per_k.values() for s in rows})
    fig, axes = _grid(len(targets))
    for ax, target in zip(axes, targets, strict=True):
        for evaluation in report_order(per_k):
            rows = sorted((s for s in per_k[evaluation] if s.target == target), key=lambda s: s.k)
            if not rows:
                continue
            k = [s.k for s in rows]
            color = colour_of(evaluation)
            ax.plot(k, [s.mean for s in rows], marker="o", ms=3, color=color, label=label_of(evaluation))
            ax.fill_between(k, [s.min for s in rows], [s.max for s in rows], color=color, alpha=0.18, lw=0)
        metric = next((s.metric_name for rows in per_k.values() for s in rows if s.target == target), "")
        ax.set_title(target, fontsize=10)
        ax.set_xlabel("k (mixed adapters)")
        ax.set_ylabel(metric)
        _integer_ticks(ax.xaxis)
        ax.grid(alpha=0.3)
    return _finish(fig, f"{title} (line: mean, band: min–max over mixtures)")


# ---------------------------------------------------------------------------------------- Fig. 5-6


def _fsd_panel(
    ax: Any,
    x: Sequence[Any],
    bars: Sequence[float],
    line: Sequence[float],
    single: float | None,
    stat: str,
    metric: str,
) -> None:
    """Sky-blue FSD bars (left axis, %), the mixtures' metric (solid red, right axis), the single adapter
    (dashed blue, right axis)."""
    pos = np.arange(len(x))
    ax.bar(pos, np.asarray(bars, dtype=float) * 100, color=BAR_COLOR, label=FSD_NAMES.get(stat, stat))
    labels = [str(v) for v in x]
    tilt = len(labels) > 4 or max((len(v) for v in labels), default=0) > 6  # long domain names overlap
    ax.set_xticks(pos, labels, rotation=40 if tilt else 0, ha="right" if tilt else "center", fontsize=8)
    ax.set_ylabel(f"{FSD_NAMES.get(stat, stat)} (%)", fontsize=8)
    right = ax.twinx()
    right.plot(pos, line, color=MIX_COLOR, marker="o", ms=3, label="mixture")
    if single is not None:
        right.axhline(single, color=SINGLE_COLOR, ls="--", lw=1.2, label="single adapter (k = 1)")
    right.set_ylabel(metric, fontsize=8)


def fsd_pairs_grid(
    rows: Sequence[Mapping[str, Any]],
    single: Mapping[str, float],
    stat: str = "mean_pairwise_fsd",
    title: str = "FSD when mixing two adapters (k = 2)",
) -> Figure:
    """Fig. 5 / 14: per target, one bar per partner (the k = 2 mixture's FSD statistic ``stat``) with the
    mixture's metric and the single adapter's metric. ``rows``: population store rows with k = 2."""
    by_target: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for r in rows:
        if r["k"] == 2 and r.get(stat) is not None:
            by_target[r["target"]].append(r)
    targets = sorted(by_target)
    fig, axes = _grid(len(targets), panel=(3.4, 2.6))
    for ax, target in zip(axes, targets, strict=True):
        picked = sorted(by_target[target], key=lambda r: _partner(r))
        _fsd_panel(
            ax,
            [_partner(r) for r in picked],
            [r[stat] for r in picked],
            [r["metric"] for r in picked],
            single.get(target),
            stat,
            picked[0]["metric_name"],
        )
        ax.set_title(target, fontsize=10)
    return _finish(fig, title)


def _partner(row: Mapping[str, Any]) -> str:
    return next(n for n in json.loads(row["subset_json"]) if n != row["target"])


def fsd_by_k_grid(
    rows: Sequence[Mapping[str, Any]],
    per_k: Sequence[KStats],
    stat: str = "target_sign_change",
    title: str = "FSD when mixing k > 2 adapters",
) -> Figure:
    """Fig. 6 / 15: per target and k >= 2, the mean FSD statistic ``stat`` over the k-mixtures (bars), the
    mean metric (``per_k``) and the single adapter's metric. ``rows``: population store rows."""
    fsd: dict[tuple[str, int], list[float]] = defaultdict(list)
    for r in rows:
        if r["k"] >= 2 and r.get(stat) is not None:
            fsd[(r["target"], r["k"])].append(r[stat])
    metric = {(s.target, s.k): s for s in per_k}
    targets = sorted({t for t, _ in fsd})
    fig, axes = _grid(len(targets), panel=(3.4, 2.6))
    for ax, target in zip(axes, targets, strict=True):
        ks = sorted(k for t, k in fsd if t == target and (t, k) in metric)
        single = metric.get((target, 1))
        _fsd_panel(
            ax,
            ks,
            [float(np.mean(fsd[(target, k)])) for k in ks],
            [metric[(target, k)].mean for k in ks],
            single.mean if single else None,
            stat,
            metric[(target, ks[0])].metric_name if ks else "",
        )
        ax.set_title(target, fontsize=10)
        ax.set_xlabel("k", fontsize=8)
    return _finish(fig, f"{title} (means over the mixtures of each k)")


# ---------------------------------------------------------------------------------------- Fig. 7-8


def greedy_figure(
    greedy: Sequence[GreedyRow], title: str = "Greedy FSD mixing vs empirical bounds"
) -> Figure:
    """Fig. 7: greedy min-FSD / max-FSD mixtures and the empirical upper / lower bound per l, averaged
    over targets (the ``target = "*"`` rows of the statistics). When the store holds AdapterSoup's picks,
    its two selections and random selection (the mean over every evaluated mixture of size l with the
    target) are drawn too, each averaged over the targets that have it at l."""
    rows = sorted((g for g in greedy if g.target == ALL), key=lambda g: g.l)
    ls = [g.l for g in rows]
    fig, ax = plt.subplots(figsize=(6.0, 3.8))
    styles = {
        "upper": ("empirical upper bound", "tab:blue", "--"),
        "greedy_min": ("greedy min-FSD", "tab:green", "-"),
        "greedy_max": ("greedy max-FSD", "tab:purple", "-"),
        "lower": ("empirical lower bound", "tab:red", "--"),
    }
    if has_soup(rows):
        styles.update(SOUP_STYLES)
    for field, (label, color, ls_) in styles.items():
        ys = [getattr(g, field) for g in rows]
        if all(math.isnan(y) for y in ys) and field in SOUP_STYLES:
            continue
        ax.plot(ls, ys, color=color, ls=ls_, marker="o", ms=3, label=label)
    ax.set_xlabel("l (mixed adapters)")
    ax.set_ylabel("metric, mean over targets")
    _integer_ticks(ax.xaxis)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title)
    fig.tight_layout()
    return fig


SOUP_STYLES = {
    "soup_similarity": ("AdapterSoup similarity", "tab:orange", "-"),
    "soup_cluster": ("AdapterSoup cluster", "tab:brown", "-"),
    "random": ("random selection (expected)", "tab:gray", ":"),
}


def has_soup(greedy: Sequence[GreedyRow]) -> bool:
    """Whether any row holds an AdapterSoup pick (then Fig. 7 adds AdapterSoup and random selection)."""
    return any(not (math.isnan(g.soup_similarity) and math.isnan(g.soup_cluster)) for g in greedy)


def rule_drop_figure(rules: Sequence[RuleRow], title: str = "Which rule? The all-domain mixture") -> Figure:
    """Per rule, the mean drop of the all-domain mixture (k = N) from the single adapters in points (bars,
    best first; masked rules with per-domain storage hatched), with the mixture as % of the single adapter."""
    rows = sorted((r for r in rules if r.target == ALL), key=lambda r: r.drop_pts)
    fig, ax = plt.subplots(figsize=(6.4, 0.34 * len(rows) + 1.4))
    y = np.arange(len(rows))
    for i, r in enumerate(rows):
        masked = r.storage_bits_per_param > 0
        ax.barh(i, r.drop_pts, color="tab:orange" if masked else BAR_COLOR, hatch="//" if masked else None,
                edgecolor="black", lw=0.4)
        ax.text(max(r.drop_pts, 0.0), i, f" {r.drop_pts:.1f} pts ({r.pct_of_single:.0f} %)", va="center", fontsize=7)
    ax.set_yticks(y, [r.rule for r in rows], fontsize=7)
    ax.invert_yaxis()
    ax.axvline(0.0, color="black", lw=0.8)
    ax.set_xlabel("mean drop from the single adapters (points; hatched: 1 bit/param per domain)")
    ax.grid(alpha=0.3, axis="x")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def sparsity_figure(
    curve: Sequence[tuple[float, float, int]], title: str = "Single sparse adapters"
) -> Figure:
    """Fig. 8a: the single-adapter metric averaged over domains vs sparsity (0% = dense)."""
    fig, ax = plt.subplots(figsize=(5.0, 3.6))
    x = [s * 100 for s, _, _ in curve]
    ax.plot(x, [m for _, m, _ in curve], marker="o", color="tab:green", label="sparse adapter")
    dense = next((m for s, m, _ in curve if s == 0), None)
    if dense is not None:
        ax.axhline(dense, color=SINGLE_COLOR, ls="--", lw=1.2, label="dense adapter")
    ax.set_xlabel("sparsity (% of weights pruned)")
    ax.set_ylabel("metric, mean over domains")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title)
    fig.tight_layout()
    return fig


SPARSE_STYLES = {"dense mean": ("tab:red", "--"), "dense max (upper bound)": ("tab:blue", "--")}
SPARSE_COLORS = ("tab:green", "tab:purple", "tab:brown", "tab:olive")


def sparse_mixing_figure(
    curves: Mapping[str, Mapping[int, float]], title: str = "Mixing sparse adapters"
) -> Figure:
    """Fig. 8b: per k, dense mean (dashed red), dense max (dashed blue, the empirical upper bound) and the
    mean over mixtures of sparse adapters (solid), each averaged over targets."""
    fig, ax = plt.subplots(figsize=(5.6, 3.8))
    extra = iter(SPARSE_COLORS * 4)
    for name, curve in curves.items():
        color, ls = SPARSE_STYLES.get(name) or (next(extra), "-")
        ks = sorted(curve)
        ax.plot(ks, [curve[k] for k in ks], color=color, ls=ls, marker="o", ms=3, label=name)
    ax.set_xlabel("k (mixed adapters)")
    ax.set_ylabel("metric, mean over targets")
    _integer_ticks(ax.xaxis)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title)
    fig.tight_layout()
    return fig
