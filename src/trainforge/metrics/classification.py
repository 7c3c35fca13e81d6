"""Classification metrics from class scores: binary, multi-class and multi-label."""

from __future__ import annotations

import numpy as np


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax, numerically stable."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """Element-wise logistic function."""
    return 1.0 / (1.0 + np.exp(-logits))


def single_label_metrics(labels: np.ndarray, probabilities: np.ndarray) -> dict[str, float]:
    """Accuracy, F1/precision/recall and (binary) ROC AUC for one label per row.

    Args:
        labels: Integer class ids, shape (n,).
        probabilities: Class probabilities, shape (n, num_classes).

    Returns:
        Binary: accuracy, f1, precision, recall, roc_auc. Multi-class: accuracy plus
        f1/precision/recall for macro, micro and weighted averaging.
    """
    from sklearn import metrics

    predictions = probabilities.argmax(axis=-1)
    out = {"accuracy": metrics.accuracy_score(labels, predictions)}
    num_classes = probabilities.shape[-1]
    if num_classes == 2:
        for name, fn in (
            ("f1", metrics.f1_score),
            ("precision", metrics.precision_score),
            ("recall", metrics.recall_score),
        ):
            out[name] = fn(labels, predictions, zero_division=0)
        # AUC is undefined when the evaluation rows hold one class only; report it only when it exists.
        if len(np.unique(labels)) == 2:
            out["roc_auc"] = metrics.roc_auc_score(labels, probabilities[:, 1])
    else:
        every_class = list(range(num_classes))
        for average in ("macro", "micro", "weighted"):
            out[f"f1_{average}"] = metrics.f1_score(
                labels, predictions, average=average, labels=every_class, zero_division=0
            )
            out[f"precision_{average}"] = metrics.precision_score(
                labels, predictions, average=average, labels=every_class, zero_division=0
            )
            out[f"recall_{average}"] = metrics.recall_score(
                labels, predictions, average=average, labels=every_class, zero_division=0
            )
    return {k: float(v) for k, v in out.items()}


def multi_label_metrics(
    labels: np.ndarray, probabilities: np.ndarray, threshold: float | np.ndarray = 0.5
) -> dict[str, float]:
    """Subset accuracy, micro/macro/weighted F1 (and precision/recall), Hamming loss for multi-hot labels.

    Args:
        labels: Multi-hot truth, shape (n, num_labels).
        probabilities: Per-label probabilities, shape (n, num_labels).
        threshold: One decision threshold, or one per label (shape (num_labels,)).
    """
    from sklearn import metrics

    truth = labels.astype(int)
    predictions = (probabilities >= threshold).astype(int)
    out = {
        "subset_accuracy": metrics.accuracy_score(truth, predictions),
        "hamming_loss": metrics.hamming_loss(truth, predictions),
    }
    for average in ("micro", "macro", "weighted"):
        out[f"f1_{average}"] = metrics.f1_score(truth, predictions, average=average, zero_division=0)
    out["precision_micro"] = metrics.precision_score(truth, predictions, average="micro", zero_division=0)
    out["recall_micro"] = metrics.recall_score(truth, predictions, average="micro", zero_division=0)
    return {k: float(v) for k, v in out.items()}


THRESHOLD_GRID = np.round(np.arange(0.02, 0.99, 0.01), 2)


def tune_thresholds(labels: np.ndarray, probabilities: np.ndarray, per_label: bool = False) -> np.ndarray:
    """Decision thresholds that maximise F1 on these rows: one for every label (micro F1), or one per label.

    Candidates are 0.02, 0.03, ..., 0.98; ties go to the candidate closest to 0.5 (the untuned default), so a flat
    optimum does not drift to an extreme.

    Args:
        labels: Multi-hot truth, shape (n, num_labels).
        probabilities: Per-label probabilities, shape (n, num_labels).
        per_label: Tune each label's threshold on its own F1 instead of one global value.

    Returns:
        Thresholds, shape (num_labels,) (all equal when ``per_label`` is False).
    """
    truth = labels.astype(bool)
    # predicted[t, i, j]: row i, label j predicted at candidate t; counts summed over rows (and labels when global).
    predicted = probabilities[None, :, :] >= THRESHOLD_GRID[:, None, None]
    axis = 1 if per_label else (1, 2)
    tp = (predicted & truth).sum(axis=axis)
    fp = (predicted & ~truth).sum(axis=axis)
    fn = (~predicted & truth).sum(axis=axis)
    f1 = 2 * tp / np.maximum(2 * tp + fp + fn, 1)  # F1 = 2TP / (2TP + FP + FN)
    closeness = -np.abs(THRESHOLD_GRID - 0.5)
    if not per_label:
        best = np.lexsort((closeness, f1))[-1]
        return np.full(labels.shape[1], THRESHOLD_GRID[best])
    return np.array([THRESHOLD_GRID[np.lexsort((closeness, f1[:, j]))[-1]] for j in range(labels.shape[1])])


def tuned_multi_label_metrics(
    labels: np.ndarray, probabilities: np.ndarray, thresholds: np.ndarray
) -> dict[str, float]:
    """``multi_label_metrics`` at ``thresholds``, plus the same at 0.5 for comparison and the share of rows left empty.

    Returns:
        The metrics at the given thresholds, ``threshold`` (their mean), ``f1_micro_at_0_5``,
        ``subset_accuracy_at_0_5`` and ``no_label_rate`` (rows for which no label reaches its threshold).
    """
    out = multi_label_metrics(labels, probabilities, thresholds)
    at_half = multi_label_metrics(labels, probabilities, 0.5)
    out["f1_micro_at_0_5"] = at_half["f1_micro"]
    out["subset_accuracy_at_0_5"] = at_half["subset_accuracy"]
    out["no_label_rate"] = float((probabilities < thresholds).all(axis=1).mean()) if len(probabilities) else 0.0
    out["threshold"] = float(np.mean(thresholds))
    return out
