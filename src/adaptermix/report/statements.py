"""One short statement per finding of the paper, computed from a method's stored results.

Each function reads a :class:`~adaptermix.report.data.MethodData` (the store's statistics) and returns a
:class:`Statement`: the paper's claim, what this study's numbers show, and a :class:`Verdict`. The
thresholds used to grade a claim are written into the statement's text so the reader can judge them.
A claim about "every" target / k that holds for most but not all of them is graded *partly*, not
"does not support": an all-or-nothing verdict hid, e.g., sparse mixing winning at 11 of 12 k.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum

import numpy as np

from adaptermix.evaluations.registry import label_of
from adaptermix.report.data import SPARSE_LABELS, MethodData
from adaptermix.report.tables import PP, sparse_mixing_curves, sparsity_curve
from adaptermix.sweep.stats import ALL, CorrelationRow, KStats

NOT_RUN = "not run in this study"
#: A drop smaller than this (percentage points) counts as "competitive" (Finding 4, Sec. 7).
COMPETITIVE_PP = 3.0
#: Attack and clean drops closer than this count as "no notable difference" (Finding 2).
SAME_DROP_PP = 3.0
#: A sparse adapter within this many pp of the dense one counts as "no degradation" (Sec. 7).
NO_LOSS_PP = 1.0


class Verdict(str, Enum):
    """How this study's numbers bear on one of the paper's claims."""

    SUPPORTS = "supports"
    PARTLY = "partly supports"
    CONTRADICTS = "does not support"
    NOT_RUN = "not run"

    @property
    def tally(self) -> str:
        """The verdict as a count's label: "3 supported, 5 partly supported, ..."."""
        return _TALLY[self]

    @classmethod
    def of(cls, holds: bool) -> Verdict:
        return cls.SUPPORTS if holds else cls.CONTRADICTS

    @classmethod
    def share(cls, hits: int, total: int) -> Verdict:
        """All of ``total`` -> supports; more than half -> partly; otherwise does not support."""
        if total and hits == total:
            return cls.SUPPORTS
        return cls.PARTLY if hits > total / 2 else cls.CONTRADICTS


_TALLY = {
    Verdict.SUPPORTS: "supported",
    Verdict.PARTLY: "partly supported",
    Verdict.CONTRADICTS: "not supported",
    Verdict.NOT_RUN: "not run",
}


@dataclass(frozen=True)
class Statement:
    section: str
    paper: str
    result: str
    verdict: Verdict


def _not_run(section: str, paper: str, what: str) -> Statement:
    return Statement(section, paper, f"{what}: {NOT_RUN}.", Verdict.NOT_RUN)


def _metric_word(per_k: Sequence[KStats]) -> str:
    names = {s.metric_name for s in per_k}
    return names.pop() if len(names) == 1 else "metric"


def _r(r: float, p: float, n: int) -> str:
    """``r, p, n`` as text; an undefined r (fewer than 3 points or a constant input) says so."""
    if math.isnan(r):
        return f"undefined (n = {n}: fewer than 3 points or a constant input)"
    return f"{r:.2f}, " + (f"p = {p:.3f}" if p >= 0.001 else f"p = {p:.1e}") + f" (n = {n})"


def _by_target_k(per_k: Sequence[KStats]) -> dict[str, dict[int, KStats]]:
    out: dict[str, dict[int, KStats]] = {}
    for s in per_k:
        out.setdefault(s.target, {})[s.k] = s
    return out


def _list(items: Sequence[object]) -> str:
    return ", ".join(map(str, items)) if items else "none"


# ------------------------------------------------------------------------------------ Section 4.2


def finding_1(md: MethodData) -> Statement:
    sec, paper = (
        "Sec. 4.2, Finding 1",
        "As more adapters are mixed, the performance of every target decreases.",
    )
    drops = [d for d in md.drops().get("clean", []) if d.target != ALL]
    if not drops:
        return _not_run(sec, paper, "clean sweep over k")
    falling = sorted(d.target for d in drops if d.drop > 0)
    big = max(drops, key=lambda d: d.drop)
    small = min(drops, key=lambda d: d.drop)
    word = _metric_word(md.per_k("clean"))
    text = (
        f"the {word} falls from k = 1 to k = N for {len(falling)} of {len(drops)} targets (clean); "
        f"largest drop {big.target} {big.drop * PP:.1f} pp, smallest {small.target} {small.drop * PP:.1f} pp."
    )
    return Statement(sec, paper, text, Verdict.share(len(falling), len(drops)))


