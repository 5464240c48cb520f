"""The mixture-quality predictor: no leak of a held-out mixture's own measurement, learnable additive
partner effects, folds, scoring, the ridge's input checks and NaN imputation, and reading a store."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest

from adaptermix.errors import ArtefactError, ConfigError
from adaptermix.recommend.features import FEATURES, Candidate, Measured, read_measured
from adaptermix.recommend.predictor import (
    ABLATIONS,
    DEFAULT_FEATURES,
    Dataset,
    MixturePredictor,
    evaluate_predictor,
    fold_ids,
    out_of_fold,
    score,
)
from adaptermix.sweep.spec import Trial
from adaptermix.sweep.store import ResultsStore, TrialResult
from synthetic_mixtures import additive_metric, additive_world, exhaustive, random_facts


def _world(n: int = 5, seed: int = 0, sign_change=None) -> tuple[list[Measured], object]:
    facts = random_facts(n, seed)
    single, effects = additive_world(n, seed)
    return exhaustive(facts.names, additive_metric(single, effects), sign_change=sign_change), facts


def _perturbed(measured: list[Measured], i: int, points: float = 1000.0) -> list[Measured]:
    out = list(measured)
    out[i] = dataclasses.replace(out[i], metric=out[i].metric + points / 100.0)
    return out


# ------------------------------------------------------------------------------------------ no leak


@pytest.mark.parametrize("use", [None, ABLATIONS["k + single + sign (FSD, sign change)"]])
def test_heldout_mixture_never_reaches_its_own_fit(use):
    """K-fold within targets: an absurd change to one held-out mixture's metric leaves its own out-of-fold
    prediction (and its fold-mates') bit-identical, while the other folds' predictions move."""
    measured, facts = _world()
    data = Dataset.build(measured, facts)
    folds = fold_ids(data, 5, seed=0)
    base = out_of_fold(data, folds, use)
    i = next(j for j in range(len(data.y)) if data.k[j] >= 3 and data.targets[j] == "d2")

    data2 = Dataset.build(_perturbed(measured, i), facts)
    assert data2.y[i] == pytest.approx(data.y[i] + 1000.0), "the perturbation reached the response"
    folds2 = fold_ids(data2, 5, seed=0)
    assert np.array_equal(folds, folds2), "folds depend on the targets only, not on the measurements"
    pert = out_of_fold(data2, folds2, use)

    assert pert[i] == base[i], "a held-out mixture's own measurement reached its prediction"
    same = folds == folds[i]
    assert np.array_equal(pert[same], base[same])
    moved = np.abs(pert[~same] - base[~same])
    assert moved.min() > 0 and moved.mean() > 1.0, "the perturbation must reach every fit that holds the row"


def test_leave_one_target_out_never_sees_the_held_out_target():
    measured, facts = _world()
    data = Dataset.build(measured, facts)
    base = out_of_fold(data, data.targets)
    i = next(j for j in range(len(data.y)) if data.k[j] == 2 and data.targets[j] == "d1")
    data2 = Dataset.build(_perturbed(measured, i), facts)
    pert = out_of_fold(data2, data2.targets)
    own = data.targets == "d1"
    assert np.array_equal(pert[own], base[own]), "the held-out target's own mixtures reached its fit"
    assert np.abs(pert[~own] - base[~own]).min() > 0


def test_evaluate_predictor_heldout_predictions_do_not_leak():
    """The same through evaluate_predictor (what `adaptermix predict` reports)."""
    measured, facts = _world()
    only = {"all features": DEFAULT_FEATURES}
    data = Dataset.build(measured, facts)
    i = next(j for j in range(len(data.y)) if data.k[j] >= 2)
    base = evaluate_predictor(data, folds=4, seed=3, ablations=only).predictions
    pert = evaluate_predictor(Dataset.build(_perturbed(measured, i), facts), folds=4, seed=3,
                              ablations=only).predictions
    assert pert["heldout"][i] == base["heldout"][i]
    assert pert["loto"][i] == base["loto"][i]
    assert not np.array_equal(pert["heldout"], base["heldout"])


# ------------------------------------------------------------------------------------------ accuracy


def test_additive_partner_effects_are_learned_and_k_alone_is_not_enough():
    """metric = single + sum of per-partner effects: the partner indicators rank held-out mixtures almost
    perfectly; k alone (the control) cannot rank mixtures of one target."""
    facts = random_facts(7, seed=1)
    single, effects = additive_world(7, seed=1)
    data = Dataset.build(exhaustive(facts.names, additive_metric(single, effects)), facts)
    report = evaluate_predictor(data, folds=5, seed=0)
    partners = report.heldout["k + single + partners (which adapters)"]
    control = report.heldout["k only (control)"]
    assert partners.spearman_within > 0.9 and report.heldout["all features"].spearman_within > 0.9
    assert control.spearman_within < 0.5
    assert partners.mae_points < control.mae_points
    assert partners.n == control.n == 7 * (64 - 1), "every k >= 2 mixture is scored, no k = 1 row"
    assert report.n_mixtures == 7 * 64 and report.n_targets == 7


# ------------------------------------------------------------------------------------------ folds


def test_fold_ids_partition_within_targets_and_are_seeded():
    measured, facts = _world()
    data = Dataset.build(measured, facts)
    ids = fold_ids(data, 5, seed=7)
    assert ids.shape == data.y.shape and set(ids.tolist()) == set(range(5))
    for t in set(data.targets.tolist()):
        counts = np.bincount(ids[data.targets == t], minlength=5)
        assert counts.sum() == (data.targets == t).sum() and counts.max() - counts.min() <= 1, \
            "folds are drawn within each target, balanced"
    assert np.array_equal(ids, fold_ids(data, 5, seed=7))
    assert not np.array_equal(ids, fold_ids(data, 5, seed=8))
    # out_of_fold gives every row exactly one prediction, from the model of its own fold
    pred = out_of_fold(data, ids)
    assert np.isfinite(pred).all()
    with pytest.raises(ConfigError, match="folds must be >= 2"):
        fold_ids(data, 1, seed=0)


# ------------------------------------------------------------------------------------------ scoring


def test_score_ignores_k1_rows_and_is_per_target():
    measured, facts = _world(n=4)
    data = Dataset.build(measured, facts)
    pred = data.y.copy()
    pred[data.targets == "d1"] *= -1  # perfectly wrong ranking for d1
    pred[data.targets == "d2"] = 1.0  # constant: no ranking -> NaN, left out of the mean
    s = score(pred, data)
    assert s.per_target["d0"] == pytest.approx(1.0) and s.per_target["d3"] == pytest.approx(1.0)
    assert s.per_target["d1"] == pytest.approx(-1.0) and math.isnan(s.per_target["d2"])
    assert s.spearman_within == pytest.approx(1 / 3)
    assert s.n == int((data.k >= 2).sum()) == 4 * 7
    absurd = pred.copy()
    absurd[data.k == 1] = 1e6  # k = 1 rows are never scored
    assert score(absurd, data).as_dict() == s.as_dict()
    nan_k1 = pred.copy()
    nan_k1[data.k == 1] = np.nan
    assert score(nan_k1, data).as_dict() == s.as_dict()
    d = s.as_dict()
    assert d["per_target"]["d2"] is None and d["n"] == 28


def test_dataset_needs_the_single_adapters():
    measured, facts = _world(n=3)
    no_single = [m for m in measured if not (m.candidate.k == 1 and m.candidate.target == "d0")]
    data = Dataset.build(no_single, facts)
    assert "d0" not in set(data.targets.tolist()), "a target without its k = 1 metric is dropped"
    with pytest.raises(ConfigError, match="single adapter"):
        Dataset.build([m for m in measured if m.candidate.k > 1], facts)


# ------------------------------------------------------------------------------------------ the ridge


def test_predictor_rejects_unknown_features_and_bad_settings():
    measured, facts = _world(n=3)
    data = Dataset.build(measured, facts)
    with pytest.raises(ConfigError, match="unknown predictor feature 'nosuch'"):
        MixturePredictor(data.columns, use=["k", "nosuch"])
    with pytest.raises(ConfigError, match="alpha"):
        MixturePredictor(data.columns, alpha=-1.0)
    with pytest.raises(ConfigError, match="not fitted"):
        MixturePredictor(data.columns).predict(data.x)
    with pytest.raises(ConfigError, match="nothing to fit"):
        MixturePredictor(data.columns).fit(data.x[:0], data.y[:0])
    model = MixturePredictor(data.columns, use=["k", "inv_k"]).fit(data.x, data.y)
    assert set(model.coefficients()) == {"k", "inv_k"}
    full = MixturePredictor(data.columns).fit(data.x, data.y)
    assert set(FEATURES) <= set(full.coefficients()) and any(c.startswith("pair=") for c in full.coefficients())


def test_unknown_sign_change_is_imputed_not_propagated():
    """A mixture whose sign change is unknown (None -> NaN) gets the training mean, in fit and predict."""
    measured, facts = _world(sign_change=lambda t, p: None)
    data = Dataset.build(measured, facts)
    col = data.columns.index("target_sign_change")
    assert np.isnan(data.x[data.k >= 2, col]).all() and (data.x[data.k == 1, col] == 0).all()
    assert np.isfinite(out_of_fold(data, fold_ids(data, 3, 0))).all()

    # partly known: a NaN predicts exactly as the training column's mean would
    rng = np.random.default_rng(0)
    x = data.x.copy()
    x[:, col] = np.where(data.k >= 2, rng.uniform(0, 0.3, len(x)), 0.0)
    x[rng.random(len(x)) < 0.3, col] = np.nan
    model = MixturePredictor(data.columns, n_boot=4, seed=1).fit(x, data.y)
    row = data.x[data.k >= 2][:1].copy()
    row[0, col] = np.nan
    filled = row.copy()
    filled[0, col] = np.nanmean(x[:, col])
    mean, std = model.predict_with_std(row)
    assert np.isfinite(mean).all() and np.isfinite(std).all()
    assert mean[0] == pytest.approx(model.predict(filled)[0])


def test_bootstrap_spread_is_seeded():
    measured, facts = _world()
    data = Dataset.build(measured, facts)
    a = MixturePredictor(data.columns, n_boot=8, seed=3).fit(data.x, data.y).predict_with_std(data.x)
    b = MixturePredictor(data.columns, n_boot=8, seed=3).fit(data.x, data.y).predict_with_std(data.x)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[1].max() > 0
    assert not MixturePredictor(data.columns).fit(data.x, data.y).predict_with_std(data.x)[1].any()


# ------------------------------------------------------------------------------------------ read_measured


def _trial(target, subset, rule="average", evaluation="clean", tag="", params=None) -> Trial:
    return Trial(target=target, subset=tuple(subset), rule=rule, split="test", evaluation=evaluation, seed=0,
                 rule_params=params or {}, tag=tag)


def _result(trial: Trial, metric: float | None, tsc: float | None = 0.1) -> TrialResult:
    return TrialResult(trial, "accuracy", metric, {"accuracy": metric}, 0.4, tsc, "raw", 10, 0.01)


@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = tmp_path / "r.sqlite"
    with ResultsStore(path) as s:
        s.record([
            _result(_trial("a", ["a"]), 0.8, 0.0),
            _result(_trial("a", ["a", "b"]), 0.7),
            _result(_trial("a", ["a", "b"], tag="greedy_min"), 0.7),  # the same mixture, tagged
            _result(_trial("a", ["a", "b"], evaluation="fgsm"), 0.3),
            _result(_trial("a", ["a", "b"], rule="ties", params={"density": 0.5}), 0.65),
            _result(_trial("b", ["b"]), 0.6, 0.0),
            _result(_trial("b", ["a", "b"]), None),  # a failed metric
        ])
    return path


def test_read_measured_dedupes_and_filters(store):
    clean = read_measured(store)
    keys = [m.candidate.key for m in clean]
    assert len(keys) == len(set(keys)) == 4, "a mixture stored under two tags is counted once"
    by = {(m.candidate.target, m.candidate.subset, m.candidate.rule_label): m for m in clean}
    assert by[("a", ("a", "b"), "average")].metric == pytest.approx(0.7)
    assert by[("a", ("a", "b"), "average")].target_sign_change == pytest.approx(0.1)
    assert by[("a", ("a", "b"), 'ties{"density":0.5}')].candidate.rule_params == {"density": 0.5}
    assert ("b", ("a", "b"), "average") not in by, "rows without a metric are skipped"
    fgsm = read_measured(store, "fgsm")
    assert [(m.candidate.subset, m.metric) for m in fgsm] == [(("a", "b"), pytest.approx(0.3))]
    avg = read_measured(store, rules=["average"])
    assert {m.candidate.rule for m in avg} == {"average"} and len(avg) == 3
    assert Candidate("a", ("b", "a")) in {m.candidate for m in avg}


def test_read_measured_errors(store, tmp_path):
    with pytest.raises(ArtefactError, match="no results store there"):
        read_measured(tmp_path / "missing.sqlite")
    with pytest.raises(ArtefactError, match="no 'textfooler' trials"):
        read_measured(store, "textfooler")
    with pytest.raises(ArtefactError, match=r"of rules \['nosuch'\]"):
        read_measured(store, rules=["nosuch"])


# ------------------------------------------------------------------------------------------ trees


def test_trees_model_never_leaks_and_learns_partner_effects():
    """``model="trees"``: the same no-leak guarantee (it goes through the same out_of_fold), an additive world
    ranked well, a spread over trees, importances that sum to 1, and a clear error for an unknown model."""
    measured, facts = _world()
    data = Dataset.build(measured, facts)
    folds = fold_ids(data, 5, seed=0)
    base = out_of_fold(data, folds, None, model="trees")
    i = next(j for j in range(len(data.y)) if data.k[j] >= 3 and data.targets[j] == "d2")
    pert = out_of_fold(Dataset.build(_perturbed(measured, i), facts), folds, None, model="trees")
    assert pert[i] == base[i] and np.array_equal(pert[folds == folds[i]], base[folds == folds[i]])
    assert np.abs(pert[folds != folds[i]] - base[folds != folds[i]]).max() > 0

    facts7 = random_facts(7, seed=1)
    single, effects = additive_world(7, seed=1)
    data7 = Dataset.build(exhaustive(facts7.names, additive_metric(single, effects)), facts7)
    report = evaluate_predictor(data7, folds=5, seed=0, model="trees",
                                ablations={"all features": ABLATIONS["all features"]})
    assert report.model == "trees" and report.heldout["all features"].spearman_within > 0.8
    model = MixturePredictor(data7.columns, model="trees").fit(data7.x, data7.y)
    mean, std = model.predict_with_std(data7.x[:5])
    assert mean.shape == std.shape == (5,) and (std >= 0).all() and std.max() > 0
    assert sum(model.coefficients().values()) == pytest.approx(1.0)
    with pytest.raises(ConfigError, match="unknown predictor model 'nope'"):
        MixturePredictor(data7.columns, model="nope")
