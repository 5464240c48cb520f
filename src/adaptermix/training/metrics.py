"""Task metrics: accuracy, F1 variants, Matthews correlation (CoLA), Pearson / Spearman (STS-B), log loss.

Each metric is a function ``(labels, predictions, outputs) -> float`` where ``predictions`` are class
indices (or regression values) and ``outputs`` the raw model outputs (logits), for metrics such as log loss
that need probabilities. Names follow the data pack's manifests (``f1_macro`` and ``macro_f1`` are the same).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy import stats
from scipy.special import log_softmax
from sklearn.metrics import f1_score, matthews_corrcoef

from adaptermix.core.registry import Registry

MetricFn = Callable[[np.ndarray, np.ndarray, np.ndarray], float]
METRICS: Registry[MetricFn] = Registry("metric")


def _safe_corr(fn: Callable[[np.ndarray, np.ndarray], Sequence[Any]], y: np.ndarray, p: np.ndarray) -> float:
    if len(y) < 2 or np.std(y) == 0 or np.std(p) == 0:
        return 0.0
    return float(fn(y, p)[0])


def _f1(average: str) -> MetricFn:
    kw = {"pos_label": 1} if average == "binary" else {}
    return lambda y, p, o: float(f1_score(y, p, average=average, zero_division=0, **kw))


def _log_loss(y: np.ndarray, p: np.ndarray, outputs: np.ndarray) -> float:
    if len(y) == 0:
        return 0.0
    logp = log_softmax(outputs.astype(np.float64), axis=-1)
    return float(-logp[np.arange(len(y)), y.astype(int)].mean())


METRICS.register("accuracy", lambda y, p, o: float(np.mean(y == p)) if len(y) else 0.0)
METRICS.register("f1", _f1("binary"))
METRICS.register("macro_f1", _f1("macro"))
METRICS.register("f1_macro", _f1("macro"))
METRICS.register("f1_micro", _f1("micro"))
METRICS.register("f1_weighted", _f1("weighted"))
METRICS.register("matthews_correlation", lambda y, p, o: float(matthews_corrcoef(y, p)) if len(y) else 0.0)
METRICS.register("pearson", lambda y, p, o: _safe_corr(stats.pearsonr, y, p))
METRICS.register("spearman", lambda y, p, o: _safe_corr(stats.spearmanr, y, p))
METRICS.register("log_loss", _log_loss)

CLASSIFICATION_METRICS = ("accuracy", "macro_f1", "matthews_correlation")
REGRESSION_METRICS = ("pearson", "spearman")


def compute_metrics(
    labels: np.ndarray, outputs: np.ndarray, regression: bool, headline: str, extra: tuple[str, ...] = ()
) -> dict[str, float]:
    """All standard metrics of the problem type plus the task's headline and secondary metrics.

    ``outputs`` are logits [n, C] for classification (argmax taken) or predictions [n] / [n, 1] for
    regression.
    """
    names: tuple[str, ...]
    if regression:
        preds = outputs.reshape(-1)
        names = REGRESSION_METRICS
    else:
        preds = outputs.argmax(-1) if outputs.ndim == 2 else outputs
        names = CLASSIFICATION_METRICS
    return {name: METRICS.get(name)(labels, preds, outputs) for name in dict.fromkeys((*names, headline, *extra))}


# ------------------------------------------------------------------------------ constant-prediction baselines

#: Prefix of the baseline entries stored beside a split's metrics (``metrics["test"]["baseline_accuracy"]``).
BASELINE_PREFIX = "baseline_"
#: An adapter whose headline metric is within this many percentage points of its baseline (or below it) is
#: flagged: it learnt little, so mixing it can lose little.
NEAR_BASELINE_PP = 2.0


def constant_outputs(train_labels: np.ndarray, n: int, regression: bool, num_labels: int = 0) -> np.ndarray:
    """The outputs of a model that ignores its input, fitted on the TRAINING labels only.

    Classification: log class priors (add-one smoothed, so an unseen class is not log 0), repeated ``n``
    times; their argmax is the majority training class (ties: the smallest class index, numpy's argmax),
    and their log loss is that of predicting the training class frequencies. Regression: the training
    mean, repeated ``n`` times.
    """
    y = np.asarray(train_labels)
    if regression:
        return np.full((n, 1), float(y.mean()) if len(y) else 0.0, dtype=np.float64)
    classes = max(num_labels, int(y.max()) + 1 if len(y) else 1)
    counts = np.bincount(y.astype(int), minlength=classes).astype(np.float64)
    log_prior = np.log((counts + 1.0) / (counts.sum() + classes))
    return np.tile(log_prior, (n, 1))


def baseline_metrics(
    train_labels: np.ndarray,
    eval_labels: np.ndarray,
    regression: bool,
    headline: str,
    extra: tuple[str, ...] = (),
    num_labels: int = 0,
) -> dict[str, float]:
    """Every metric :func:`compute_metrics` reports, for the constant prediction of the training labels
    (majority class / training mean) evaluated on ``eval_labels``; keys carry :data:`BASELINE_PREFIX`.

    What a model must beat to have learnt anything: accuracy = the evaluation share of the majority
    training class; F1 (binary) = 0 unless the majority class is the positive class 1; MCC = 0 (a constant
    prediction has no correlation). Regression: Pearson and Spearman of a constant prediction are
    undefined; they are reported as 0.0 (what :data:`METRICS` returns for a constant input), not NaN.
    """
    outputs = constant_outputs(train_labels, len(eval_labels), regression, num_labels)
    values = compute_metrics(np.asarray(eval_labels), outputs, regression, headline, extra)
    return {f"{BASELINE_PREFIX}{name}": value for name, value in values.items()}


def is_near(value: float, baseline: float, name: str = "") -> bool:
    """Whether ``value`` is at most :data:`NEAR_BASELINE_PP` points better than ``baseline`` (or worse):
    the adapter learnt little. Lower is better for log loss."""
    margin = 100.0 * ((baseline - value) if name == "log_loss" else (value - baseline))
    return margin <= NEAR_BASELINE_PP + 1e-9  # 0.615 - 0.595 is 2.0000000000000018 points in binary


def near_baseline(metrics: dict[str, float], name: str) -> bool | None:
    """Whether the headline ``name`` is within :data:`NEAR_BASELINE_PP` points of its baseline (below it
    counts too); None when no baseline is stored (artefacts written before baselines existed)."""
    value, base = metrics.get(name), metrics.get(f"{BASELINE_PREFIX}{name}")
    if value is None or base is None:
        return None
    return is_near(float(value), float(base), name)


def describe_against_baseline(split: str, name: str, metrics: dict[str, float]) -> str:
    """One line such as ``test accuracy 0.770 (majority baseline 0.509, +26.1 pts)``.

    For log loss lower is better, so its margin is printed as baseline - metric.
    """
    value = metrics.get(name)
    if value is None:
        return f"{split} {name}: not computed"
    base = metrics.get(f"{BASELINE_PREFIX}{name}")
    if base is None:
        return f"{split} {name} {value:.3f} (no baseline stored)"
    margin = 100.0 * ((base - value) if name == "log_loss" else (value - base))
    kind = "training-mean baseline" if name in REGRESSION_METRICS else "majority baseline"
    near = f"; within {NEAR_BASELINE_PP:g} pts of it: learnt little" if near_baseline(metrics, name) else ""
    return f"{split} {name} {value:.3f} ({kind} {base:.3f}, {margin:+.1f} pts{near})"
