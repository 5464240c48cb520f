"""Task metrics: accuracy, F1 variants, Matthews correlation (CoLA), Pearson / Spearman (STS-B)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import stats
from sklearn.metrics import f1_score, matthews_corrcoef

from adaptermix.registry import Registry

MetricFn = Callable[[np.ndarray, np.ndarray], float]
METRICS: Registry[MetricFn] = Registry("metric")


def _safe_corr(fn: Callable[..., object], y: np.ndarray, p: np.ndarray) -> float:
    if len(y) < 2 or np.std(y) == 0 or np.std(p) == 0:
        return 0.0
    return float(fn(y, p)[0])  # type: ignore[index]


METRICS.register("accuracy", lambda y, p: float(np.mean(y == p)) if len(y) else 0.0)
METRICS.register("f1", lambda y, p: float(f1_score(y, p, average="binary", pos_label=1, zero_division=0)))
METRICS.register("macro_f1", lambda y, p: float(f1_score(y, p, average="macro", zero_division=0)))
METRICS.register("f1_micro", lambda y, p: float(f1_score(y, p, average="micro", zero_division=0)))
METRICS.register("f1_weighted", lambda y, p: float(f1_score(y, p, average="weighted", zero_division=0)))
METRICS.register("matthews_correlation", lambda y, p: float(matthews_corrcoef(y, p)) if len(y) else 0.0)
METRICS.register("pearson", lambda y, p: _safe_corr(stats.pearsonr, y, p))
METRICS.register("spearman", lambda y, p: _safe_corr(stats.spearmanr, y, p))

CLASSIFICATION_METRICS = ("accuracy", "macro_f1", "matthews_correlation")
REGRESSION_METRICS = ("pearson", "spearman")


def compute_metrics(
    labels: np.ndarray, outputs: np.ndarray, regression: bool, headline: str, extra: tuple[str, ...] = ()
) -> dict[str, float]:
    """All standard metrics of the problem type plus the task's headline metric.

    ``outputs`` are logits [n, C] for classification (argmax taken) or predictions [n] / [n, 1] for
    regression.
    """
    if regression:
        preds = outputs.reshape(-1)
        names = REGRESSION_METRICS
    else:
        preds = outputs.argmax(-1) if outputs.ndim == 2 else outputs
        names = CLASSIFICATION_METRICS
    out = {}
    for name in dict.fromkeys((*names, headline, *extra)):
        out[name] = METRICS.get(name)(labels, preds)
    return out
