"""Tabular building blocks: lazy imports, metrics against scikit-learn, column typing, picklable preprocessing."""

from __future__ import annotations

import pickle
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics

from trainforge.config.choices import TabularModel
from trainforge.tabular import scoring
from trainforge.tabular.features import build_preprocessor, plan_columns
from trainforge.tabular.models import FAMILIES


def test_task_module_imports_no_heavy_library():
    code = (
        "import sys, trainforge.tasks.tabular, trainforge.tasks as t; t.list_tasks(); "
        "print([m for m in ('torch', 'xgboost', 'lightgbm', 'optuna', 'sklearn') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_family_choices_match_the_families():
    assert set(TabularModel.__args__) == {"auto", *FAMILIES}


def test_metrics_match_scikit_learn_with_weights():
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 3, 50)
    proba = rng.dirichlet([1, 1, 1], 50).astype(np.float32)
    weight = rng.uniform(0.5, 2, 50)
    assert scoring.metric_value("accuracy", truth, proba, weight) == pytest.approx(
        metrics.accuracy_score(truth, proba.argmax(1), sample_weight=weight)
    )
    assert scoring.metric_value("log_loss", truth, proba, None) == pytest.approx(
        metrics.log_loss(truth, proba / proba.sum(1, keepdims=True)), rel=1e-5
    )
    y, p = rng.normal(size=30), rng.normal(size=30)
    assert scoring.metric_value("rmse", y, p, None) == pytest.approx(np.sqrt(np.mean((y - p) ** 2)))
    report = scoring.report("regression", ["a", "b"], [y, y], [p, y], None)
    assert report["b.r2"] == 1.0 and report["r2"] == pytest.approx((report["a.r2"] + 1.0) / 2)


def test_column_plan_and_preprocessing_survive_pickling():
    frame = pd.DataFrame(
        {
            "n": [1.0, 2.0, np.nan, 4.0] * 10,
            "c": ["a", "b", None, "a"] * 10,
            "b": [True, False, True, False] * 10,
            "d": [f"2024-01-0{i % 9 + 1}" for i in range(40)],
            "note": [f"free text number {i} here" for i in range(40)],
        }
    )

    class Params:
        numerical_columns = categorical_columns = None
        ignore_columns: list[str] = []
        numerical_imputer, categorical_imputer, numeric_scaler = "median", "constant", "standard"

    plan = plan_columns(frame, Params, set(), "frame")
    assert plan.numerical == ("n",) and plan.categorical == ("c", "b") and plan.datetime == ("d",)
    assert "note" in plan.dropped
    for style in ("nan_trees", "native", "trees", "linear"):
        fitted = build_preprocessor(plan, style, Params, len(frame)).fit(frame)
        again = pickle.loads(pickle.dumps(fitted))
        out = again.transform(frame.assign(c="unseen"))
        assert out.shape[0] == len(frame)