def finding_2(md: MethodData) -> Statement:
    sec = "Sec. 4.2, Finding 2"
    paper = (
        "On average the drop is about the same with and without attacks (clean 11.91%, black-box "
        "12.03%, white-box 10.30% in the paper); white-box performance is lower overall."
    )
    # The headline is the mean SIGNED drop (the paper's "absolute" means percentage points); the mean
    # absolute drop, which counts a target that gains as one that loses, is quoted beside it.
    averages = {e: next((d for d in rows if d.target == ALL), None) for e, rows in md.drops().items()}
    avg = {e: math.nan if d is None else d.drop * PP for e, d in averages.items()}
    absolute = {e: math.nan if d is None else d.abs_drop * PP for e, d in averages.items()}
    if "clean" not in avg or len(avg) < 2:
        return _not_run(sec, paper, "clean and attacked sweeps")
    parts = [f"{label_of(e)} {v:.1f} pp" for e, v in avg.items()]
    abs_parts = [f"{label_of(e)} {v:.1f} pp" for e, v in absolute.items()]
    gaps = [f"{label_of(e)} {_gap(md, e) * PP:.1f} pp" for e in avg if e != "clean"]
    same = all(abs(v - avg["clean"]) < SAME_DROP_PP for v in avg.values())
    text = (
        f"mean signed drop k=1→N (positive = the mixture is worse): {'; '.join(parts)} (within "
        f"{SAME_DROP_PP:g} pp of clean: {'yes' if same else 'no'}); mean absolute drop: "
        f"{'; '.join(abs_parts)}; mean metric below clean (same mixtures) by: {'; '.join(gaps)}."
    )
    return Statement(sec, paper, text, Verdict.of(same))


def _gap(md: MethodData, evaluation: str) -> float:
    """Mean of (clean - attacked) metric over the mixtures evaluated both ways (paired by target and subset)."""
    # MethodData.rows hold only trials with a metric; the checks say so to the type checker too.
    clean = {(r["target"], r["subset_json"]): r["metric"] for r in md.population("clean") if r["metric"] is not None}
    diffs = [
        clean[key] - r["metric"]
        for r in md.population(evaluation)
        if r["metric"] is not None and (key := (r["target"], r["subset_json"])) in clean
    ]
    return float(np.mean(diffs)) if diffs else math.nan


def _mean_std(per_k: Sequence[KStats]) -> float:
    """Mean std over (target, k) cells that hold more than one mixture (NaN if none do)."""
    stds = [s.std for s in per_k if s.count > 1]
    return float(np.mean(stds)) if stds else math.nan


def finding_3(md: MethodData) -> Statement:
    sec = "Sec. 4.2, Finding 3"
    paper = "The spread of performance over mixtures is larger under attack than on clean inputs."
    spread = {e: _mean_std(rows) for e, rows in md.per_k_by_eval().items()}
    if "clean" not in spread or len(spread) < 2:
        return _not_run(sec, paper, "clean and attacked sweeps")
    parts = [
        f"{label_of(e)} " + ("– (one mixture per k)" if math.isnan(v) else f"{v * PP:.2f} pp")
        for e, v in spread.items()
    ]
    attacked = [v for e, v in spread.items() if e != "clean" and not math.isnan(v)]
    better = []
    for e in (e for e in spread if e != "clean"):
        for target, ks in _by_target_k(md.per_k(e)).items():
            if 1 in ks and any(k in ks and ks[k].max > ks[1].mean for k in (2, 3)):
                better.append(f"{target} ({label_of(e).split(' ')[0]})")
    text = (
        f"mean std of the metric over mixtures of the same k: {'; '.join(parts)}. Mixtures of k = 2-3 more "
        f"robust than the single adapter: {_list(sorted(set(better)))}."
    )
    if not attacked or math.isnan(spread["clean"]):
        return Statement(sec, paper, text, Verdict.NOT_RUN)  # one mixture per k: no spread to compare
    wider = sum(v > spread["clean"] for v in attacked)  # attacks whose spread exceeds the clean one
    verdict = (
        Verdict.SUPPORTS if wider == len(attacked) else Verdict.PARTLY if wider else Verdict.CONTRADICTS
    )
    return Statement(sec, paper, text, verdict)


