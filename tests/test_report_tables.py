"""Report tables equal hand-computed values on the synthetic study."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sps

from adaptermix.report import tables as T
from adaptermix.report.data import load_study
from test_report_data import BASE, TARGETS, clean_metric, make_study, mean_pairwise

# All four adapters: mean pairwise FSD = (0.1 + 0.2 + 0.4 + 0.3 + 0.35 + 0.25) / 6.
FSD_ALL = 1.6 / 6
CLEAN_DROP = 0.02 * 3 + 0.3 * FSD_ALL  # = 0.14 for every target (the base cancels)
FGSM_DROP = CLEAN_DROP + 0.05 * FSD_ALL * 4


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory):
    return load_study(make_study(tmp_path_factory.mktemp("tables")))


def test_table1_drops_in_percentage_points(study) -> None:
    (md,) = study.methods
    t = T.drop_table(md.drops(), md.label)
    assert t.name == "table1_drops_pfeiffer"
    assert t.columns == ["evaluation", *TARGETS, "mean signed drop", "mean absolute drop"]
    assert [r[0] for r in t.rows] == ["clean", "black-box (TextFooler)", "white-box (FGSM)"]
    clean, black, white = t.rows
    assert clean[1:] == pytest.approx([CLEAN_DROP * 100] * 6) and CLEAN_DROP * 100 == pytest.approx(14.0)
    assert black[1:] == pytest.approx([CLEAN_DROP * 100] * 6), "TextFooler shifts every mixture by 0.2"
    assert white[1:] == pytest.approx([FGSM_DROP * 100] * 6, abs=1e-3)  # metrics are rounded to 1e-6


def test_table1_signed_when_a_target_improves(tmp_path: Path) -> None:
    # D gains 0.1 per added adapter on top of the common fall: its drop becomes 14 - 30 = -16 pp.
    (md,) = load_study(
        make_study(tmp_path, shift=lambda t, s: 0.1 * (len(s) - 1) if t == "D" else 0.0)
    ).methods
    clean = T.drop_table(md.drops(), md.label).rows[0]
    assert clean[1:5] == pytest.approx([14.0, 14.0, 14.0, -16.0])
    assert clean[5] == pytest.approx((3 * 14.0 - 16.0) / 4), "headline: the mean signed drop"
    assert clean[6] == pytest.approx((3 * 14.0 + 16.0) / 4), "second column: the mean absolute drop"


def test_correlation_table_matches_scipy(study) -> None:
    (md,) = study.methods
    t = T.correlation_table(md.correlations(), md.label)
    row = next(r for r in t.rows if r[0] == "clean" and r[1] == "mean pairwise FSD" and r[2] == "k=2")
    pairs = [(t_, (t_, o)) for t_ in TARGETS for o in TARGETS if o != t_]
    x = [mean_pairwise(s) for _, s in pairs]
    y = [clean_metric(t_, s) for t_, s in pairs]
    r, p = sps.pearsonr(x, y)
    assert row[3] == 12 and row[4] == pytest.approx(r) and row[5] == pytest.approx(p)
    assert row[6] == pytest.approx(sps.spearmanr(x, y).statistic)
    assert {(r_[1], r_[2]) for r_ in t.rows if r_[0] == "clean"} == {
        (s, k) for s in T.FSD_NAMES.values() for k in ("k=2", "k>2", "k>=2")
    }


def test_greedy_table_against_hand_values(study) -> None:
    (md,) = study.methods
    t = T.greedy_table(md.greedy(), md.label)
    first = t.rows[0]
    assert first[0] == "average" and first[1] == 1
    a2 = next(r for r in t.rows if r[0] == "A" and r[1] == 2)
    # A's partner with the smallest row-mean FSD is B (tie with C broken by name): 0.9 - 0.02 - 0.3 * 0.1
    assert a2[2] == pytest.approx(0.85) and a2[4] == pytest.approx(0.85)
    # largest row-mean FSD partner D: 0.9 - 0.02 - 0.3 * 0.4 (also the lower bound)
    assert a2[3] == pytest.approx(0.76) and a2[5] == pytest.approx(0.76) and a2[6] == 3


def test_per_k_single_and_pruning_tables(study) -> None:
    (md,) = study.methods
    per_k = T.per_k_table(md.per_k_by_eval(), md.label)
    a2 = next(r for r in per_k.rows if r[:2] == ["clean", "A"] and r[3] == 2)
    vals = [clean_metric("A", ("A", o)) for o in "BCD"]
    assert a2[4:] == pytest.approx([3, np.mean(vals), np.std(vals), min(vals), max(vals)])
    single = T.single_adapter_table(study.single)
    assert single.rows == [[t, "accuracy", BASE[t], None, ""] for t in TARGETS]
    sparse = {s: md.per_k("clean", "sparse_fsd", {"s": s}) for s in md.sparsities()}
    curve = T.sparsity_curve(md.per_k("clean"), sparse)
    base = np.mean(list(BASE.values()))
    assert curve[0] == (0.0, pytest.approx(base), 4)
    assert dict((s, m) for s, m, _ in curve)[0.9] == pytest.approx(base - 0.005)
    assert dict((s, m) for s, m, _ in curve)[1.0] == pytest.approx(base - 0.3)
    curves = T.sparse_mixing_curves(md.per_k("clean"), sparse)
    assert curves["dense mean"][4] == pytest.approx(base - CLEAN_DROP)
    assert curves["80% sparse, mean"][4] == pytest.approx(base - CLEAN_DROP + 0.05)
    assert curves["dense max (upper bound)"][2] == pytest.approx(
        np.mean([max(clean_metric(t, (t, o)) for o in TARGETS if o != t) for t in TARGETS])
    )
    mixing = T.sparse_mixing_table(curves, md.label)
    assert mixing.columns == ["k", *curves] and [r[0] for r in mixing.rows] == [1, 2, 3, 4]


def test_csv_round_trip_and_formatting(study, tmp_path: Path) -> None:
    (md,) = study.methods
    t = T.drop_table(md.drops(), md.label)
    path = t.write_csv(tmp_path)
    rows = list(csv.reader(path.open()))
    assert rows[0] == t.columns and float(rows[1][1]) == pytest.approx(14.0)
    assert T.fmt(float("nan")) == "–" and T.fmt(None) == "–" and T.fmt(0.12345, 3) == "0.123"
    assert T.fmt(0.0001234, 3) == "0.00012"


def _with_baselines(root: Path, baselines: dict[str, float]) -> Path:
    """The synthetic study's adapters, with a stored majority baseline per domain."""
    for t, base in baselines.items():
        path = root / "adapters" / "pfeiffer" / t / "adapter.json"
        meta = json.loads(path.read_text())
        meta["metrics"]["test"]["baseline_accuracy"] = base
        path.write_text(json.dumps(meta))
    return root


