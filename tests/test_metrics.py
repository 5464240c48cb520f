"""Every metric named by a data-pack manifest is registered and computed correctly on a hand-made case."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from adaptermix.training.metrics import METRICS, compute_metrics

Y = np.array([0, 1, 1, 0, 1])
LOGITS = np.array([[2.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.5, 0.0], [0.0, 3.0]])  # preds 0 1 0 0 1


def test_hand_computed_values():
    m = compute_metrics(Y, LOGITS, False, "f1", ("log_loss", "f1_macro"))
    assert m["accuracy"] == pytest.approx(0.8)
    assert m["f1"] == pytest.approx(2 * 1.0 * (2 / 3) / (1.0 + 2 / 3))  # precision 1, recall 2/3
    assert m["f1_macro"] == m["macro_f1"]
    p = np.exp(LOGITS) / np.exp(LOGITS).sum(1, keepdims=True)
    assert m["log_loss"] == pytest.approx(-np.mean(np.log(p[np.arange(5), Y])))


def test_regression_metrics():
    m = compute_metrics(np.array([0.0, 1.0, 2.0, 3.0]), np.array([[0.1], [0.9], [2.2], [2.9]]), True, "pearson")
    assert m["pearson"] > 0.99 and m["spearman"] == pytest.approx(1.0)


def test_every_manifest_metric_is_registered(real_data):
    for manifest in real_data.glob("*/dataset.json"):
        meta = json.loads(manifest.read_text())
        for name in [meta.get("metric"), *meta.get("secondary_metrics", [])]:
            if name is not None:
                assert name in METRICS, (manifest.parent.name, name)
    assert not math.isnan(compute_metrics(Y, LOGITS, False, "matthews_correlation")["matthews_correlation"])