def finding_4(md: MethodData) -> Statement:
    sec = "Sec. 4.2, Finding 4"
    paper = f"Mixing up to three adapters keeps competitive performance (< {COMPETITIVE_PP:g}% drop)."
    by_target = _by_target_k(md.per_k("clean"))
    if not by_target or not any(len(ks) > 1 for ks in by_target.values()):
        return _not_run(sec, paper, "clean sweep over k")
    n = len(by_target)
    parts, best_ok = [], {}
    for k in (2, 3):
        have = {t: ks for t, ks in by_target.items() if k in ks and 1 in ks}
        if not have:
            continue
        mean_ok = sum((ks[1].mean - ks[k].mean) * PP < COMPETITIVE_PP for ks in have.values())
        best_ok[k] = sum((ks[1].mean - ks[k].max) * PP < COMPETITIVE_PP for ks in have.values())
        parts.append(
            f"k = {k}: mean mixture {mean_ok} of {len(have)}, best mixture {best_ok[k]} of {len(have)}"
        )
    gain = sorted(
        t
        for t, ks in by_target.items()
        if 1 in ks and any(k in ks and ks[k].max > ks[1].mean for k in (2, 3))
    )
    text = (
        f"targets within {COMPETITIVE_PP:g} pp of the single adapter: {'; '.join(parts)}. "
        f"A k ≤ 3 mixture beats the single adapter for: {_list(gain)}."
    )
    # Supported when, at the largest k <= 3 stored, the best mixture is competitive for half the targets.
    if not best_ok:
        return Statement(sec, paper, text, Verdict.NOT_RUN)
    return Statement(sec, paper, text, Verdict.of(best_ok[max(best_ok)] >= n / 2))


# ------------------------------------------------------------------------------------ Sections 5-6


def _correlation(md: MethodData, stat: str, k_range: str) -> CorrelationRow | None:
    """The pooled (all targets) correlation row of one FSD statistic and k range, clean inputs."""
    for c in md.correlations().get("clean", []):
        if c.target == ALL and c.fsd_stat == stat and c.k_range == k_range:
            return c
    return None


def _negative_targets(md: MethodData, stat: str, k_range: str) -> tuple[int, int]:
    rows = [
        c
        for c in md.correlations().get("clean", [])
        if c.target != ALL and c.fsd_stat == stat and c.k_range == k_range and not math.isnan(c.pearson_r)
    ]
    return sum(c.pearson_r < 0 for c in rows), len(rows)


def _significantly_negative(r: float, p: float) -> bool:
    return not math.isnan(r) and r < 0 and p < 0.05


def _correlation_verdict(c: CorrelationRow, negative_targets: tuple[int, int]) -> Verdict:
    """Supports: the paper's pooled r is significantly negative. Partly: it is not, but the within-target
    (repeated-measures) r is, or most targets' own r are negative. Otherwise: does not support."""
    if math.isnan(c.pearson_r) and math.isnan(c.rm_r):
        return Verdict.NOT_RUN
    if _significantly_negative(c.pearson_r, c.pearson_p):
        return Verdict.SUPPORTS
    neg, tot = negative_targets
    if _significantly_negative(c.rm_r, c.rm_p) or (tot and neg > tot / 2):
        return Verdict.PARTLY
    return Verdict.CONTRADICTS


def _within(c: CorrelationRow) -> str:
    if math.isnan(c.rm_r):
        return ""
    p = f"p = {c.rm_p:.3f}" if c.rm_p >= 0.001 else f"p = {c.rm_p:.1e}"
    return f"; within targets (each target's mean removed) r = {c.rm_r:.2f}, {p}"


