"""Benchmark: trainforge tabular (fixed time budget) vs a default XGBoost model, and AutoGluon when installed.

Datasets are the ones scikit-learn ships (no download): breast cancer, wine, diabetes, and digits (1,797 rows,
64 features, 10 classes) as the larger one. Every contender gets the same 75/25 split (stratified for
classification, seed 0) and is scored on the same held-out rows: accuracy (classification) or R² and RMSE
(regression). trainforge and AutoGluon get the same time budget.

Run:  python benchmarks/tabular.py [--time-limit 60] [--datasets breast_cancer wine diabetes digits]
      [--autogluon-python /path/to/venv/bin/python]

AutoGluon pins other versions of pandas and friends, so it usually lives in its own virtualenv
(`python -m venv ag && ag/bin/pip install torch==2.13.0 "autogluon.tabular[lightgbm,xgboost]"`); pass that
interpreter with --autogluon-python and the AutoGluon contender runs there on the same CSV files.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn import datasets, metrics
from sklearn.model_selection import train_test_split

DATASETS = {
    "breast_cancer": ("classification", datasets.load_breast_cancer),
    "wine": ("classification", datasets.load_wine),
    "diabetes": ("regression", datasets.load_diabetes),
    "digits": ("classification", datasets.load_digits),
}
SEED = 0


def load(name: str) -> tuple[str, pd.DataFrame, pd.DataFrame]:
    kind, loader = DATASETS[name]
    bunch = loader(as_frame=True)
    frame = bunch.frame.rename(columns={bunch.target.name: "target"})
    frame.columns = [str(c).replace(" ", "_") for c in frame.columns]
    stratify = frame["target"] if kind == "classification" else None
    train, test = train_test_split(frame, test_size=0.25, random_state=SEED, stratify=stratify)
    return kind, train.reset_index(drop=True), test.reset_index(drop=True)


def score(kind: str, truth, prediction) -> dict[str, float]:
    if kind == "classification":
        return {"accuracy": metrics.accuracy_score(truth, prediction)}
    return {
        "r2": metrics.r2_score(truth, prediction),
        "rmse": float(np.sqrt(metrics.mean_squared_error(truth, prediction))),
    }


def run_xgboost(kind: str, train: pd.DataFrame, test: pd.DataFrame) -> tuple[dict, float]:
    import xgboost

    started = time.monotonic()
    model = (xgboost.XGBClassifier if kind == "classification" else xgboost.XGBRegressor)(random_state=SEED, n_jobs=-1)
    model.fit(train.drop(columns="target"), train["target"])
    prediction = model.predict(test.drop(columns="target"))
    return score(kind, test["target"], prediction), time.monotonic() - started


def run_trainforge(
    kind: str, train: pd.DataFrame, test: pd.DataFrame, time_limit: int, folder: Path
) -> tuple[dict, float]:
    import joblib

    from trainforge.config.loading import load_config
    from trainforge.training.driver import run

    train.to_csv(folder / "train.csv", index=False)
    test.to_csv(folder / "test.csv", index=False)
    started = time.monotonic()
    config = load_config(
        {
            "task": f"tabular_{kind}",
            "data": {"source": str(folder / "train.csv"), "eval_split": str(folder / "test.csv")},
            "training": {"seed": SEED},
            "params": {"target_columns": ["target"], "num_trials": 1000, "time_limit": time_limit},
            "output": {"dir": str(folder / "run"), "report_to": ["none"]},
        }
    )
    result = run(config)
    seconds = time.monotonic() - started
    model = joblib.load(result.output_dir / "model.joblib")
    prediction = model.predict(test.drop(columns="target"))
    return score(kind, test["target"], prediction), seconds


def run_autogluon(
    kind: str, train: pd.DataFrame, test: pd.DataFrame, time_limit: int, folder: Path
) -> tuple[dict, float]:
    from autogluon.tabular import TabularPredictor

    started = time.monotonic()
    problem = None if kind == "classification" else "regression"
    predictor = TabularPredictor(label="target", problem_type=problem, path=str(folder / "ag"), verbosity=0)
    predictor.fit(train, presets="medium_quality", time_limit=time_limit)
    prediction = predictor.predict(test.drop(columns="target"))
    return score(kind, test["target"], prediction), time.monotonic() - started


_AUTOGLUON_SCRIPT = """
import json, sys, time
import pandas as pd
from autogluon.tabular import TabularPredictor
folder, kind, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
train, test = pd.read_csv(folder + "/train.csv"), pd.read_csv(folder + "/test.csv")
started = time.monotonic()
predictor = TabularPredictor(label="target", problem_type=None if kind == "classification" else "regression",
                             path=folder + "/ag", verbosity=0)
predictor.fit(train, presets="medium_quality", time_limit=limit)
prediction = predictor.predict(test.drop(columns="target"))
print(json.dumps({"prediction": prediction.tolist(), "seconds": time.monotonic() - started}))
"""


def run_autogluon_elsewhere(
    python: str, kind: str, train: pd.DataFrame, test: pd.DataFrame, time_limit: int, folder: Path
) -> tuple[dict, float]:
    """AutoGluon in another interpreter (its own virtualenv), on the same split written as CSV."""
    train.to_csv(folder / "train.csv", index=False)
    test.to_csv(folder / "test.csv", index=False)
    command = [python, "-c", _AUTOGLUON_SCRIPT, str(folder), kind, str(time_limit)]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    result = json.loads(out.strip().splitlines()[-1])
    return score(kind, test["target"], result["prediction"]), result["seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time-limit", type=int, default=60, help="seconds for trainforge and AutoGluon per dataset")
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--autogluon-python", help="interpreter of a virtualenv that has autogluon.tabular")
    args = parser.parse_args()
    has_autogluon = bool(args.autogluon_python) or (
        importlib.util.find_spec("autogluon") is not None and importlib.util.find_spec("autogluon.tabular") is not None
    )
    rows = []
    for name in args.datasets:
        kind, train, test = load(name)
        with tempfile.TemporaryDirectory() as tmp:
            contenders = {"xgboost default": run_xgboost(kind, train, test)}
            contenders["trainforge"] = run_trainforge(kind, train, test, args.time_limit, Path(tmp))
            if args.autogluon_python:
                contenders["autogluon medium"] = run_autogluon_elsewhere(
                    args.autogluon_python, kind, train, test, args.time_limit, Path(tmp)
                )
            elif has_autogluon:
                contenders["autogluon medium"] = run_autogluon(kind, train, test, args.time_limit, Path(tmp))
        for who, (scores, seconds) in contenders.items():
            rows.append(
                {
                    "dataset": name,
                    "rows": len(train) + len(test),
                    "contender": who,
                    **scores,
                    "time_s": round(seconds, 1),
                }
            )
        print(pd.DataFrame(rows[-len(contenders) :]).to_string(index=False), flush=True)
    table = pd.DataFrame(rows)
    print(f"\ntime limit {args.time_limit}s; AutoGluon {'included' if has_autogluon else 'not installed (skipped)'}")
    print(
        table.to_markdown(index=False, floatfmt=".4f")
        if importlib.util.find_spec("tabulate")
        else table.to_string(index=False)
    )


if __name__ == "__main__":
    main()
