"""Tabular search: defaults kept unless beaten, target-suited losses, stacking, presets and the search: section."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import trainforge
from trainforge.config.loading import load_config
from trainforge.errors import ConfigError

pytest.importorskip("xgboost")
pytest.importorskip("lightgbm")
pytest.importorskip("optuna")


def table(rows: int = 150, seed: int = 0) -> pd.DataFrame:
    """Two informative numbers, a category and a noise column; a count, a skewed amount and two labels from them."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "x1": rng.normal(size=rows),
            "x2": rng.uniform(0, 2, rows),
            "shop": rng.choice(["a", "b", "c"], rows),
            "noise": rng.normal(size=rows),
        }
    )
    rate = np.exp(0.8 * frame["x1"] + 0.5 * frame["x2"] + (frame["shop"] == "b") * 0.7)
    frame["visits"] = rng.poisson(rate)  # a count: non-negative whole numbers
    frame["amount"] = np.round(rate * rng.lognormal(0, 0.4, rows) * 10, 2)  # skewed, positive, not whole
    frame["buys"] = np.where(frame["x1"] + rng.normal(0, 0.5, rows) > 0, "yes", "no")
    frame["tier"] = pd.cut(frame["x1"] + frame["x2"], [-np.inf, 0.3, 1.5, np.inf], labels=["lo", "mid", "hi"])
    return frame


TARGETS = ["visits", "amount", "buys", "tier"]


def raw_config(tmp_path: Path, task: str, target: str, search: dict | None = None, **params) -> dict:
    path = tmp_path / "table.csv"
    if not path.exists():
        table().to_csv(path, index=False)
    return {
        "task": task,
        "model": {"name": params.pop("model", "auto")},
        "data": {"source": str(path), "eval_fraction": 0.2},
        "params": {
            "target_columns": [target],
            "ignore_columns": [t for t in TARGETS if t != target],
            "cv_folds": 3,
            "n_jobs": 1,
            **params,
        },
        "search": {"trials": 3, "timeout": 60, **(search or {})},
        "output": {"dir": str(tmp_path / "run")},
    }


def leaderboard(run_dir: Path) -> pd.DataFrame:
    return pd.read_csv(run_dir / "leaderboard.csv")


# ------------------------------------------------------------------------------------------------ defaults kept


def test_the_default_is_kept_when_the_searched_trials_are_worse(tmp_path):
    """search.space forces LightGBM into 1-2 trees at a tiny learning rate: the library default must win and stay."""
    space = {
        "lightgbm.n_estimators": {"int": [1, 2]},
        "lightgbm.learning_rate": {"loguniform": [1.0e-4, 1.0e-3]},
    }
    raw = raw_config(
        tmp_path, "tabular_regression", "amount", {"trials": 4, "space": space}, model="lightgbm", ensemble="none"
    )
    result = trainforge.train(raw)
    board = leaderboard(result.output_dir)
    final, trials = board.iloc[0], board[board["how"] == "trial"]
    assert final["model"] == "final" and final["how"] == "best_trial"
    defaults = trials[trials["default"]]
    # The defaults (plain, and log1p for this skewed target) scored under the same folds as the searched trials.
    assert set(defaults["params"]) >= {"{}"} and (defaults["state"] == "COMPLETE").all()
    searched = trials[~trials["default"] & (trials["state"] == "COMPLETE")]
    assert len(searched) >= 1 and (searched["validation_rmse"] > defaults["validation_rmse"].min()).all()
    kept = trials[trials["ensemble_weight"] == 1.0]
    assert len(kept) == 1 and bool(kept["default"].iloc[0])  # the final model is a default trial
    assert final["validation_rmse"] == pytest.approx(defaults["validation_rmse"].min())
    # search: drives the study: its trial count, and the SQLite study in the run directory.
    import optuna

    study = optuna.load_study(study_name="trainforge", storage=f"sqlite:///{result.output_dir / 'study.db'}")
    finished = [t for t in study.trials if t.state.is_finished()]
    assert len(finished) == 4
    assert json.loads(searched["params"].iloc[0])["lightgbm.n_estimators"] in (1, 2)


