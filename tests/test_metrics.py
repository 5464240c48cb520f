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


# ------------------------------------------------------------------------------ constant-prediction baselines


def test_majority_baseline_classification_accuracy_f1_mcc():
    from adaptermix.training.metrics import baseline_metrics

    train = np.array([1, 1, 1, 0, 0])  # majority class 1 (the positive class)
    test = np.array([0, 1, 0, 1, 1, 0, 0, 0])  # 3 of 8 are class 1
    b = baseline_metrics(train, test, False, "f1", ("f1_micro", "f1_weighted", "log_loss"))
    assert b["baseline_accuracy"] == pytest.approx(3 / 8)
    assert b["baseline_f1"] == pytest.approx(2 * (3 / 8) / (1 + 3 / 8))  # precision 3/8, recall 1
    assert b["baseline_f1_micro"] == pytest.approx(3 / 8)  # micro F1 = accuracy for single-label
    assert b["baseline_macro_f1"] == pytest.approx((0 + 2 * (3 / 8) / (1 + 3 / 8)) / 2)
    assert b["baseline_f1_weighted"] == pytest.approx((3 / 8) * 2 * (3 / 8) / (1 + 3 / 8))
    assert b["baseline_matthews_correlation"] == 0.0
    prior = np.array([3.0, 4.0]) / 7.0  # add-one smoothed training frequencies of classes 0 and 1
    assert b["baseline_log_loss"] == pytest.approx(-np.mean(np.log(prior[test])))


def test_majority_baseline_uses_training_labels_and_unseen_classes():
    from adaptermix.training.metrics import baseline_metrics

    # Training majority is class 0 although the evaluation split is mostly class 2: accuracy 1/4; macro F1
    # over the classes present (0: precision 1/4, recall 1 -> 0.4; 2: 0) = 0.2.
    b = baseline_metrics(np.array([0, 0, 1]), np.array([2, 2, 2, 0]), False, "f1_macro", num_labels=3)
    assert b["baseline_accuracy"] == pytest.approx(0.25) and b["baseline_f1_macro"] == pytest.approx(0.2)
    assert b["baseline_matthews_correlation"] == 0.0


def test_regression_baseline_is_the_training_mean_with_zero_correlation():
    from adaptermix.training.metrics import baseline_metrics, constant_outputs

    assert constant_outputs(np.array([1.0, 2.0, 6.0]), 2, True).ravel().tolist() == [3.0, 3.0]
    b = baseline_metrics(np.array([1.0, 2.0, 6.0]), np.array([0.0, 5.0, 1.0]), True, "pearson")
    assert b == {"baseline_pearson": 0.0, "baseline_spearman": 0.0}  # undefined for a constant: 0


def test_describe_against_baseline_and_the_near_flag():
    from adaptermix.training.metrics import describe_against_baseline, near_baseline

    good = {"accuracy": 0.77, "baseline_accuracy": 0.509}
    assert describe_against_baseline("test", "accuracy", good) == (
        "test accuracy 0.770 (majority baseline 0.509, +26.1 pts)"
    )
    assert near_baseline(good, "accuracy") is False
    close = {"accuracy": 0.615, "baseline_accuracy": 0.595}
    assert near_baseline(close, "accuracy") is True and "learnt little" in describe_against_baseline(
        "test", "accuracy", close
    )
    assert near_baseline({"accuracy": 0.5, "baseline_accuracy": 0.6}, "accuracy") is True  # below it
    assert near_baseline({"accuracy": 0.5}, "accuracy") is None  # an old artefact: no baseline stored
    assert "no baseline stored" in describe_against_baseline("test", "accuracy", {"accuracy": 0.5})