def test_single_adapter_table_shows_the_baseline_and_flags_near_ones(tmp_path: Path) -> None:
    from adaptermix.report.build import _near_baseline_note, mark_near_baseline
    from adaptermix.report.statements import method_statements

    root = _with_baselines(make_study(tmp_path), {"A": 0.5, "B": 0.5, "C": 0.5, "D": 0.69})
    study = load_study(root)
    table = T.single_adapter_table(study.single, study.baselines)
    assert table.columns == ["domain", "metric", "pfeiffer", "baseline", "within 2 pts of baseline"]
    assert table.rows[0] == ["A", "accuracy", BASE["A"], 0.5, ""]
    assert table.rows[3] == ["D", "accuracy", BASE["D"], 0.69, "⚠ pfeiffer"]
    assert study.near_baseline("pfeiffer") == ["D"]
    assert "pfeiffer/D" in _near_baseline_note(study) and "--exclude-near-baseline" in _near_baseline_note(study)
    marked = mark_near_baseline(method_statements(study.methods[0]), ["D"], excluded=False)
    assert any("⚠ Targets within 2 pts of their baseline included: D." in s.result for s in marked)
    # Old artefacts (no baseline stored) show a dash and flag nothing.
    old = load_study(make_study(tmp_path / "old"))
    assert T.single_adapter_table(old.single, old.baselines).rows[3][3:] == [None, ""]
    assert old.near_baseline("pfeiffer") == []


def test_exclude_near_baseline_leaves_the_target_out_of_the_statistics(tmp_path: Path) -> None:
    root = _with_baselines(make_study(tmp_path), {"A": 0.5, "B": 0.5, "C": 0.5, "D": 0.69})
    kept = load_study(root).methods[0]
    (md,) = load_study(root, exclude_near_baseline=True).methods
    assert {d.target for d in kept.drops()["clean"]} == {"A", "B", "C", "D", "*"}
    assert {d.target for d in md.drops()["clean"]} == {"A", "B", "C", "*"}
    assert all(r["target"] != "D" for r in md.rows)
