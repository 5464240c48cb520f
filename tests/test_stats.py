"""Statistics from a hand-made store equal hand-computed values."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest

from adaptermix.sweep.spec import Trial
from adaptermix.sweep.stats import (
    compute_stats,
    format_tables,
    repeated_measures_correlation,
    write_stats_csv,
)
from adaptermix.sweep.store import ResultsStore, TrialResult

# (target, subset, metric, mean pairwise FSD, target sign change, tag)
CLEAN = [
    ("A", "A", 0.9, None, 0.0, ""),
    ("A", "AB", 0.1, 0.1, 0.05, ""),
    ("A", "AC", 0.3, 0.2, 0.10, ""),
    ("A", "ABC", 0.5, 0.5, 0.20, ""),
    ("B", "B", 0.8, None, 0.0, ""),
    ("B", "AB", 0.2, 0.3, 0.15, ""),
    ("B", "BC", 0.4, 0.4, 0.20, ""),
    ("B", "ABC", 0.6, 0.6, 0.30, ""),
    # greedy picks (Fig. 7): separate trials by tag, never counted in the population statistics
    ("A", "A", 0.9, None, 0.0, "greedy_min"),
    ("A", "AC", 0.3, 0.2, 0.10, "greedy_min"),
    ("A", "AB", 0.1, 0.1, 0.05, "greedy_max"),
    ("B", "BC", 0.4, 0.4, 0.20, "greedy_min"),
]
FGSM = [("A", "A", 0.7, None, 0.0, ""), ("A", "ABC", 0.4, 0.5, 0.2, "")]


def make_store(path: Path) -> Path:
    results = []
    for evaluation, rows in (("clean", CLEAN), ("fgsm", FGSM)):
        for target, subset, metric, fsd, tsc, tag in rows:
            trial = Trial(
                target=target,
                subset=tuple(subset),
                rule="average",
                split="test",
                evaluation=evaluation,
                seed=0,
                eval_params={"epsilon": 0.01} if evaluation == "fgsm" else {},
                tag=tag,
            )
            results.append(TrialResult(trial, "accuracy", metric, {"accuracy": metric}, fsd, tsc, "raw"))
    missing = Trial(target="A", subset=("A", "B"), rule="average", split="test", evaluation="clean", seed=9)
    results.append(TrialResult(missing, "accuracy", None, {}))  # a metric that could not be computed
    with ResultsStore(path) as store:
        store.record(results)
    return path


@pytest.fixture(scope="module")
def stats(tmp_path_factory: pytest.TempPathFactory):
    return compute_stats(make_store(tmp_path_factory.mktemp("stats") / "r.sqlite"))


def test_per_k_mean_variance_min_max(stats) -> None:
    rows = {(s.setting, s.target, s.k): s for s in stats.per_k}
    a2 = rows[("clean/average/test", "A", 2)]
    assert (a2.count, a2.min, a2.max) == (2, 0.1, 0.3)
    assert a2.mean == pytest.approx(0.2) and a2.var == pytest.approx(0.01) and a2.std == pytest.approx(0.1)
    a1 = rows[("clean/average/test", "A", 1)]
    assert (a1.count, a1.mean, a1.var) == (1, 0.9, 0.0), "greedy duplicates are not counted"
    assert rows[("fgsm/average/test", "A", 3)].mean == pytest.approx(0.4)
    assert {s.setting for s in stats.per_k} == {"clean/average/test", "fgsm/average/test"}
    assert len(stats.per_k) == 6 + 2, "the NULL-metric trial (seed 9) is left out"


def test_drop_from_k1_to_kN(stats) -> None:
    drops = {(d.setting, d.target): d for d in stats.drops}
    a, b = drops[("clean/average/test", "A")], drops[("clean/average/test", "B")]
    assert (a.k_max, a.drop, b.drop) == (3, pytest.approx(0.4), pytest.approx(0.2))
    assert a.rel_drop_pct == pytest.approx(100 * 0.4 / 0.9)
    avg = drops[("clean/average/test", "*")]
    assert avg.abs_drop == pytest.approx(0.3) and avg.k_max is None
    assert drops[("fgsm/average/test", "A")].abs_drop == pytest.approx(0.3)


def test_table1_headline_is_the_signed_mean_drop(tmp_path: Path) -> None:
    """One target falls (0.9 -> 0.5: +0.4), one improves (0.6 -> 0.8: -0.2): the signed mean is 0.1, the
    mean absolute drop 0.3 (which would count B's gain as a loss)."""
    results = []
    for target, subset, metric in (("A", "A", 0.9), ("A", "AB", 0.5), ("B", "B", 0.6), ("B", "AB", 0.8)):
        trial = Trial(
            target=target, subset=tuple(subset), rule="average", split="test", evaluation="clean", seed=0
        )
        results.append(TrialResult(trial, "accuracy", metric, {"accuracy": metric}, 0.1, 0.1, "raw"))
    with ResultsStore(tmp_path / "r.sqlite") as store:
        store.record(results)
    drops = {d.target: d for d in compute_stats(tmp_path / "r.sqlite").drops}
    assert drops["B"].drop == pytest.approx(-0.2) and drops["B"].abs_drop == pytest.approx(0.2)
    assert drops["*"].drop == pytest.approx(0.1), "the headline: the mean of the signed drops"
    assert drops["*"].abs_drop == pytest.approx(0.3), "second view: the mean of |drop|"
    assert "drop: signed" in format_tables(compute_stats(tmp_path / "r.sqlite"))


def test_correlations_match_hand_computation(stats) -> None:
    corr = {(c.setting, c.target, c.fsd_stat, c.k_range): c for c in stats.correlations}
    # Pooled k = 2: x = (.1, .2, .3, .4), y = (.1, .3, .2, .4). Deviations (-1.5, -.5, .5, 1.5) and
    # (-1.5, .5, -.5, 1.5) (x10): r = 4 / sqrt(5 * 5) = 0.8. With n - 2 = 2 degrees of freedom the
    # two-sided p is 1 - |t| / sqrt(t^2 + 2), t = r sqrt(2) / sqrt(1 - r^2), which is exactly 1 - r = 0.2.
    # Spearman: the ranks are the same numbers, so rho = 0.8 and p = 0.2 as well.
    k2 = corr[("clean/average/test", "*", "mean_pairwise_fsd", "k=2")]
    assert k2.n == 4
    assert (k2.pearson_r, k2.pearson_p) == (pytest.approx(0.8), pytest.approx(0.2))
    assert (k2.spearman_r, k2.spearman_p) == (pytest.approx(0.8), pytest.approx(0.2))
    # k > 2 has two points: undefined, reported as NaN with n.
    gt2 = corr[("clean/average/test", "*", "mean_pairwise_fsd", "k>2")]
    assert gt2.n == 2 and math.isnan(gt2.pearson_r)
    # k >= 2 against the textbook formula.
    x = np.array([0.1, 0.2, 0.5, 0.3, 0.4, 0.6])
    y = np.array([0.1, 0.3, 0.5, 0.2, 0.4, 0.6])
    r = ((x - x.mean()) * (y - y.mean())).sum() / np.sqrt(
        ((x - x.mean()) ** 2).sum() * ((y - y.mean()) ** 2).sum()
    )
    assert corr[("clean/average/test", "*", "mean_pairwise_fsd", "k>=2")].pearson_r == pytest.approx(r)
    per_target = corr[("clean/average/test", "A", "target_sign_change", "k>=2")]
    assert per_target.n == 3 and per_target.pearson_r == pytest.approx(
        np.corrcoef([0.05, 0.1, 0.2], [0.1, 0.3, 0.5])[0, 1]
    )


def _regression_t(x: np.ndarray, y: np.ndarray, groups: np.ndarray) -> tuple[float, int]:
    """t of x's coefficient in OLS y ~ x + one intercept per group, and its residual df."""
    dummies = (groups[:, None] == np.unique(groups)[None, :]).astype(float)
    design = np.column_stack([x, dummies])
    beta, *_ = np.linalg.lstsq(design, y, rcond=None)
    resid = y - design @ beta
    df = len(y) - design.shape[1]
    cov = (resid @ resid / df) * np.linalg.inv(design.T @ design)
    return float(beta[0] / np.sqrt(cov[0, 0])), df


def test_repeated_measures_correlation_is_the_within_group_regression() -> None:
    from scipy import stats as sps

    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(5), 8)
    x = rng.normal(size=40) + groups  # groups differ in level of x ...
    y = -0.5 * x + 2.0 * groups + rng.normal(scale=0.5, size=40)  # ... and of y, in the other direction
    r, p = repeated_measures_correlation(x, y, groups)
    t, df = _regression_t(x, y, groups)
    assert df == 40 - 5 - 1
    assert r == pytest.approx(t / np.sqrt(t * t + df))
    assert p == pytest.approx(2 * sps.t.sf(abs(t), df))
    # Simpson's paradox: pooled over groups the correlation is positive, within every group negative.
    assert np.corrcoef(x, y)[0, 1] > 0.5 and r < -0.5 and p < 0.01


