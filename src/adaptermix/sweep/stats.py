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
  ``target = "*"`` rows averaging over targets (Fig. 7). Extended (issue #18) with AdapterSoup's two
  selections (tags ``adaptersoup_similarity`` / ``adaptersoup_cluster``, the prefix of length l of the
  recorded selection) and **random selection**: the mean metric over every evaluated population mixture
  of size l that contains the target (``random_n`` of them) — the expected metric of a uniformly random
  pick when the ``all`` generator evaluated every such mixture, an estimate of it under ``sample``. On
  ``*`` rows each series is averaged over the targets that have it at l.

Optional tables (in :meth:`SweepStats.tables`, and written as CSV, only when the store has what they
compare):

- ``selections`` (:class:`SelectionRow`): per setting, target and l >= 2, which selection — greedy
  min-FSD, AdapterSoup similarity, AdapterSoup cluster or random — has the best metric, and by how much
  it beats the runner-up (greedy max-FSD, the paper's adversarial control, is not a contender).
- ``rules`` (:class:`RuleRow`, "which rule?"): per merge rule, the metric of the all-domain mixture
  (k = N, the largest k stored for the target) per target and averaged (``*``), against the single adapter
  (k = 1, rule ``average``, untagged, same evaluation/split/caps/seed): drop in points and the mixture as a
  % of the single adapter, with the extra storage per domain (0 bits per parameter for a static rule,
  1 bit + a scale for the masked ``emr`` / ``tall_mask``). Present when the store holds two rules or more
  at k = N (``sparse_fsd``, the paper's pruning, is Fig. 8's and left out).
- ``adaptersoup`` (:class:`SoupChoiceRow`): the selections AdapterSoup's generators followed, as recorded
  in the store: per generator and target, each chosen adapter in order with its score (cosine or share)
  and the text source of the target's side (validation, or train when the dataset has no validation split).

A *setting* is everything that is not the mixture (evaluation and its parameters, rule and its parameters,
split, example cap, seed, max length). ``per_k``, ``drops`` and ``correlations`` use the population trials
(tag ``""``: the ``all`` / ``sample`` generators), so greedy picks never bias them; bounds use every
evaluated subset. The tables read the store's rows as typed :class:`TrialRow` (the setting, its label, the
mixture, the metric and its FSD statistics as fields; :func:`trial_rows`).
"""

from __future__ import annotations

import csv
import io
import json
import math
import warnings
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats as sps

from adaptermix.core.io import atomic_write_text
from adaptermix.sweep.stat_rows import (  # noqa: F401  (the rows are part of this module's API)
    ALL,
    BASE_FIELDS,
    CONTENDERS,
    FSD_STATS,
    MASKED_STORAGE,
    OPTIONAL_TABLES,
    PICK_FIELDS,
    RULES_NOT_COMPARED,
    SETTING_FIELDS,
    STATIC_STORAGE,
    CorrelationRow,
    DropRow,
    GreedyRow,
    KStats,
    RuleRow,
    SelectionRow,
    SettingKey,
    SoupChoiceRow,
    SweepStats,
    TrialRow,
    setting_key,
    setting_labels,
    trial_rows,
)
from adaptermix.sweep.store import ResultsStore

# ------------------------------------------------------------------------------------------ helpers


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


def _per_k(pop: Sequence[TrialRow]) -> list[KStats]:
    groups: dict[tuple[SettingKey, str, str, int], list[float]] = defaultdict(list)
    label = {r.setting: r.label for r in pop}
    for r in pop:
        groups[(r.setting, r.target, r.metric_name, r.k)].append(r.metric)
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


def _correlations(pop: Sequence[TrialRow]) -> list[CorrelationRow]:
    """Vectorised over one setting's rows: a boolean mask per (target, k range), NaN where FSD is missing."""
    by_setting: dict[SettingKey, list[TrialRow]] = defaultdict(list)
    for r in pop:
        by_setting[r.setting].append(r)
    out = []
    for setting, rows in sorted(by_setting.items(), key=lambda kv: str(kv[0])):
        label = rows[0].label
        targets = np.array([r.target for r in rows])
        ks = np.array([r.k for r in rows])
        metric = np.array([r.metric for r in rows], dtype=np.float64)
        fsd = {stat: np.array([_nan(r.fsd_stat(stat)) for r in rows], dtype=np.float64) for stat in FSD_STATS}
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
                            label, setting[0], target, stat, name, int(mask.sum()), *corr, *rm
                        )
                    )
    return out


