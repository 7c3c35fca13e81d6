"""Bad tabular inputs: each is refused before training with exit code 2 and a message naming column and fix."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from trainforge.cli.main import main


def frame(rows: int = 60, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "x": rng.normal(size=rows),
            "color": rng.choice(["red", "blue"], rows),
            "label": np.where(np.arange(rows) % 2 == 0, "a", "b"),
            "amount": rng.normal(10, 2, rows),
        }
    )


def run_validate(tmp_path, table: pd.DataFrame, capsys, task="tabular_classification", model="auto", **params):
    table.to_csv(tmp_path / "d.csv", index=False)
    target = params.pop("target_columns", ["label"] if task == "tabular_classification" else ["amount"])
    config = {
        "task": task,
        "model": {"name": model},
        "data": {"source": str(tmp_path / "d.csv"), "eval_fraction": 0, **params.pop("data", {})},
        "params": {"target_columns": target, **params},
        "output": {"dir": str(tmp_path / "run")},
    }
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    code = main(["validate", str(tmp_path / "c.yaml")])
    return code, capsys.readouterr().err


def test_valid_config_passes(tmp_path, capsys):
    code, err = run_validate(tmp_path, frame(), capsys, ignore_columns=["amount"])
    assert code == 0, err


CASES = {
    "constant target": (lambda f: f.assign(label="a"), {}, "same value ('a') in every row"),
    "too few rows per class": (lambda f: f.assign(label=["rare"] * 2 + ["a"] * (len(f) - 2)), {}, "'rare': 2 row(s)"),
    "all-NaN column": (lambda f: f.assign(empty=np.nan), {}, "column 'empty' is empty in every row"),
    "id-like column": (lambda f: f.assign(row_id=range(len(f))), {}, "looks like a row id"),
    "string id column": (lambda f: f.assign(code=[f"k{i}" for i in range(len(f))]), {}, "data.columns.id: code"),
    "missing target column": (lambda f: f.drop(columns=["label"]), {}, "no target column 'label'"),
    "missing target values": (
        lambda f: f.assign(label=[None] + list(f["label"][1:])),
        {},
        "missing in 1 row(s), first: rows 1",
    ),
    "feature copies the target": (lambda f: f.assign(leak=f["label"]), {}, "is a copy of the target 'label'"),
    "negative sample weight": (
        lambda f: f.assign(w=[-1.0] + [1.0] * (len(f) - 1)),
        {"data": {"columns": {"sample_weight": "w"}}},
        "sample_weight must be",
    ),
    "ignore lists an absent column": (
        lambda f: f,
        {"ignore_columns": ["nope"]},
        "params.ignore_columns lists ['nope']",
    ),
    "continuous target for classification": (
        lambda f: f.assign(label=np.linspace(0.01, 9.99, len(f))),
        {},
        "use tabular_regression",
    ),
    "categorical and numerical both list a column": (
        lambda f: f,
        {"categorical_columns": ["x"], "numerical_columns": ["x"]},
        "both list ['x']",
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_classification_input(tmp_path, capsys, name):
    change, params, expected = CASES[name]
    params = {"ignore_columns": ["amount"], **params} if "ignore_columns" not in params else params
    code, err = run_validate(tmp_path, change(frame()), capsys, **params)
    assert code == 2, err
    assert expected in err


def test_regression_target_must_be_numeric(tmp_path, capsys):
    data = frame().assign(amount=["abc"] + [1.0] * 59)
    code, err = run_validate(tmp_path, data, capsys, task="tabular_regression", ignore_columns=["label"])
    assert code == 2 and "non-numbers at row 1: 'abc'" in err


@pytest.mark.parametrize(
    ("model", "expected"),
    [("gpt2", "is not a tabular model"), ("ridge", "ridge does not do classification")],
)
def test_bad_model_name(tmp_path, capsys, model, expected):
    code, err = run_validate(tmp_path, frame(), capsys, model=model, ignore_columns=["amount"])
    assert code == 2 and "model.name" in err and expected in err


def test_unknown_param_is_a_config_error(tmp_path, capsys):
    code, err = run_validate(tmp_path, frame(), capsys, ignore_columns=["amount"], num_trails=3)
    assert code == 2 and "params.num_trails" in err and "search.trials" in err and "num_trials" in err


def test_predict_input_missing_a_feature(tmp_path):
    import joblib
    from sklearn.dummy import DummyClassifier
    from sklearn.ensemble import VotingClassifier

    from trainforge.config.loading import load_config
    from trainforge.errors import DataError
    from trainforge.tasks.tabular import predict

    model = VotingClassifier([("d", DummyClassifier())])
    model.feature_names_in_ = np.asarray(["x", "color"], dtype=object)
    joblib.dump(model, tmp_path / "model.joblib")
    config = load_config(
        {"task": "tabular_classification", "data": {"source": "d.csv"}, "params": {"target_columns": ["label"]}}
    )
    with pytest.raises(DataError, match=r"lacks the feature columns \['color'\]"):
        predict(tmp_path, pd.DataFrame({"x": [1.0]}), config)