def test_repeated_measures_correlation_degenerate_inputs() -> None:
    # Singletons carry no within-group information: no degrees of freedom left.
    assert all(math.isnan(v) for v in repeated_measures_correlation([1, 2, 3], [3, 1, 2], ["a", "b", "c"]))
    # Two groups of two points: df = 4 - 2 - 1 = 1, both within slopes +1 -> r = 1, p = 0.
    assert repeated_measures_correlation([0, 1, 5, 6], [0, 1, 9, 10], [0, 0, 1, 1]) == (1.0, 0.0)
    # No spread of x within any group.
    assert math.isnan(repeated_measures_correlation([1, 1, 2, 2, 3], [1, 2, 3, 4, 5], [0, 0, 1, 1, 2])[0])


def test_pooled_rows_carry_the_within_target_correlation(stats) -> None:
    corr = {(c.setting, c.target, c.fsd_stat, c.k_range): c for c in stats.correlations}
    pooled = corr[("clean/average/test", "*", "target_sign_change", "k>=2")]
    x = np.array([0.05, 0.1, 0.2, 0.15, 0.2, 0.3])
    y = np.array([0.1, 0.3, 0.5, 0.2, 0.4, 0.6])
    assert (pooled.rm_r, pooled.rm_p) == pytest.approx(repeated_measures_correlation(x, y, list("AAABBB")))
    assert not math.isnan(pooled.rm_r)
    assert math.isnan(corr[("clean/average/test", "A", "target_sign_change", "k>=2")].rm_r)