# ------------------------------------------------------------------------------------------------ target rule


def test_target_rule_counts_skewed_and_signed():
    from trainforge.tabular.models import default_variants, first_trials, objective_choices
    from trainforge.tabular.settings import target_rule

    frame = table(300)
    counts = target_rule("regression", [frame["visits"].to_numpy(dtype=float)])
    assert counts is not None and {"poisson", "tweedie"} <= set(counts.objectives) and "counts" in counts.why
    assert objective_choices("xgboost", counts) == ("squared_error", "poisson", "tweedie")
    assert objective_choices("hist_gradient_boosting", counts) == ("squared_error", "poisson")
    assert objective_choices("ridge", counts) == ()
    assert {"objective": "poisson"} in default_variants("xgboost", counts)
    skewed = target_rule("regression", [frame["amount"].to_numpy(dtype=float)])
    assert skewed is not None and skewed.transforms == ("none", "log1p") and "poisson" not in skewed.objectives
    signed = target_rule("regression", [frame["x1"].to_numpy()])
    assert signed is not None and signed.objectives == ("squared_error",) and signed.transforms == ("none",)
    assert target_rule("classification", [np.array([0, 1])]) is None
    first = first_trials(["ridge", "xgboost", "lightgbm"], counts, {}, 300)
    defaults = [(params["family"], attrs["variant"]) for params, attrs in first if attrs]
    # Boosters first (their plain default, then the count's Poisson loss), then the linear family.
    assert defaults[:2] == [("lightgbm", {}), ("lightgbm", {"objective": "poisson"})]
    assert ("xgboost", {"objective": "poisson"}) in defaults and defaults[-1] == ("ridge", {})
    portfolio = [params for params, attrs in first if not attrs]
    assert portfolio and all(p.get(f"{p['family']}.objective", "squared_error") == "squared_error" for p in portfolio)


def test_count_target_tries_poisson_and_tweedie_and_reloads(tmp_path):
    raw = raw_config(
        tmp_path, "tabular_regression", "visits", {"trials": 8}, families=["xgboost", "hist_gradient_boosting"]
    )
    result = trainforge.train(raw)
    board = leaderboard(result.output_dir)
    trials = board[board["how"] == "trial"]
    objectives = [json.loads(p).get("objective") for p in trials["params"]]
    searched = [json.loads(p).get("xgboost.objective") for p in trials["params"]]
    assert "poisson" in objectives  # the Poisson default of xgboost ran under the same folds
    assert "squared_error" in searched  # the loss is a search dimension (the portfolio point fits squared error)
    events = [json.loads(line) for line in (result.output_dir / "events.jsonl").read_text().splitlines()]
    started = next(e for e in events if e["event"] == "train_started")
    assert "Poisson and Tweedie" in started["target"]
    predicted = trainforge.predict(result.output_dir, table(6, seed=4).drop(columns=TARGETS))
    assert (predicted["prediction"] >= 0).all()


# ------------------------------------------------------------------------------------------------ stacking


FRESH = textwrap.dedent(
    """
    import sys, joblib, pandas as pd
    model = joblib.load(sys.argv[1])
    rows = pd.read_csv(sys.argv[2])
    print(list(model.predict(rows)))
    assert not [m for m in sys.modules if m.startswith("trainforge")], "trainforge was imported"
    """
)