def _pick_matches(tag: str, target: str, subset_json: str, size: int,
                  selections: Mapping[tuple[str, str], Mapping[str, Any]]) -> bool:
    """Whether a tagged trial is the pick its generator's recorded selection names at this size (True
    when nothing is recorded: older stores, greedy)."""
    sel = selections.get((tag, target))
    if sel is None or not sel.get("adapters"):
        return True
    return sorted(json.loads(subset_json)) == sorted(list(sel["adapters"])[:size])


def _greedy(rows: Sequence[TrialRow],
            selections: Mapping[tuple[str, str], Mapping[str, Any]] | None = None) -> list[GreedyRow]:
    # Distinct subsets per (setting, target, size): a greedy pick is usually also an `all` trial.
    evaluated: dict[tuple[SettingKey, str, int], dict[str, float]] = defaultdict(dict)
    population: dict[tuple[SettingKey, str, int], dict[str, float]] = defaultdict(dict)
    picks: dict[tuple[SettingKey, str, int], dict[str, float]] = defaultdict(dict)
    label = {r.setting: r.label for r in rows}
    for r in rows:
        group = (r.setting, r.target, r.k)
        evaluated[group][r.subset_json] = r.metric
        if r.tag == "":
            population[group][r.subset_json] = r.metric
        elif r.tag in PICK_FIELDS and _pick_matches(r.tag, r.target, r.subset_json, r.k, selections or {}):
            picks[group][PICK_FIELDS[r.tag]] = r.metric
    out = []
    for (setting, target, size), pick in sorted(picks.items(), key=lambda kv: str(kv[0])):
        vals = list(evaluated[(setting, target, size)].values())
        pop = list(population[(setting, target, size)].values())
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
                pick.get("soup_similarity", math.nan),
                pick.get("soup_cluster", math.nan),
                float(np.mean(pop)) if pop else math.nan,
                len(pop),
            )
        )
    out.sort(key=lambda g: (g.setting, g.target, g.l))
    averages = []
    for name, size in sorted({(g.setting, g.l) for g in out}):
        members = [g for g in out if g.setting == name and g.l == size]
        averages.append(
            GreedyRow(
                name,
                members[0].evaluation,
                ALL,
                size,
                _mean(g.greedy_min for g in members),
                _mean(g.greedy_max for g in members),
                _mean(g.upper for g in members),
                _mean(g.lower for g in members),
                len(members),
                _mean(g.soup_similarity for g in members),
                _mean(g.soup_cluster for g in members),
                _mean(g.random for g in members),
                sum(g.random_n for g in members),
            )
        )
    return out + averages


def _selection_rows(greedy: Sequence[GreedyRow]) -> list[SelectionRow]:
    """Per target and l >= 2 with an AdapterSoup pick and at least one other contender: the winner and its
    margin over the runner-up."""
    out = []
    for g in greedy:
        if g.target == ALL or g.l < 2 or (math.isnan(g.soup_similarity) and math.isnan(g.soup_cluster)):
            continue
        vals = {name: getattr(g, name) for name in CONTENDERS if not math.isnan(getattr(g, name))}
        if len(vals) < 2:
            continue
        ranked = sorted(vals.values(), reverse=True)
        top = [CONTENDERS[n] for n, v in vals.items() if v == ranked[0]]
        best = top[0] if len(top) == 1 else "tie: " + ", ".join(top)
        out.append(SelectionRow(g.setting, g.evaluation, g.target, g.l, g.greedy_min, g.soup_similarity,
                                g.soup_cluster, g.random, best, ranked[0] - ranked[1],
                                g.soup_similarity - g.greedy_min, g.soup_similarity - g.random))
    return out


# ------------------------------------------------------------------------------------ which rule?

#: The tag of the all-domain mixtures a study's rule comparison evaluates (``subsets.tag``): kept apart from
#: the population (Fig. 3, Table 1, ...), read by :func:`rule_comparison` beside untagged k = N trials.
ALL_DOMAIN = "all_domain"



