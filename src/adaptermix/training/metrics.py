"""Task metrics: accuracy, F1 variants, Matthews correlation (CoLA), Pearson / Spearman (STS-B), log loss.

Each metric is a function ``(labels, predictions, outputs) -> float`` where ``predictions`` are class
indices (or regression values) and ``outputs`` the raw model outputs (logits), for metrics such as log loss
that need probabilities. Names follow the data pack's manifests (``f1_macro`` and ``macro_f1`` are the same).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import stats
from scipy.special import log_softmax
from sklearn.metrics import f1_score, matthews_corrcoef

from adaptermix.registry import Registry

MetricFn = Callable[[np.ndarray, np.ndarray, np.ndarray], float]
METRICS: Registry[MetricFn] = Registry("metric")


def _safe_corr(fn: Callable[..., object], y: np.ndarray, p: np.ndarray) -> float:
    if len(y) < 2 or np.std(y) == 0 or np.std(p) == 0:
        return 0.0
    return float(fn(y, p)[0])  # type: ignore[index]


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
    if regression:
        preds = outputs.reshape(-1)
        names = REGRESSION_METRICS
    else:
        preds = outputs.argmax(-1) if outputs.ndim == 2 else outputs
        names = CLASSIFICATION_METRICS
    return {name: METRICS.get(name)(labels, preds, outputs) for name in dict.fromkeys((*names, headline, *extra))}