def correlation_k2(md: MethodData) -> Statement:
    sec, paper = (
        "Sec. 5.3 (k = 2)",
        "FSD between two adapters correlates negatively with the mixture's accuracy.",
    )
    c = _correlation(md, "mean_pairwise_fsd", "k=2")
    if c is None:
        return _not_run(sec, paper, "k = 2 mixtures with FSD")
    negative = _negative_targets(md, "mean_pairwise_fsd", "k=2")
    neg, tot = negative
    per_target = f"; negative for {neg} of {tot} targets" if tot else ""
    text = (
        f"Pearson r between FSD and the k=2 {_metric_word(md.per_k('clean'))}, pooled over targets: "
        f"{_r(c.pearson_r, c.pearson_p, c.n)}{_within(c)}{per_target}."
    )
    return Statement(sec, paper, text, _correlation_verdict(c, negative))


def correlation_k_many(md: MethodData) -> Statement:
    sec = "Sec. 5.4 (k > 2)"
    paper = "With more adapters the sign disparity grows and still correlates negatively with accuracy."
    sign = _correlation(md, "target_sign_change", "k>2")
    pair = _correlation(md, "mean_pairwise_fsd", "k>2")
    if sign is None and pair is None:
        return _not_run(sec, paper, "k > 2 mixtures with FSD statistics")
    parts = [
        f"{name} r = {_r(c.pearson_r, c.pearson_p, c.n)}{_within(c)}"
        for name, c in (("target sign-change", sign), ("mean pairwise FSD", pair))
        if c is not None
    ]
    flips: dict[int, list[float]] = {}
    for r in md.population("clean"):
        if r["k"] >= 2 and r["target_sign_change"] is not None:
            flips.setdefault(r["k"], []).append(r["target_sign_change"])
    trend = ""
    if len(flips) > 1:
        lo, hi = min(flips), max(flips)
        trend = (
            f" Mean target sign-change {np.mean(flips[lo]) * 100:.1f}% at k = {lo} vs "
            f"{np.mean(flips[hi]) * 100:.1f}% at k = {hi}."
        )
    main, stat = (sign, "target_sign_change") if sign is not None else (pair, "mean_pairwise_fsd")
    assert main is not None
    neg, tot = negative = _negative_targets(md, stat, "k>2")
    per_target = f" Per target, r ({stat.replace('_', ' ')}) is negative for {neg} of {tot}." if tot else ""
    text = f"Pearson r with the k>2 {_metric_word(md.per_k('clean'))}: {'; '.join(parts)}.{trend}{per_target}"
    return Statement(sec, paper, text, _correlation_verdict(main, negative))


def greedy(md: MethodData) -> Statement:
    sec = "Sec. 6 (Alg. 1)"
    paper = (
        "Greedy min-FSD mixing comes close to the empirical upper bound; greedy max-FSD close to the "
        "lower bound."
    )
    rows = sorted((g for g in md.greedy() if g.target == ALL), key=lambda g: g.l)
    inner = [g for g in rows if 1 < g.l < rows[-1].l] if rows else []
    if not inner:
        return _not_run(sec, paper, "greedy mixing for 1 < l < N")
    wins = sum(g.greedy_min > g.greedy_max for g in inner)
    to_upper = np.mean([g.upper - g.greedy_min for g in inner]) * PP
    to_lower = np.mean([g.greedy_max - g.lower for g in inner]) * PP
    text = (
        f"greedy min-FSD beats greedy max-FSD for {wins} of {len(inner)} l (2 ≤ l < N, averaged over targets); "
        f"min-FSD is on average {to_upper:.1f} pp below the upper bound, max-FSD {to_lower:.1f} pp above the "
        "lower bound."
    )
    return Statement(sec, paper, text, Verdict.share(wins, len(inner)))


# ------------------------------------------------------------------------------------------ Section 7


