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


def multi_label_metrics(labels: np.ndarray, probabilities: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """Subset accuracy, micro/macro/weighted F1 (and precision/recall), Hamming loss for multi-hot labels."""
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