@pytest.mark.parametrize(("task", "target"), [("tabular_classification", "tier"), ("tabular_regression", "amount")])
def test_stack_assembles_into_a_scikit_learn_stacking_model(tmp_path, task, target):
    import joblib

    from trainforge.tabular.ensemble import Final, assemble, predict_encoded, stack, stack_features
    from trainforge.tabular.trainer import TabularTrainer
    from trainforge.training import driver
    from trainforge.training.events import EventLog

    families = ["lightgbm", "logistic_regression" if task == "tabular_classification" else "ridge"]
    config = load_config(raw_config(tmp_path, task, target, {"trials": 4}, ensemble="stack", families=families))
    checked = driver.check(config)
    prepared = driver.prepare(checked)
    trainer = TabularTrainer(config, prepared, checked.labels, tmp_path, EventLog(tmp_path / "events.jsonl"))
    trainer.train()
    search = trainer.search
    assert search is not None and {c.how for c in trainer.candidates} == {"best_trial", "greedy", "stack"}
    ranked = sorted(search.outcomes, key=lambda o: o.score, reverse=search.greater)
    stacked = stack(search, ranked)
    assert stacked is not None and len(stacked.members) >= 2
    model = assemble(search.problem, stacked)
    assert type(model).__name__ == ("StackingClassifier" if task == "tabular_classification" else "StackingRegressor")
    X = prepared.eval[0]
    bags = [
        predict_encoded(assemble(search.problem, Final("best_trial", [(o, 1.0)], o.score)), search.problem, X)[0]
        for o, _ in stacked.members
    ]
    expected = stacked.meta[0].predict(stack_features(search.problem, bags, 0))
    if task == "tabular_classification":
        probabilities = model.predict_proba(X)
        assert np.allclose(probabilities.sum(axis=1), 1.0)
        assert set(model.predict(X)) <= {"lo", "mid", "hi"}
        assert list(model.predict(X)) == list(search.problem.encoders[0].inverse_transform(expected))
    else:
        assert np.allclose(model.predict(X), expected)
    joblib.dump(model, tmp_path / "model.joblib")
    X.head(5).to_csv(tmp_path / "rows.csv", index=False)
    (tmp_path / "fresh.py").write_text(FRESH)
    out = subprocess.run(
        [sys.executable, "-I", str(tmp_path / "fresh.py"), str(tmp_path / "model.joblib"), str(tmp_path / "rows.csv")],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert len(eval(out.stdout)) == 5


# ------------------------------------------------------------------------------------------------ presets


@pytest.mark.parametrize(
    ("preset", "trials", "seconds", "folds", "ensemble"),
    [("quick", 30, 60, 3, "greedy"), ("medium", 60, 300, 5, "greedy"), ("best", 300, 900, 8, "stack")],
)
def test_presets_set_budget_folds_and_depth(tmp_path, preset, trials, seconds, folds, ensemble):
    from trainforge.tabular.settings import PRESETS, resolve

    raw = raw_config(tmp_path, "tabular_regression", "visits", preset=preset)
    raw["params"].pop("cv_folds")
    raw.pop("search")
    config = load_config(raw)
    settings = resolve(config, n_rows=100, n_features=4)
    assert (settings.trials, settings.time_limit, settings.folds, settings.ensemble) == (
        trials,
        seconds,
        folds,
        ensemble,
    )
    assert settings.repeats == PRESETS[preset].max_repeats  # 100 x 4 cells: small enough for every repeat
    assert resolve(config, n_rows=200_000, n_features=50).repeats == 1  # large: one pass, the budget buys trials
    raw["search"] = {"trials": 7, "timeout": 20}
    raw["params"].update(cv_folds=4, ensemble="none")
    settings = resolve(load_config(raw), n_rows=100, n_features=4)
    assert (settings.trials, settings.time_limit, settings.folds, settings.ensemble) == (7, 20, 4, "none")
    raw["params"].update(validation="holdout")
    assert resolve(load_config(raw), n_rows=100, n_features=4).repeats == 1


def test_repeats_rule_and_explicit_repeats(tmp_path):
    from trainforge.tabular.settings import resolve

    raw = raw_config(tmp_path, "tabular_regression", "visits", {"timeout": 60}, preset="best", cv_folds=5)
    config = load_config(raw)
    # 5,000 cells a second x 60 s = 300,000; 2,000 rows x 10 features x 5 folds = 100,000 a pass: 3 passes.
    assert resolve(config, n_rows=2_000, n_features=10).repeats == 3
    assert resolve(config, n_rows=3_000, n_features=10).repeats == 2
    assert resolve(config, n_rows=7_000, n_features=10).repeats == 1
    raw["params"]["cv_repeats"] = 2
    assert resolve(load_config(raw), n_rows=100_000, n_features=10).repeats == 2


# ------------------------------------------------------------------------------------------------ config


def test_older_params_names_move_to_search_with_a_note(tmp_path, capsys):
    raw = raw_config(tmp_path, "tabular_regression", "visits")
    raw.pop("search")
    raw["params"].update(num_trials=5, time_limit=30, study_name="s1", pruning=False, metric="mae")
    config = load_config(raw)
    search = config.search
    assert (search.trials, search.timeout, search.study_name, search.pruner, search.metric) == (
        5,
        30,
        "s1",
        "none",
        "mae",
    )
    err = capsys.readouterr().err
    assert "note: params.num_trials is read as search.trials: 5" in err and "params.time_limit" in err
    raw["params"]["num_trials"] = 5
    raw["search"] = {"trials": 6}
    with pytest.raises(ConfigError) as info:
        load_config(raw)
    assert "search.trials too" in dict(info.value.problems)["params.num_trials"]


@pytest.mark.parametrize(
    ("task", "search", "params", "key", "fragment"),
    [
        ("tabular_regression", {"metric": "accuracy"}, {}, "search.metric", "not a regression metric"),
        ("tabular_regression", {"metric": "rmse", "direction": "maximize"}, {}, "search.direction", "to minimize"),
        (
            "tabular_classification",
            {"sampler": "grid", "space": {"knn.weights": {"choice": ["uniform"]}}},
            {},
            "search.sampler",
            "tpe",
        ),
        (
            "tabular_regression",
            {"space": {"params.cv_folds": {"int": [2, 4]}}},
            {},
            "search.space.params.cv_folds",
            "<family>.<hyper-parameter>",
        ),
        (
            "tabular_regression",
            {"space": {"catboost.depth": {"int": [2, 4]}}},
            {},
            "search.space.catboost.depth",
            "no model family",
        ),
        (
            "tabular_regression",
            {"space": {"logistic_regression.C": {"loguniform": [0.1, 1]}}},
            {},
            "search.space.logistic_regression.C",
            "not searched",
        ),
        (
            "tabular_regression",
            {"space": {"xgboost.depth": {"int": [2, 4]}}},
            {},
            "search.space.xgboost.depth",
            "max_depth",
        ),
        (
            "tabular_regression",
            {"space": {"xgboost.max_depth": {"loguniform": [2, 8]}}},
            {},
            "search.space.xgboost.max_depth",
            "whole number",
        ),
        (
            "tabular_regression",
            {"space": {"xgboost.subsample": {"uniform": [0.5, 1.5]}}},
            {},
            "search.space.xgboost.subsample",
            "outside",
        ),
        (
            "tabular_regression",
            {"space": {"random_forest.max_features": {"choice": ["auto"]}}},
            {},
            "search.space.random_forest.max_features",
            "sqrt",
        ),
        (
            "tabular_regression",
            {"space": {"xgboost.max_depth": {"int": [2, 4]}}},
            {"model": "lightgbm"},
            "search.space.xgboost.max_depth",
            "not searched",
        ),
        ("tabular_regression", {}, {"validation": "holdout", "cv_repeats": 2}, "params.cv_repeats", "holdout"),
    ],
)
def test_invalid_search_combinations_are_refused(tmp_path, task, search, params, key, fragment):
    raw = raw_config(tmp_path, task, "tier" if task == "tabular_classification" else "visits", search, **params)
    with pytest.raises(ConfigError) as info:
        load_config(raw)
    problems = dict(info.value.problems)
    assert key in problems and fragment in problems[key], problems


def test_validate_refuses_a_bad_search_space_with_exit_code_2(tmp_path, capsys):
    import yaml

    from trainforge.cli.main import main

    raw = raw_config(
        tmp_path, "tabular_regression", "visits", {"space": {"training.learning_rate": {"uniform": [0.1, 0.2]}}}
    )
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(raw))
    assert main(["validate", str(tmp_path / "c.yaml")]) == 2
    assert "search.space.training.learning_rate" in capsys.readouterr().err