def pruning_single(md: MethodData) -> Statement:
    sec, paper = "Sec. 7 (Fig. 8a)", "Pruning a single adapter up to 90% sparsity does not degrade it."
    # The paper's selection (whole adapter, top-d %) when stored; else the per-layer variant, said so.
    variant = "adapter" if md.sparse_per_k("adapter") else "layer"
    curve = sparsity_curve(md.per_k("clean"), md.sparse_per_k(variant))
    if len(curve) < 2 or curve[0][0] != 0.0:
        return _not_run(sec, paper, "single sparse adapters")
    dense = curve[0][1]
    kept = [s for s, m, _ in curve[1:] if (dense - m) * PP < NO_LOSS_PP]
    at90 = next((m for s, m, _ in curve if math.isclose(s, 0.9)), None)
    parts = [f"dense {dense:.3f}"] + [f"{s:.0%} {m:.3f}" for s, m, _ in curve[1:]]
    text = (
        f"pruned {SPARSE_LABELS[variant]}: "
        f"mean single-adapter metric over domains: {', '.join(parts)}; sparsity levels within "
        f"{NO_LOSS_PP:g} pp of dense: {_list([f'{s:.0%}' for s in kept])}."
    )
    if at90 is None:
        return Statement(sec, paper, text, Verdict.NOT_RUN)
    if (dense - at90) * PP < NO_LOSS_PP:
        return Statement(sec, paper, text, Verdict.SUPPORTS)
    # Holding at some sparsity of 50 % or more, but not up to 90 %, is part of the claim.
    return Statement(sec, paper, text, Verdict.PARTLY if any(s >= 0.5 for s in kept) else Verdict.CONTRADICTS)


def pruning_mixing(md: MethodData) -> Statement:
    sec = "Sec. 7 (Fig. 8b)"
    paper = "Mixing 80% / 90% sparse adapters beats the upper bound of mixing their dense versions."
    curves = sparse_mixing_curves(
        md.per_k("clean"), md.sparse_per_k("every_layer"), md.sparse_per_k("fsd_guided")
    )
    upper, mean = curves.get("dense max (upper bound)", {}), curves.get("dense mean", {})
    sparse = {n: c for n, c in curves.items() if "sparse" in n and n.endswith("mean")}
    if not sparse or not upper:
        return _not_run(sec, paper, "mixtures of sparse adapters")
    parts, verdicts = [], []
    for name, curve in sparse.items():
        ks = [k for k in sorted(curve) if k >= 2 and k in upper]
        beat_upper = [k for k in ks if curve[k] > upper[k]]
        beat_mean = [k for k in ks if k in mean and curve[k] > mean[k]]
        verdicts.append(Verdict.share(len(beat_upper), len(ks)))
        parts.append(
            f"mixing {name.split(' ')[0]}-sparse adapters"
            + (" (Alg. 4, FSD-guided m layers)" if "FSD-guided" in name else " (every layer pruned)")
            + " beats the dense upper bound at k of "
            f"{_list(beat_upper)} and the dense mean at k of {_list(beat_mean)} (of k = 2..{max(ks, default=2)})"
        )
    # The best sparsity level decides: the claim is that 80 % *or* 90 % sparse mixing wins.
    best = next((v for v in (Verdict.SUPPORTS, Verdict.PARTLY) if v in verdicts), Verdict.CONTRADICTS)
    return Statement(sec, paper, "; ".join(parts) + ".", best)


#: Every statement, in the paper's order.
STATEMENTS: tuple[Callable[[MethodData], Statement], ...] = (
    finding_1,
    finding_2,
    finding_3,
    finding_4,
    correlation_k2,
    correlation_k_many,
    greedy,
    pruning_single,
    pruning_mixing,
)


def method_statements(md: MethodData) -> list[Statement]:
    """Every finding's statement for one method."""
    return [fn(md) for fn in STATEMENTS]


def summary_counts(statements: Mapping[str, Sequence[Statement]]) -> dict[Verdict, int]:
    """How many statements got each verdict, over all methods (every verdict present, zeros included)."""
    flat = [s.verdict for rows in statements.values() for s in rows]
    return {v: flat.count(v) for v in Verdict}