def rule_label(rule: str, params_json: str) -> str:
    """``rule`` plus its parameters as key-sorted JSON when it has any (``ties{"density": 0.2}``)."""
    params = json.loads(params_json or "{}")
    return f"{rule}{json.dumps(params, sort_keys=True)}" if params else rule


def rule_storage(rule: str) -> tuple[float, str]:
    """(extra bits per parameter per domain, what) of a rule's all-domain mixture."""
    return MASKED_STORAGE.get(rule, STATIC_STORAGE)


def rule_comparison(rows: Sequence[Mapping[str, Any]], singles: Sequence[Mapping[str, Any]] = (), *,
                    exclude: Sequence[str] = RULES_NOT_COMPARED,
                    exclude_targets: Sequence[str] = ()) -> list[RuleRow]:
    """"Which rule?": every rule's all-domain mixture (k = N) per target and averaged, against the single
    adapter. Rows are store rows of untagged trials, or tagged :data:`ALL_DOMAIN` (a study's rule comparison),
    with a metric; ``singles`` (e.g. another store's rows, the study's) supplies k = 1 rule-``average``
    metrics the rows lack (same evaluation/split/caps/seed). N is the largest k stored for the target under
    that evaluation setting; a rule without a k = N trial for a target, or a target without a single adapter,
    is left out of that rule's rows. Where a rule has both an untagged and an ``all_domain`` trial at k = N
    (e.g. ``average`` in the study's sweep, raw, and in its rule comparison, in task-vector space), the
    comparison's trial is shown."""
    def typed(table: Sequence[Mapping[str, Any]]) -> list[TrialRow]:
        return [TrialRow.from_row(r) for r in table if r["metric"] is not None]

    return compare_rules(typed(rows), typed(singles), exclude=exclude, exclude_targets=exclude_targets)


def compare_rules(rows: Sequence[TrialRow], singles: Sequence[TrialRow] = (), *,
                  exclude: Sequence[str] = RULES_NOT_COMPARED,
                  exclude_targets: Sequence[str] = ()) -> list[RuleRow]:
    """:func:`rule_comparison` over typed rows (trials with a metric)."""
    pop = [r for r in rows if r.tag in ("", ALL_DOMAIN) and r.target not in exclude_targets]
    pop.sort(key=lambda r: r.tag == ALL_DOMAIN)  # stable: the comparison's own trials come last and win
    single: dict[tuple[SettingKey, str], float] = {}
    for r in [*singles, *pop]:  # the store's own singles win
        if r.k == 1 and r.rule == "average" and r.tag == "":
            single[(r.base, r.target)] = float(r.metric)
    n_of: dict[tuple[SettingKey, str], int] = defaultdict(int)
    for r in pop:
        key = (r.base, r.target)
        n_of[key] = max(n_of[key], int(r.k))
    compared = [r for r in pop if r.rule not in exclude and r.k > 1 and r.k == n_of[(r.base, r.target)]]
    label = setting_labels(r.setting for r in compared)
    per: dict[SettingKey, dict[str, RuleRow]] = defaultdict(dict)
    for r in compared:
        s = single.get((r.base, r.target))
        if s is None:
            continue
        bits, what = rule_storage(r.rule)
        metric = float(r.metric)
        per[r.setting][r.target] = RuleRow(
            label[r.setting], r.evaluation, rule_label(r.rule, r.rule_params_json), r.target, int(r.k),
            s, metric, (s - metric) * 100.0, 100.0 * metric / s if s else math.nan, bits, what, 1)
    out: list[RuleRow] = []
    for _setting, by_target in sorted(per.items(), key=lambda kv: str(kv[0])):
        group = [by_target[t] for t in sorted(by_target)]
        first = group[0]
        avg = RuleRow(first.setting, first.evaluation, first.rule, ALL, None,
                      _mean(g.metric_single for g in group), _mean(g.metric_all for g in group),
                      _mean(g.drop_pts for g in group), _mean(g.pct_of_single for g in group),
                      first.storage_bits_per_param, first.storage, len(group))
        out += [avg, *group]
    averages = {r.setting: r.drop_pts for r in out if r.target == ALL}
    return sorted(out, key=lambda r: (r.evaluation, averages[r.setting], r.setting, r.target != ALL, r.target))


