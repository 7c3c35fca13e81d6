"""Evaluation metrics shared across tasks (pure numpy/scikit-learn; no torch)."""

# Direction of every metric a task may report: True when greater is better.
GREATER_IS_BETTER = {
    "loss": False,
    "accuracy": True,
    "balanced_accuracy": True,
    "f1": True,
    "precision": True,
    "recall": True,
    "roc_auc": True,
    "f1_macro": True,
    "f1_micro": True,
    "f1_weighted": True,
    "precision_macro": True,
    "precision_micro": True,
    "precision_weighted": True,
    "recall_macro": True,
    "recall_micro": True,
    "recall_weighted": True,
    "subset_accuracy": True,
    "hamming_loss": False,
    "mse": False,
    "mae": False,
    "rmse": False,
    "r2": True,
    "explained_variance": True,
}
