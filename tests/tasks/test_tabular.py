"""End to end: tabular classification and regression on generated mixed-type data (few trials, small data)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import trainforge

pytest.importorskip("xgboost")
pytest.importorskip("lightgbm")
pytest.importorskip("optuna")

FAST = {"cv_folds": 3, "n_jobs": 1, "families": None}


def mixed_frame(rows: int = 160, seed: int = 0) -> pd.DataFrame:
    """Numbers with gaps, string categories with gaps, booleans, dates, an id; targets derived from them."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "customer_id": [f"c{i:05d}" for i in range(rows)],
            "age": rng.integers(18, 80, rows).astype(float),
            "income": rng.normal(50, 15, rows),
            "plan": rng.choice(["basic", "pro", "team"], rows),
            "signup": pd.date_range("2021-01-01", periods=rows, freq="D").strftime("%Y-%m-%d"),
            "active": rng.choice([True, False], rows),
        }
    )
    frame.loc[rng.choice(rows, rows // 10, replace=False), "income"] = np.nan
    frame.loc[rng.choice(rows, rows // 10, replace=False), "plan"] = None
    signal = (frame["age"] - 50) / 10 + (frame["plan"] == "pro") * 1.5 + rng.normal(0, 0.4, rows)
    frame["churned"] = np.where(signal > 0.2, "yes", "no")
    frame["tier"] = pd.cut(signal, [-np.inf, -1.0, 1.0, np.inf], labels=[1, 2, 3]).astype(int)
    frame["upsell"] = np.where(frame["income"].fillna(50) > 50, "y", "n")
    frame["spend"] = frame["income"].fillna(50) * 2 + frame["age"] + rng.normal(0, 2, rows)
    frame["visits"] = frame["age"] / 4 + (frame["plan"] == "team") * 5 + rng.normal(0, 1, rows)
    frame["weight"] = rng.uniform(0.5, 2.0, rows)
    return frame


def config(
    tmp_path: Path, task: str, targets: list[str], ignore: list[str], trials: int = 3, search=None, **params
) -> dict:
    search = search or {}
    path = tmp_path / "data.csv"
    if not path.exists():
        mixed_frame().to_csv(path, index=False)
    return {
        "task": task,
        "model": {"name": params.pop("model", "auto")},
        "data": {"source": str(path), "columns": {"id": "customer_id"}, "eval_fraction": 0.2},
        "params": {**FAST, "target_columns": targets, "ignore_columns": ignore, **params},
        "search": {"trials": trials, "timeout": 60, **search},
        "output": {"dir": str(tmp_path / "run")},
    }


OTHER_TARGETS = ["churned", "tier", "upsell", "spend", "visits"]
NOT_FEATURES = [*OTHER_TARGETS, "weight"]


def others(*keep: str) -> list[str]:
    return [t for t in NOT_FEATURES if t not in keep]


def check_run(run_dir: Path) -> dict:
    for name in (
        "model.joblib",
        "leaderboard.csv",
        "metrics.json",
        "README.md",
        "feature_importances.csv",
        "events.jsonl",
    ):
        assert (run_dir / name).is_file(), name
    assert (run_dir / "feature_importance.svg").read_text().startswith("<svg")
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds[0] == "run_started" and kinds[-1] == "run_finished" and "trial" in kinds and "eval" in kinds
    board = pd.read_csv(run_dir / "leaderboard.csv")
    assert board["model"].iloc[0] == "final" and board["fit_time_s"].notna().any() and board["default"].any()
    card = (run_dir / "README.md").read_text()
    assert "## Leaderboard" in card and "feature_importance.svg" in card and "library_name: sklearn" in card
    return json.loads((run_dir / "metrics.json").read_text())


FRESH = textwrap.dedent(
    """
    import sys, joblib, pandas as pd
    model = joblib.load(sys.argv[1])
    rows = pd.read_csv(sys.argv[2])
    print(list(model.predict(rows)))
    assert not [m for m in sys.modules if m.startswith("trainforge")], "trainforge was imported"
    """
)


def test_binary_with_weights_reloads_in_fresh_process(tmp_path):
    cfg = config(tmp_path, "tabular_classification", ["churned"], others("churned", "weight"))
    cfg["data"]["columns"]["sample_weight"] = "weight"
    result = trainforge.train(cfg)
    metrics = check_run(result.output_dir)
    for key in (
        "accuracy",
        "balanced_accuracy",
        "f1_macro",
        "f1_weighted",
        "precision_macro",
        "recall_weighted",
        "roc_auc",
        "log_loss",
    ):
        assert f"eval_{key}" in metrics
    assert metrics["eval_accuracy"] > 0.7
    rows = mixed_frame(6, seed=5).drop(columns=NOT_FEATURES)
    rows.loc[0, "plan"] = "enterprise"  # unseen category
    rows.loc[1, "signup"] = "not a date"
    rows.to_csv(tmp_path / "rows.csv", index=False)
    env = {**os.environ, "PYTHONPATH": ""}
    script = tmp_path / "fresh.py"
    script.write_text(FRESH)
    out = subprocess.run(
        [sys.executable, "-I", str(script), str(result.output_dir / "model.joblib"), str(tmp_path / "rows.csv")],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        cwd=tmp_path,
    )
    assert set(eval(out.stdout)) <= {"yes", "no"}
    predicted = trainforge.predict(result.output_dir, tmp_path / "rows.csv", tmp_path / "preds.csv")
    assert list(predicted.columns[-3:]) == ["prediction", "prob_no", "prob_yes"]
    assert np.allclose(predicted[["prob_no", "prob_yes"]].sum(axis=1), 1.0)


def test_multiclass_single_family_no_ensemble_keeps_integer_labels(tmp_path):
    cfg = config(tmp_path, "tabular_classification", ["tier"], others("tier"), model="lightgbm", ensemble=False)
    result = trainforge.train(cfg)
    metrics = check_run(result.output_dir)
    assert metrics["eval_accuracy"] > 0.5
    board = pd.read_csv(result.output_dir / "leaderboard.csv")
    assert set(board["family"]) == {"lightgbm"}
    predicted = trainforge.predict(result.output_dir, mixed_frame(10, seed=3).drop(columns=NOT_FEATURES))
    assert set(predicted["prediction"]) <= {1, 2, 3} and {"prob_1", "prob_2", "prob_3"} <= set(predicted.columns)


def test_multi_label_two_target_columns(tmp_path):
    cfg = config(tmp_path, "tabular_classification", ["churned", "upsell"], others("churned", "upsell"))
    cfg["params"]["families"] = ["lightgbm", "logistic_regression"]
    result = trainforge.train(cfg)
    assert result.labels.problem_type == "multi_label_classification"
    metrics = check_run(result.output_dir)
    assert "eval_churned.accuracy" in metrics and "eval_upsell.accuracy" in metrics
    predicted = trainforge.predict(result.output_dir, mixed_frame(8, seed=4).drop(columns=NOT_FEATURES))
    assert {"prediction_churned", "prediction_upsell", "prob_churned_yes", "prob_upsell_y"} <= set(predicted.columns)


def test_regression_single_and_multi_target_with_holdout(tmp_path):
    cfg = config(tmp_path, "tabular_regression", ["spend"], others("spend"), validation="holdout")
    cfg["params"]["families"] = ["ridge", "lightgbm", "extra_trees"]
    metrics = check_run(trainforge.train(cfg).output_dir)
    assert set(metrics) >= {"eval_rmse", "eval_mae", "eval_r2", "eval_mape"} and metrics["eval_r2"] > 0.8
    targets = ["spend", "visits"]
    cfg = config(tmp_path, "tabular_regression", targets, others(*targets), search={"metric": "mae"})
    cfg["params"]["families"] = ["ridge", "hist_gradient_boosting"]
    cfg["output"]["dir"] = str(tmp_path / "run2")
    result = trainforge.train(cfg)
    metrics = check_run(result.output_dir)
    assert "eval_spend.r2" in metrics and "eval_visits.r2" in metrics and "train_validation_mae" in metrics
    predicted = trainforge.predict(result.output_dir, mixed_frame(5, seed=9).drop(columns=NOT_FEATURES))
    assert predicted[["prediction_spend", "prediction_visits"]].notna().all().all()


def test_resume_continues_an_interrupted_study(tmp_path):
    cfg = config(tmp_path, "tabular_regression", ["spend"], others("spend"), trials=2)
    cfg["params"]["families"] = ["ridge", "lasso"]
    cfg["output"]["keep_checkpoints"] = True  # a finished run deletes them; this one stands in for an interrupted one
    run_dir = trainforge.train(cfg).output_dir
    # An interrupted run: trials and study on disk, no final files.
    for name in ("metrics.json", "model.joblib", "leaderboard.csv"):
        (run_dir / name).unlink()
    result = trainforge.train(cfg, ["search.trials=4"], resume=True)
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    resumed = [e for e in events if e["event"] == "resumed"]
    assert resumed and resumed[0]["trials"] >= 1
    board = pd.read_csv(result.output_dir / "leaderboard.csv")
    assert set(board["trial"].dropna().astype(int)) == {0, 1, 2, 3}


def test_two_processes_share_one_sqlite_study(tmp_path):
    import optuna

    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    procs = []
    for worker in range(2):
        cfg = config(tmp_path, "tabular_regression", ["spend"], others("spend"), trials=4)
        cfg["params"]["families"] = ["ridge", "lasso"]
        cfg["search"].update(storage=storage, study_name="shared")
        cfg["output"]["dir"] = str(tmp_path / f"worker{worker}")
        path = tmp_path / f"worker{worker}.json"
        path.write_text(json.dumps(cfg))
        # The driver directly: the SDK's console display would import transformers, which tabular never needs.
        code = (
            "import json; from trainforge.config.loading import load_config; "
            "from trainforge.training.driver import run; "
            f"run(load_config(json.load(open({str(path)!r}))))"
        )
        procs.append(subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True))
    for proc in procs:
        _, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err
    study = optuna.load_study(study_name="shared", storage=storage)
    assert len(study.trials) >= 4
    numbers = {t.number for t in study.trials}
    shows_other = []
    for worker in range(2):
        run_dir = tmp_path / f"worker{worker}"
        board = set(pd.read_csv(run_dir / "leaderboard.csv")["trial"].dropna().astype(int))
        own = {
            json.loads(line)["number"]
            for line in (run_dir / "events.jsonl").read_text().splitlines()
            if '"trial"' in line
        }
        assert own and own <= board <= numbers  # a worker's leaderboard lists the study's trials, its own included
        shows_other.append(bool(board - own))
    assert any(shows_other)  # the worker that finished last saw the other's trials


def test_autotrain_shaped_tabular_config(tmp_path):
    path = tmp_path / "data.csv"
    mixed_frame().to_csv(path, index=False)
    raw = {
        "task": "tabular",
        "base_model": "ridge",
        "project_name": str(tmp_path / "ref"),
        "data": {"path": str(path), "column_mapping": {"id_column": "customer_id", "target_columns": "spend"}},
        "params": {
            "task": "regression",
            "num_trials": 2,
            "time_limit": 30,
            "numerical_imputer": "median",
            "numeric_scaler": "robust",
        },
    }
    loaded = trainforge.load_config(raw)
    assert loaded.task == "tabular_regression" and loaded.model.name == "ridge"
    assert loaded.params.target_columns == ["spend"] and loaded.params.numeric_scaler == "robust"
    assert loaded.data.columns == {"id": "customer_id"}