def test_greedy_against_empirical_bounds(stats) -> None:
    greedy = {(g.setting, g.target, g.l): g for g in stats.greedy}
    a2 = greedy[("clean/average/test", "A", 2)]
    assert (a2.greedy_min, a2.greedy_max, a2.upper, a2.lower, a2.n) == (0.3, 0.1, 0.3, 0.1, 2)
    b2 = greedy[("clean/average/test", "B", 2)]
    assert (b2.greedy_min, b2.upper, b2.lower) == (0.4, 0.4, 0.2) and math.isnan(b2.greedy_max)
    avg = greedy[("clean/average/test", "*", 2)]
    assert (avg.greedy_min, avg.greedy_max, avg.upper, avg.lower, avg.n) == (
        pytest.approx(0.35),
        pytest.approx(0.1),
        pytest.approx(0.35),
        pytest.approx(0.15),
        2,
    )
    assert greedy[("clean/average/test", "A", 1)].upper == 0.9


def test_csv_and_text_output(stats, tmp_path: Path) -> None:
    paths = write_stats_csv(stats, tmp_path / "stats")
    assert sorted(p.name for p in paths) == ["correlations.csv", "drops.csv", "greedy.csv", "per_k.csv"]
    with open(tmp_path / "stats" / "per_k.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert (
        len(rows) == len(stats.per_k)
        and {"target", "k", "mean", "var", "std", "min", "max"} <= rows[0].keys()
    )
    text = format_tables(stats)
    assert "Table 1" in text and "Fig. 7" in text and "0.8000" in text
    header = text.splitlines()[1]
    assert header.split()[:3] == ["setting", "evaluation", "target"]


def test_empty_store(tmp_path: Path) -> None:
    ResultsStore(tmp_path / "e.sqlite").close()
    empty = compute_stats(tmp_path / "e.sqlite")
    assert not any(empty.tables().values())
    assert "(no rows)" in format_tables(empty)
    assert all(p.read_text().count("\n") == 1 for p in write_stats_csv(empty, tmp_path / "out"))


def test_settings_that_differ_only_by_seed_are_labelled(tmp_path: Path) -> None:
    with ResultsStore(tmp_path / "s.sqlite") as store:
        store.record(
            [
                TrialResult(
                    Trial(
                        target="A", subset=("A",), rule="average", split="test", evaluation="clean", seed=s
                    ),
                    "accuracy",
                    0.5,
                    {},
                )
                for s in (1, 2)
            ]
        )
    assert {s.setting for s in compute_stats(tmp_path / "s.sqlite").per_k} == {
        "clean/average/test seed=1",
        "clean/average/test seed=2",
    }
