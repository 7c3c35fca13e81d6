"""Regression metrics."""

from __future__ import annotations

import numpy as np


def regression_metrics(targets: np.ndarray, predictions: np.ndarray) -> dict[str, float]:
    """MSE, MAE, RMSE, R² and explained variance (averaged over targets when there are several)."""
    from sklearn import metrics

    targets = np.asarray(targets, dtype=float)
    predictions = np.asarray(predictions, dtype=float).reshape(targets.shape)
    mse = metrics.mean_squared_error(targets, predictions)
    out = {
        "mse": mse,
        "mae": metrics.mean_absolute_error(targets, predictions),
        "rmse": float(np.sqrt(mse)),
        "r2": metrics.r2_score(targets, predictions) if len(targets) > 1 else float("nan"),
        "explained_variance": metrics.explained_variance_score(targets, predictions)
        if len(targets) > 1
        else float("nan"),
    }
    return {k: float(v) for k, v in out.items()}
