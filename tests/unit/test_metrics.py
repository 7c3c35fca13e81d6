"""Metrics on hand-made arrays, checked against scikit-learn and against values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn import metrics as sk

from trainforge.metrics import GREATER_IS_BETTER
from trainforge.metrics.classification import multi_label_metrics, sigmoid, single_label_metrics, softmax
from trainforge.metrics.regression import regression_metrics


def test_softmax_and_sigmoid():
    probabilities = softmax(np.array([[0.0, 0.0], [1000.0, 0.0]]))
    assert probabilities.tolist() == [[0.5, 0.5], [1.0, 0.0]]  # stable for large logits
    assert sigmoid(np.array([0.0]))[0] == 0.5


def test_binary_metrics():
    labels = np.array([0, 0, 1, 1, 1, 0])
    positive = np.array([0.1, 0.6, 0.8, 0.4, 0.9, 0.2])
    out = single_label_metrics(labels, np.stack([1 - positive, positive], axis=1))
    predicted = np.array([0, 1, 1, 0, 1, 0])
    assert set(out) == {"accuracy", "f1", "precision", "recall", "roc_auc"}
    assert out["accuracy"] == pytest.approx(4 / 6)
    assert out["precision"] == pytest.approx(2 / 3) and out["recall"] == pytest.approx(2 / 3)
    assert out["f1"] == pytest.approx(sk.f1_score(labels, predicted))
    assert out["roc_auc"] == pytest.approx(sk.roc_auc_score(labels, positive))
    assert all(isinstance(v, float) for v in out.values())


def test_binary_without_both_classes_has_no_auc():
    out = single_label_metrics(np.array([1, 1, 1]), np.array([[0.2, 0.8], [0.7, 0.3], [0.4, 0.6]]))
    assert "roc_auc" not in out
    assert out["accuracy"] == pytest.approx(2 / 3) and out["precision"] == 1.0


def test_multiclass_metrics():
    labels = np.array([0, 1, 2, 2, 1, 0, 2])
    predicted = np.array([0, 2, 2, 2, 1, 1, 0])
    probabilities = np.eye(3)[predicted] * 0.7 + 0.1
    out = single_label_metrics(labels, probabilities)
    assert out["accuracy"] == pytest.approx(4 / 7)
    for average in ("macro", "micro", "weighted"):
        assert out[f"f1_{average}"] == pytest.approx(sk.f1_score(labels, predicted, average=average))
        assert out[f"precision_{average}"] == pytest.approx(sk.precision_score(labels, predicted, average=average))
        assert out[f"recall_{average}"] == pytest.approx(sk.recall_score(labels, predicted, average=average))
    assert "f1" not in out and "roc_auc" not in out


def test_multiclass_counts_classes_absent_from_the_batch():
    """A class never seen in the eval rows still counts in the macro average (as zero), as the model has it."""
    labels, predicted = np.array([0, 1, 1]), np.array([0, 1, 1])
    out = single_label_metrics(labels, np.eye(3)[predicted])
    assert out["accuracy"] == 1.0
    assert out["f1_macro"] == pytest.approx(2 / 3)


def test_multi_label_metrics():
    truth = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 1]], dtype=np.float32)
    probabilities = np.array([[0.9, 0.2, 0.7], [0.1, 0.4, 0.2], [0.8, 0.6, 0.1], [0.3, 0.1, 0.5]])
    predicted = (probabilities >= 0.5).astype(int)
    out = multi_label_metrics(truth, probabilities)
    assert out["subset_accuracy"] == pytest.approx(3 / 4)
    assert out["hamming_loss"] == pytest.approx(1 / 12)
    for average in ("micro", "macro", "weighted"):
        assert out[f"f1_{average}"] == pytest.approx(sk.f1_score(truth, predicted, average=average))
    assert out["precision_micro"] == 1.0 and out["recall_micro"] == pytest.approx(5 / 6)
    assert multi_label_metrics(truth, probabilities, threshold=0.35)["subset_accuracy"] == 1.0
    assert multi_label_metrics(truth, probabilities, threshold=0.8)["subset_accuracy"] == 0.0


def test_regression_metrics():
    targets = np.array([1.0, 2.0, 3.0, 4.0])
    predictions = np.array([1.5, 2.0, 2.0, 4.5])
    out = regression_metrics(targets, predictions)
    assert out["mse"] == pytest.approx(0.375)
    assert out["mae"] == pytest.approx(0.5)
    assert out["rmse"] == pytest.approx(math.sqrt(0.375))
    assert out["r2"] == pytest.approx(1 - 1.5 / 5)
    assert out["explained_variance"] == pytest.approx(sk.explained_variance_score(targets, predictions))


def test_regression_accepts_column_predictions_and_single_rows():
    out = regression_metrics(np.array([1.0, 3.0]), np.array([[1.0], [3.0]]))
    assert out["mse"] == 0.0 and out["r2"] == 1.0
    single = regression_metrics(np.array([2.0]), np.array([1.0]))
    assert single["mae"] == 1.0 and math.isnan(single["r2"])


def test_every_reported_metric_has_a_direction():
    reported = set(single_label_metrics(np.array([0, 1]), np.array([[0.8, 0.2], [0.3, 0.7]])))
    reported |= set(single_label_metrics(np.array([0, 1, 2]), np.eye(3)))
    reported |= set(multi_label_metrics(np.eye(2), np.eye(2)))
    reported |= set(regression_metrics(np.array([1.0, 2.0]), np.array([1.0, 2.5])))
    assert reported <= set(GREATER_IS_BETTER)
    assert GREATER_IS_BETTER["rmse"] is False and GREATER_IS_BETTER["f1_macro"] is True
