"""Weighted tabular metrics on per-target predictions: class probabilities or numbers.

Predictions are lists with one entry per target column: an ``(n, classes)`` probability matrix for
classification (classes encoded 0..K-1) and an ``(n,)`` vector for regression.
"""

from __future__ import annotations

import numpy as np

CLASSIFICATION_METRICS = ("log_loss", "accuracy", "balanced_accuracy", "f1_macro", "roc_auc")
REGRESSION_METRICS = ("rmse", "mae", "r2", "mape")
GREATER_IS_BETTER = {
    "log_loss": False,
    "accuracy": True,
    "balanced_accuracy": True,
    "f1_macro": True,
    "roc_auc": True,
    "rmse": False,
    "mae": False,
    "r2": True,
    "mape": False,
}


def metric_value(metric: str, truth: np.ndarray, prediction: np.ndarray, weight: np.ndarray | None) -> float:
    """One metric for one target."""
    from sklearn import metrics

    if prediction.ndim == 2:
        labels = list(range(prediction.shape[1]))
        chosen = prediction.argmax(axis=1)
        if metric == "log_loss":
            # float32 model outputs (xgboost, lightgbm) may sum to 1 only within 1e-7; renormalise in float64.
            normalised = prediction.astype(float) / prediction.sum(axis=1, keepdims=True)
            return float(metrics.log_loss(truth, normalised, sample_weight=weight, labels=labels))
        if metric == "accuracy":
            return float(metrics.accuracy_score(truth, chosen, sample_weight=weight))
        if metric == "balanced_accuracy":
            return float(metrics.balanced_accuracy_score(truth, chosen, sample_weight=weight))
        if metric == "f1_macro":
            return float(
                metrics.f1_score(truth, chosen, average="macro", labels=labels, sample_weight=weight, zero_division=0)
            )
        if metric == "roc_auc":
            return _roc_auc(truth, prediction, weight)
        raise KeyError(f"{metric} is not a classification metric; use one of {', '.join(CLASSIFICATION_METRICS)}")
    if metric == "rmse":
        return float(np.sqrt(metrics.mean_squared_error(truth, prediction, sample_weight=weight)))
    if metric == "mae":
        return float(metrics.mean_absolute_error(truth, prediction, sample_weight=weight))
    if metric == "r2":
        return float(metrics.r2_score(truth, prediction, sample_weight=weight))
    if metric == "mape":
        return float(metrics.mean_absolute_percentage_error(truth, prediction, sample_weight=weight))
    raise KeyError(f"{metric} is not a regression metric; use one of {', '.join(REGRESSION_METRICS)}")


def _roc_auc(truth: np.ndarray, probabilities: np.ndarray, weight: np.ndarray | None) -> float:
    from sklearn import metrics

    present = np.unique(truth)
    if len(present) < 2:
        return float("nan")  # undefined when the rows hold one class only
    if probabilities.shape[1] == 2:
        return float(metrics.roc_auc_score(truth, probabilities[:, 1], sample_weight=weight))
    if len(present) < probabilities.shape[1]:
        return float("nan")
    return float(metrics.roc_auc_score(truth, probabilities, multi_class="ovr", average="macro", sample_weight=weight))


def score(metric: str, truths: list[np.ndarray], predictions: list[np.ndarray], weight: np.ndarray | None) -> float:
    """``metric`` averaged over the target columns."""
    return float(np.mean([metric_value(metric, t, p, weight) for t, p in zip(truths, predictions, strict=True)]))


def report(
    kind: str, targets: list[str], truths: list[np.ndarray], predictions: list[np.ndarray], weight
) -> dict[str, float]:
    """Every metric of the sub-task; with several targets, the mean plus ``<target>.<metric>`` entries.

    Classification: accuracy, balanced accuracy, F1/precision/recall (macro and weighted), ROC AUC and log loss.
    Regression: RMSE, MAE, R² and MAPE.
    """
    per_target = [_one_report(kind, t, p, weight) for t, p in zip(truths, predictions, strict=True)]
    out = {key: float(np.nanmean([r[key] for r in per_target])) for key in per_target[0]}
    if len(targets) > 1:
        for name, values in zip(targets, per_target, strict=True):
            out.update({f"{name}.{key}": value for key, value in values.items()})
    return out


def _one_report(kind: str, truth: np.ndarray, prediction: np.ndarray, weight) -> dict[str, float]:
    from sklearn import metrics

    if kind == "regression":
        return {m: metric_value(m, truth, prediction, weight) for m in REGRESSION_METRICS}
    chosen = prediction.argmax(axis=1)
    labels = list(range(prediction.shape[1]))
    out = {
        m: metric_value(m, truth, prediction, weight) for m in ("accuracy", "balanced_accuracy", "roc_auc", "log_loss")
    }
    for average in ("macro", "weighted"):
        kw = {"average": average, "labels": labels, "sample_weight": weight, "zero_division": 0}
        out[f"f1_{average}"] = float(metrics.f1_score(truth, chosen, **kw))
        out[f"precision_{average}"] = float(metrics.precision_score(truth, chosen, **kw))
        out[f"recall_{average}"] = float(metrics.recall_score(truth, chosen, **kw))
    return out
