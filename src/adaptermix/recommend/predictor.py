"""A mixture-quality predictor, fitted on a results store, and its honest out-of-sample evaluation.

The model predicts a mixture's change from the target's single adapter, in points, from the features of
:mod:`adaptermix.recommend.features` (nothing measured on the mixture itself). It is a ridge regression on
standardised features — small data (tens to thousands of mixtures), a few features, and coefficients a
reader can interpret — with a bootstrap ensemble for the uncertainty a search needs.

Accuracy is only ever reported out of sample:

- **held-out mixtures of seen targets**: K-fold over mixtures (each mixture in exactly one fold; folds are
  drawn within each target), every prediction made by a model that never saw that mixture; Spearman
  between predicted and measured *within each target* (the search's question: which mixture of this
  target is best), averaged over targets, and the mean absolute error in points;
- **leave one target out**: fit on the other targets, predict every mixture of the held-out one.

k = 1 rows are fitted (their change is 0 by definition) but never scored: predicting them is trivial and
would inflate the numbers. Ablations refit with feature groups removed — the paper's hypothesis is that the
sign statistics (FSD, sign change) carry the prediction; ``k only`` is the control every other row must beat.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats as sps

from adaptermix.core.errors import ConfigError
from adaptermix.recommend.features import (
    BASE_FEATURES,
    FEATURES,
    SIGN_FEATURES,
    SIMILARITY_FEATURES,
    Measured,
    PoolFacts,
    feature_matrix,
    singles,
)

#: The partner indicators (``with=j``, ``pair=t:j``) as one feature group.
PARTNERS = "partners"

#: Feature sets of the ablation table; ``k only`` is the control, ``all features`` the predictor.
ABLATIONS: dict[str, tuple[str, ...]] = {
    "k only (control)": ("k", "inv_k"),
    "k + single": BASE_FEATURES,
    "k + single + sign (FSD, sign change)": BASE_FEATURES + SIGN_FEATURES,
    "k + single + similarity": BASE_FEATURES + SIMILARITY_FEATURES,
    "k + single + partners (which adapters)": (*BASE_FEATURES, PARTNERS),
    "all but partners": FEATURES,
    "all features": (*FEATURES, PARTNERS),
}
DEFAULT_FEATURES: tuple[str, ...] = ABLATIONS["all features"]


#: The predictor's model families: ``ridge`` (default: interpretable coefficients, bootstrap spread) and
#: ``trees`` (extremely randomised trees, 300 trees, leaves of >= 2 mixtures; importances instead of
#: coefficients, the spread over trees as uncertainty).
MODELS = ("ridge", "trees")


class MixturePredictor:
    """Ridge regression on standardised features (NaNs imputed with the training mean), optionally an
    ensemble of ``n_boot`` bootstrap refits whose spread is the prediction's uncertainty; or, with
    ``model="trees"``, an extra-trees ensemble (sklearn) on the same features."""

    def __init__(self, columns: Sequence[str], use: Sequence[str] | None = None, alpha: float = 3.0,
                 n_boot: int = 0, seed: int = 0, model: str = "ridge") -> None:
        if model not in MODELS:
            raise ConfigError(f"unknown predictor model {model!r}; valid: {', '.join(MODELS)}")
        self.model = model
        self._trees: Any = None
        self._impute: np.ndarray | None = None
        self.columns = list(columns)
        wanted = set(use) if use is not None else set(DEFAULT_FEATURES)
        unknown = sorted(w for w in wanted if w not in self.columns and w != PARTNERS)
        if unknown:
            raise ConfigError(f"unknown predictor feature {unknown[0]!r}; known: {', '.join(FEATURES)}, {PARTNERS}")
        partner = PARTNERS in wanted
        # rule indicators always come along: a rule changes what a subset does
        self.use = [i for i, c in enumerate(self.columns)
                    if c in wanted or c.startswith("rule=") or (partner and c.startswith(("with=", "pair=")))]
        if alpha < 0:
            raise ConfigError("alpha must be >= 0")
        self.alpha, self.n_boot, self.seed = alpha, n_boot, seed
        self._fits: list[tuple[np.ndarray, np.ndarray, np.ndarray, float]] = []

    def _fit_one(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        mean = np.nanmean(x, axis=0) if len(x) else np.zeros(x.shape[1])
        mean = np.where(np.isnan(mean), 0.0, mean)
        x = np.where(np.isnan(x), mean, x)
        scale = x.std(axis=0)
        scale = np.where(scale > 1e-12, scale, 1.0)
        z = (x - mean) / scale
        y_mean = float(y.mean())
        a = z.T @ z + self.alpha * np.eye(z.shape[1])
        w = np.linalg.solve(a, z.T @ (y - y_mean))
        return mean, scale, w, y_mean

    def fit(self, x: np.ndarray, y: np.ndarray) -> MixturePredictor:
        """Fit on rows ``x`` [n, len(columns)] and responses ``y`` [n] (change from single, points)."""
        if len(x) == 0:
            raise ConfigError("nothing to fit the predictor on")
        xs = np.asarray(x, dtype=np.float64)[:, self.use]
        y = np.asarray(y, dtype=np.float64)
        if self.model == "trees":
            from sklearn.ensemble import ExtraTreesRegressor

            mean = np.nanmean(xs, axis=0) if len(xs) else np.zeros(xs.shape[1])
            self._impute = np.where(np.isnan(mean), 0.0, mean)
            self._trees = ExtraTreesRegressor(n_estimators=300, min_samples_leaf=2, random_state=self.seed)
            self._trees.fit(np.where(np.isnan(xs), self._impute, xs), y)
            return self
        self._fits = [self._fit_one(xs, y)]
        rng = np.random.default_rng(self.seed)
        for _ in range(self.n_boot):
            pick = rng.integers(0, len(xs), len(xs))
            self._fits.append(self._fit_one(xs[pick], y[pick]))
        return self

    def _predict_all(self, x: np.ndarray) -> np.ndarray:
        """[fits, n]: row 0 the prediction, the other rows the ensemble (bootstrap refits or trees)."""
        xs = np.asarray(x, dtype=np.float64)[:, self.use]
        if self._trees is not None and self._impute is not None:  # fit() sets both together
            xt = np.where(np.isnan(xs), self._impute, xs)
            per_tree = np.asarray([t.predict(xt) for t in self._trees.estimators_])
            return np.vstack([per_tree.mean(axis=0, keepdims=True), per_tree])
        if not self._fits:
            raise ConfigError("the predictor is not fitted")
        out = []
        for mean, scale, w, y_mean in self._fits:
            z = (np.where(np.isnan(xs), mean, xs) - mean) / scale
            out.append(z @ w + y_mean)
        return np.asarray(out)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Predicted change from the single adapter (points), from the fit on all rows."""
        return self._predict_all(x)[0]

    def predict_with_std(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Prediction and the bootstrap ensemble's standard deviation (zeros without ``n_boot``)."""
        preds = self._predict_all(x)
        std = preds[1:].std(axis=0) if len(preds) > 1 else np.zeros(preds.shape[1])
        return preds[0], std

    def coefficients(self) -> dict[str, float]:
        """Standardised coefficients of the full fit: points per standard deviation of each feature
        (``trees``: the impurity importances, which sum to 1 and carry no sign)."""
        if self._trees is not None:
            return {self.columns[i]: float(v) for i, v in zip(self.use, self._trees.feature_importances_, strict=True)}
        _, _, w, _ = self._fits[0]
        return {self.columns[i]: float(c) for i, c in zip(self.use, w, strict=True)}

    def top_coefficients(self, n: int = 12) -> list[tuple[str, float]]:
        """The ``n`` largest standardised coefficients by magnitude."""
        return sorted(self.coefficients().items(), key=lambda kv: -abs(kv[1]))[:n]


# ------------------------------------------------------------------------------------------ evaluation


@dataclass(frozen=True)
class Dataset:
    """Measured mixtures as a design matrix: features, responses (points) and bookkeeping."""

    measured: list[Measured]
    x: np.ndarray
    y: np.ndarray
    columns: list[str]
    targets: np.ndarray
    k: np.ndarray

    @classmethod
    def build(cls, measured: Sequence[Measured], facts: PoolFacts) -> Dataset:
        single = singles(measured)
        kept = [m for m in measured if m.candidate.target in single and m.candidate.target in facts.names
                and all(n in facts.names for n in m.candidate.subset)]
        if not kept:
            raise ConfigError("no measured mixture has its target's single adapter (k = 1) in the store")
        labels = sorted({m.candidate.rule_label for m in kept})
        extra = labels[1:] if len(labels) > 1 else []  # one indicator per rule beyond the first
        x, columns = feature_matrix(kept, facts, single, extra)
        y = np.asarray([(m.metric - single[m.candidate.target]) * 100.0 for m in kept])
        return cls(list(kept), x, y, columns, np.asarray([m.candidate.target for m in kept]),
                   np.asarray([m.candidate.k for m in kept]))


@dataclass(frozen=True)
class Score:
    """Out-of-sample agreement of one predictor setting."""

    spearman_within: float  # mean over targets of Spearman(predicted, measured) among its k >= 2 mixtures
    per_target: dict[str, float]
    pooled_spearman: float
    mae_points: float
    n: int

    def as_dict(self) -> dict[str, object]:
        return {"spearman_within": _round(self.spearman_within), "pooled_spearman": _round(self.pooled_spearman),
                "mae_points": _round(self.mae_points), "n": self.n,
                "per_target": {t: _round(v) for t, v in self.per_target.items()}}


def _round(x: float) -> float | None:
    return None if x is None or math.isnan(x) else round(float(x), 4)


def score(pred: np.ndarray, data: Dataset) -> Score:
    """Spearman within targets, pooled Spearman and MAE over the scored (k >= 2, predicted) rows."""
    scored = (data.k >= 2) & ~np.isnan(pred)
    per_target: dict[str, float] = {}
    for t in sorted(set(data.targets[scored].tolist())):
        m = scored & (data.targets == t)
        if m.sum() >= 3 and np.ptp(pred[m]) > 0 and np.ptp(data.y[m]) > 0:
            per_target[t] = float(sps.spearmanr(pred[m], data.y[m]).statistic)
        else:
            per_target[t] = float("nan")
    finite = [v for v in per_target.values() if not math.isnan(v)]
    within = float(np.mean(finite)) if finite else float("nan")
    pooled = (float(sps.spearmanr(pred[scored], data.y[scored]).statistic)
              if scored.sum() >= 3 and np.ptp(pred[scored]) > 0 else float("nan"))
    mae = float(np.abs(pred[scored] - data.y[scored]).mean()) if scored.any() else float("nan")
    return Score(within, per_target, pooled, mae, int(scored.sum()))


def fold_ids(data: Dataset, folds: int, seed: int) -> np.ndarray:
    """A fold per row: each mixture in one fold, drawn within each target (seeded)."""
    if folds < 2:
        raise ConfigError("folds must be >= 2")
    rng = np.random.default_rng(seed)
    ids = np.zeros(len(data.y), dtype=int)
    for t in sorted(set(data.targets.tolist())):
        rows = np.flatnonzero(data.targets == t)
        rng.shuffle(rows)
        ids[rows] = np.arange(len(rows)) % folds
    return ids


def out_of_fold(data: Dataset, groups: np.ndarray, use: Sequence[str] | None = None,
                alpha: float = 3.0, model: str = "ridge") -> np.ndarray:
    """Each row predicted by a model fitted on the rows of the *other* groups only (NaN if no rows left).

    The fit receives ``data.x[train]`` and ``data.y[train]`` and nothing else: a held-out row's own
    measurement cannot reach it (tested)."""
    pred = np.full(len(data.y), np.nan)
    for g in np.unique(groups):
        test = groups == g
        train = ~test
        if not train.any():
            continue
        fitted = MixturePredictor(data.columns, use, alpha, model=model).fit(data.x[train], data.y[train])
        pred[test] = fitted.predict(data.x[test])
    return pred


@dataclass
class PredictorReport:
    """Held-out accuracy of the full predictor and of each ablation, plus the full fit's coefficients."""

    n_mixtures: int
    n_targets: int
    folds: int
    model: str = "ridge"
    heldout: dict[str, Score] = field(default_factory=dict)  # ablation -> within-target K-fold
    loto: dict[str, Score] = field(default_factory=dict)  # ablation -> leave one target out
    coefficients: dict[str, float] = field(default_factory=dict)
    predictions: dict[str, np.ndarray] = field(default_factory=dict)  # "heldout" / "loto" (all features)

    def as_dict(self) -> dict[str, object]:
        return {
            "n_mixtures": self.n_mixtures, "n_targets": self.n_targets, "folds": self.folds, "model": self.model,
            "heldout": {k: v.as_dict() for k, v in self.heldout.items()},
            "leave_one_target_out": {k: v.as_dict() for k, v in self.loto.items()},
            "coefficients_points_per_sd": {k: round(v, 4) for k, v in self.coefficients.items()},
        }


def evaluate_predictor(data: Dataset, folds: int = 5, seed: int = 0, alpha: float = 3.0, model: str = "ridge",
                       ablations: Mapping[str, Sequence[str]] = ABLATIONS) -> PredictorReport:
    """Held-out (K-fold within targets) and leave-one-target-out accuracy for every feature set."""
    report = PredictorReport(len(data.y), len(set(data.targets.tolist())), folds, model)
    fold = fold_ids(data, folds, seed)
    for name, use in ablations.items():
        held = out_of_fold(data, fold, use, alpha, model)
        loto = out_of_fold(data, data.targets, use, alpha, model)
        report.heldout[name] = score(held, data)
        report.loto[name] = score(loto, data)
        if name == "all features":
            report.predictions = {"heldout": held, "loto": loto}
    report.coefficients = dict(MixturePredictor(data.columns, None, alpha, model=model).fit(data.x, data.y)
                               .top_coefficients(15))
    return report


def format_report(report: PredictorReport) -> str:
    """The ablation table (held-out and leave-one-target-out) and the coefficients, as text."""
    def f(x: float) -> str:
        return "  n/a" if math.isnan(x) else f"{x:+.3f}"

    lines = [f"{report.n_mixtures} mixtures of {report.n_targets} targets, model {report.model}; "
             "k = 1 rows fitted, not scored",
             "", f"{'features':42s} {'held-out ρ':>11s} {'MAE pts':>8s}   {'LOTO ρ':>8s} {'MAE pts':>8s}"]
    for name in report.heldout:
        h, lo = report.heldout[name], report.loto[name]
        lines.append(f"{name:42s} {f(h.spearman_within):>11s} {h.mae_points:8.2f}   "
                     f"{f(lo.spearman_within):>8s} {lo.mae_points:8.2f}")
    lines += ["", f"held-out ρ: Spearman within each target over its k >= 2 mixtures ({report.folds}-fold), "
              "mean over targets; LOTO: fitted on the other targets", "",
              ("largest importances of the full fit (extra-trees impurity importances):" if report.model == "trees"
               else "largest coefficients of the full fit (points per standard deviation of the feature):")]
    lines += [f"  {k:28s} {v:+8.3f}" for k, v in sorted(report.coefficients.items(), key=lambda kv: -abs(kv[1]))]
    return "\n".join(lines)