def _rules_table(rows: Sequence[TrialRow]) -> list[RuleRow]:
    """:func:`rule_comparison` when the store holds two rules or more at k = N (a comparison), else []."""
    table = compare_rules(rows)
    return table if len({r.rule for r in table}) >= 2 else []


def soup_choices(selections: Mapping[tuple[str, str], Mapping[str, Any]]) -> list[SoupChoiceRow]:
    """The recorded AdapterSoup selections as rows: per generator and target, each adapter in order."""
    out = []
    for (gen, target), sel in sorted(selections.items()):
        if not gen.startswith("adaptersoup"):
            continue
        scores = sel.get("scores") or {}
        for rank, name in enumerate(sel.get("adapters") or (), 1):
            out.append(SoupChoiceRow(gen, target, rank, str(name), _nan(scores.get(name)),
                                     str(sel.get("score", "")), str(sel.get("target_texts", "")),
                                     int(sel.get("n_target_texts") or 0)))
    return out


def compute_stats(store: ResultsStore | str | Path | Sequence[Mapping[str, Any]],
                  selections: Mapping[tuple[str, str], Mapping[str, Any]] | None = None) -> SweepStats:
    """Every statistics table from one consistent snapshot of the store's ``trials`` table (or from
    already-read ``trials`` rows, e.g. a selection of them), and the store's recorded selections
    (``selections``, :meth:`ResultsStore.selections`, read from the store unless rows are given)."""
    raw: Sequence[Mapping[str, Any]]
    if isinstance(store, ResultsStore):
        raw = store.rows("trials")
        selections = store.selections() if selections is None else selections
    elif isinstance(store, Sequence) and not isinstance(store, str):
        raw = list(store)
    else:
        with ResultsStore(store, readonly=True) as reader:
            raw = reader.rows("trials")
            selections = reader.selections() if selections is None else selections
    rows = trial_rows(raw)
    pop = [r for r in rows if r.tag == ""]
    per_k = _per_k(pop)
    greedy = _greedy(rows, selections)
    return SweepStats(per_k, _drops(per_k), _correlations(pop), greedy, _selection_rows(greedy),
                      _rules_table(rows), soup_choices(selections or {}))


# -------------------------------------------------------------------------------------------- output


def _cell(column: str, value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}" if column.endswith("_p") else f"{value:.4f}"
    return str(value)


def _columns(table: Sequence[Any], cls: type) -> list[str]:
    return [f.name for f in fields(cls)] if not table else list(asdict(table[0]))


_ROW_TYPES = {"per_k": KStats, "drops": DropRow, "correlations": CorrelationRow, "greedy": GreedyRow,
              "selections": SelectionRow, "rules": RuleRow, "adaptersoup": SoupChoiceRow}


def write_stats_csv(stats: SweepStats, out_dir: str | Path) -> list[Path]:
    """One CSV per table (``per_k.csv``, ``drops.csv``, ``correlations.csv``, ``greedy.csv``, and the optional
    ``selections.csv`` / ``rules.csv`` / ``adaptersoup.csv`` when the store has them), atomically."""
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
    "greedy": (
        "Greedy FSD mixing vs empirical bounds (Fig. 7), with AdapterSoup's selections and random selection "
        "(random: mean over the evaluated population mixtures of size l with the target, random_n of them)"
    ),
    "selections": "Which selection wins at equal l (per target; margin: best - runner-up)",
    "rules": (
        "Which rule? The all-domain mixture (k = N) vs the single adapter (k = 1): drop_pts = (single - all) "
        "x 100, pct_of_single = all / single x 100; storage: extra bits per parameter per domain"
    ),
    "adaptersoup": "AdapterSoup's selections as recorded in the store (score: cosine or share)",
}


def format_tables(stats: SweepStats) -> str:
    """Every table as aligned text for the terminal (empty tables say so)."""
    parts = []
    for name, table in stats.tables().items():
        body = format_table(table, _ROW_TYPES[name]) if table else "(no rows)"
        parts.append(f"{_TITLES[name]}\n{body}")
    return "\n\n".join(parts) + "\n"
