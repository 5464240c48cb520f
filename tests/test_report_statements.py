"""The findings' statements are computed from the store: change the store, the statement changes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from scipy import stats as sps

from adaptermix.report import statements as S
from adaptermix.report.data import load_study
from adaptermix.sweep.stats import CorrelationRow
from test_report_data import TARGETS, clean_metric, make_study, mean_pairwise


def _statements(root: Path, **kw) -> dict[str, S.Statement]:
    (md,) = load_study(make_study(root, **kw)).methods
    return {s.section: s for s in S.method_statements(md)}


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> dict[str, S.Statement]:
    return _statements(tmp_path_factory.mktemp("base"))


def test_every_finding_has_a_statement(base) -> None:
    assert len(base) == len(S.STATEMENTS) == 9
    assert all(s.result and s.paper for s in base.values())


def test_finding_1_counts_falling_targets(base, tmp_path: Path) -> None:
    f1 = base["Sec. 4.2, Finding 1"]
    assert "falls from k = 1 to k = N for 4 of 4 targets" in f1.result and f1.verdict is S.Verdict.SUPPORTS
    # Make D gain 0.1 per added adapter: D no longer falls.
    changed = _statements(tmp_path, shift=lambda t, s: 0.1 * (len(s) - 1) if t == "D" else 0.0)
    f1b = changed["Sec. 4.2, Finding 1"]
    assert "for 3 of 4 targets" in f1b.result and f1b.result != f1.result
    assert f1b.verdict is S.Verdict.PARTLY  # most targets fall, not every one


def test_finding_2_mean_drops(base) -> None:
    f2 = base["Sec. 4.2, Finding 2"]
    assert "clean 14.0 pp" in f2.result and "black-box (TextFooler) 14.0 pp" in f2.result
    assert "white-box (FGSM) 19.3 pp" in f2.result and f2.verdict is S.Verdict.CONTRADICTS
    assert "black-box (TextFooler) 20.0 pp" in f2.result.split("same mixtures")[1]
    assert "mean signed drop" in f2.result and "mean absolute drop" in f2.result


def test_finding_2_headline_is_signed(tmp_path: Path) -> None:
    # D gains 0.1 per added adapter in every evaluation: signed clean mean 6.5 pp, absolute 14.5 pp.
    f2 = _statements(tmp_path, shift=lambda t, s: 0.1 * (len(s) - 1) if t == "D" else 0.0)[
        "Sec. 4.2, Finding 2"
    ]
    signed, absolute = f2.result.split("mean absolute drop")
    assert "clean 6.5 pp" in signed and "clean 14.5 pp" in absolute


def test_finding_3_and_4(base) -> None:
    f3 = base["Sec. 4.2, Finding 3"]
    assert "black-box (TextFooler) – (one mixture per k)" in f3.result
    f4 = base["Sec. 4.2, Finding 4"]
    assert "k = 2: mean mixture 0 of 4" in f4.result and f4.verdict is S.Verdict.CONTRADICTS


def test_k2_correlation_is_the_stored_pearson_r(base, tmp_path: Path) -> None:
    pairs = [(t, (t, o)) for t in TARGETS for o in TARGETS if o != t]
    r, p = sps.pearsonr([mean_pairwise(s) for _, s in pairs], [clean_metric(t, s) for t, s in pairs])
    k2 = base["Sec. 5.3 (k = 2)"]
    assert f"{r:.2f}, p = {p:.3f} (n = 12)" in k2.result and k2.verdict is S.Verdict.SUPPORTS
    assert "negative for 4 of 4 targets" in k2.result
    # Reward FSD instead: the correlation turns positive and the claim is no longer supported.
    changed = _statements(tmp_path, shift=lambda t, s: 0.9 * (mean_pairwise(s) or 0.0))["Sec. 5.3 (k = 2)"]
    r_new = float(re.search(r"targets: (-?\d\.\d\d)", changed.result).group(1))
    assert r_new > 0 and changed.verdict is S.Verdict.CONTRADICTS


def test_greedy_statement_follows_the_store(base, tmp_path: Path) -> None:
    g = base["Sec. 6 (Alg. 1)"]
    assert "beats greedy max-FSD for 2 of 2 l" in g.result and g.verdict is S.Verdict.SUPPORTS
    changed = _statements(tmp_path, shift=lambda t, s: 0.9 * (mean_pairwise(s) or 0.0))["Sec. 6 (Alg. 1)"]
    assert "for 0 of 2 l" in changed.result and changed.verdict is S.Verdict.CONTRADICTS


def test_pruning_statements(base) -> None:
    single = base["Sec. 7 (Fig. 8a)"]
    assert "dense 0.812" in single.result and "100% 0.51" in single.result
    assert "within 1 pp of dense: 40%, 50%, 60%, 70%, 80%, 90%." in single.result and single.verdict is S.Verdict.SUPPORTS
    assert single.result.startswith("pruned whole adapter (top-d %)") and "90% 0.810" in single.result
    mixing = base["Sec. 7 (Fig. 8b)"]
    assert "mixing 90%-sparse adapters (Alg. 4, FSD-guided m layers) beats the dense upper bound" in mixing.result
    assert "mixing 90%-sparse adapters (every layer pruned) beats the dense upper bound at k of 2, 3, 4" in mixing.result
    assert mixing.verdict is S.Verdict.SUPPORTS


def test_missing_stages_are_not_run(tmp_path: Path) -> None:
    got = _statements(tmp_path, textfooler=False, greedy=False, pruning=False)
    for section in ("Sec. 6 (Alg. 1)", "Sec. 7 (Fig. 8a)", "Sec. 7 (Fig. 8b)"):
        assert S.NOT_RUN in got[section].result and got[section].verdict is S.Verdict.NOT_RUN
    assert "black-box" not in got["Sec. 4.2, Finding 2"].result
    counts = S.summary_counts({"m": list(got.values())})
    assert counts[S.Verdict.NOT_RUN] == 3 and sum(counts.values()) == 9


def test_undefined_correlation_is_said_not_printed_as_nan() -> None:
    assert "undefined (n = 3" in S._r(float("nan"), float("nan"), 3)
    assert S._r(-0.5, 0.0001, 20) == "-0.50, p = 1.0e-04 (n = 20)"


def _row(r: float, p: float, rm_r: float, rm_p: float) -> CorrelationRow:
    return CorrelationRow("clean/average/test", "clean", "*", "mean_pairwise_fsd", "k=2", 30, r, p, r, p, rm_r, rm_p)


@pytest.mark.parametrize(
    ("row", "negative_targets", "verdict"),
    [
        (_row(-0.5, 0.001, -0.6, 0.001), (3, 4), S.Verdict.SUPPORTS),  # the paper's pooled r
        # Pooled r weak (targets' levels differ), within-target r significant: partly.
        (_row(-0.1, 0.4, -0.6, 0.001), (1, 4), S.Verdict.PARTLY),
        (_row(-0.1, 0.4, -0.1, 0.5), (3, 4), S.Verdict.PARTLY),  # most targets' own r negative
        (_row(-0.1, 0.4, -0.1, 0.5), (2, 4), S.Verdict.CONTRADICTS),  # half is not most
        (_row(0.4, 0.01, 0.5, 0.01), (0, 4), S.Verdict.CONTRADICTS),
        (_row(float("nan"), float("nan"), float("nan"), float("nan")), (0, 0), S.Verdict.NOT_RUN),
    ],
)
def test_correlation_verdict_grades_partial_support(row, negative_targets, verdict) -> None:
    assert S._correlation_verdict(row, negative_targets) is verdict


def test_share_verdict() -> None:
    assert S.Verdict.share(12, 12) is S.Verdict.SUPPORTS
    assert S.Verdict.share(11, 12) is S.Verdict.PARTLY
    assert S.Verdict.share(6, 12) is S.Verdict.CONTRADICTS
    assert S.Verdict.share(0, 0) is S.Verdict.CONTRADICTS


def test_k2_statement_reports_the_within_target_r(base) -> None:
    assert "within targets (each target's mean removed) r = " in base["Sec. 5.3 (k = 2)"].result
