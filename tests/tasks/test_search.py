"""Hyperparameter search (``search:``) on the tiny BERT: trials as runs, pruning, the best kept, workers, resume."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from test_text_classification import make_config

import trainforge
from conftest import make_sentiment_frame
from trainforge.cli.main import main
from trainforge.config.loading import load_config
from trainforge.errors import ConfigError, RunDirError
from trainforge.training.events import read_events

# Two rates that learn this data in three epochs and three that cannot: the latter lag at the first evaluation.
SPACE = {"training.learning_rate": {"choice": [1.0e-2, 1.0e-7, 2.0e-2, 2.0e-7, 3.0e-7]}}


def search_config(tiny_bert: str, tmp_path: Path, out: str = "run", **search) -> dict:
    data = tmp_path / "reviews.csv"
    if not data.exists():
        make_sentiment_frame(240).to_csv(data, index=False)
    config = make_config(tiny_bert, data, tmp_path / out)
    config["training"].update(num_train_epochs=2, eval_strategy="epoch", per_device_train_batch_size=8)
    config["search"] = {
        "trials": 5,
        "space": SPACE,
        "sampler": "grid",
        "metric": "eval_loss",  # strictly ordered: an F1 ties at the majority class for every rate that learns nothing
        "pruner_startup_trials": 1,
        **search,
    }
    return config


def test_search_prunes_keeps_the_best_trial_and_reports(tiny_bert, tmp_path):
    result = trainforge.train(search_config(tiny_bert, tmp_path))
    run_dir = result.output_dir
    board = pd.read_csv(run_dir / "search" / "leaderboard.csv")
    assert len(board) == 5 and set(board["state"]) <= {"complete", "pruned", "failed"}
    assert (board["state"] == "pruned").any(), board  # a trial lagging the median was stopped early
    best = board.iloc[0]
    assert best["state"] == "complete"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["search_best_trial"] == best["trial"] and metrics["eval_loss"] == pytest.approx(best["value"])
    assert metrics["eval_loss"] <= board.loc[board["state"] == "complete", "value"].min() + 1e-12
    assert best["training.learning_rate"] >= 1e-2  # a rate that learns won

    # The run directory holds the best trial's model and config: predict and a rerun use them.
    kept = yaml.safe_load((run_dir / "config.resolved.yaml").read_text())
    assert kept["training"]["learning_rate"] == pytest.approx(best["training.learning_rate"])
    assert kept["search"]["trials"] == 0  # ready to run as one training run
    assert kept == yaml.safe_load((run_dir / "search" / "best_config.yaml").read_text())
    assert load_config(run_dir / "search" / "best_config.yaml").search.trials == 0
    predicted = trainforge.predict(run_dir, pd.DataFrame({"review": ["a lovely witty film"]}))
    assert predicted["prediction"].iloc[0] in {"positive", "negative"}
    card = (run_dir / "README.md").read_text()
    assert "## Hyperparameter search" in card and (run_dir / "search" / "history.svg").is_file()
    assert (run_dir / "search" / "importances.svg").read_text().startswith("<svg")
    # Trials keep their record, not their weights (the best one's are the run's).
    trial_dirs = sorted((run_dir / "search").glob("trial-*"))
    assert len(trial_dirs) == 5 and not list((run_dir / "search").rglob("*.safetensors"))
    assert (run_dir / "model.safetensors").is_file()
    events = read_events(run_dir / "events.jsonl")
    kinds = [e["event"] for e in events]
    assert kinds[0] == "run_started" and kinds.count("search_trial") == 5 and kinds[-1] == "run_finished"
    # The study's log repeats each trial's steps and evaluations (the app draws one curve per trial from it).
    for trial_dir in trial_dirs:
        number = int(trial_dir.name.removeprefix("trial-"))
        own = [(e["step"], e.get("loss")) for e in read_events(trial_dir / "events.jsonl") if e["event"] == "step"]
        copied = [(e["step"], e.get("loss")) for e in events if e["event"] == "step" and e.get("trial") == number]
        assert own and copied == own
        evaluated = [e for e in events if e["event"] == "eval" and e.get("trial") == number]
        assert evaluated and all("loss" in e["metrics"] for e in evaluated)
    assert not [e for e in events if e["event"] in ("step", "eval") and "trial" not in e]


def test_two_workers_share_one_sqlite_study(tiny_bert, tmp_path):
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    paths = []
    for worker in ("a", "b"):
        config = search_config(tiny_bert, tmp_path, out=f"run-{worker}", trials=4, storage=storage, pruner="none")
        config["training"]["num_train_epochs"] = 1
        path = tmp_path / f"{worker}.yaml"
        path.write_text(yaml.safe_dump(config))
        paths.append(path)
    workers = [
        subprocess.Popen([sys.executable, "-m", "trainforge", "train", str(p)], stderr=subprocess.PIPE, text=True)
        for p in paths
    ]
    errors = [w.communicate(timeout=600)[1] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], errors
    import optuna

    study = optuna.load_study(study_name="trainforge", storage=storage)
    numbers = [t.number for t in study.trials]
    assert len(numbers) == len(set(numbers)) and 4 <= len(numbers) <= 5  # a worker may start one as the other ends
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    ran = [t.user_attrs["run_dir"] for t in study.trials]
    assert {Path(r).parents[1].name for r in ran} == {"run-a", "run-b"}  # both worked on it


def test_an_interrupted_study_resumes(tiny_bert, tmp_path, monkeypatch):
    from trainforge.training import driver

    config = search_config(tiny_bert, tmp_path, trials=3, pruner="none")
    config["training"]["num_train_epochs"] = 1
    real_finish, calls = driver.finish, []

    def finish_then_stop(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_finish(*args, **kwargs)

    monkeypatch.setattr(driver, "finish", finish_then_stop)
    with pytest.raises(KeyboardInterrupt):
        trainforge.train(config)
    monkeypatch.setattr(driver, "finish", real_finish)
    with pytest.raises(RunDirError, match="unfinished search: continue it with --resume"):
        trainforge.train(config)  # without --resume: refused, the completed trial is not thrown away
    changed = {**config, "training": {**config["training"], "num_train_epochs": 2}}
    with pytest.raises(RunDirError, match="the config differs from the study's \\(training changed"):
        trainforge.train(changed, resume=True)
    result = trainforge.train(config, resume=True)
    board = pd.read_csv(result.output_dir / "search" / "leaderboard.csv")
    assert (board["state"] == "complete").sum() == 3 and (board["state"] == "failed").sum() == 1


@pytest.mark.parametrize(
    ("search", "key", "fragment"),
    [
        ({"trials": 2, "space": {"training.lr": {"choice": [0.1]}}}, "search.space.training.lr", "did you mean"),
        (
            {"trials": 2, "space": {"training.learning_rate": {"uniform": [-1.0, 0.1]}}},
            "search.space.training.learning_rate",
            "the value -1.0 is not valid",
        ),
        ({"trials": 2}, "search", "needs a space"),
        ({"trials": 2, "space": {"peft.r": {"int": [8, 4]}}}, "search.space.peft.r", "low < high"),
        ({"trials": 2, "space": SPACE, "metric": "test_f1"}, "search.metric", "would choose by the test split"),
        ({"trials": 2, "space": {"training.seed": {"int": [1, 9]}}}, "search.space.training.seed", "not searchable"),
        ({"trials": 2, "space": SPACE, "storage": "foo://bar"}, "search.storage", "not a usable database URL"),
        ({"trials": 2, "space": {"peft.r": {"int": [2, 8]}}}, "search.space.peft.r", "would do nothing"),
        (
            {"trials": 2, "space": {"training.per_device_train_batch_size": {"uniform": [4, 16]}}},
            "search.space.training.per_device_train_batch_size",
            "a whole number",
        ),
    ],
    ids=["unknown-key", "range", "no-space", "reversed", "test-metric", "seed", "storage", "lora-off", "int-field"],
)
def test_a_wrong_search_section_is_named(tiny_bert, tmp_path, search, key, fragment):
    config = make_config(tiny_bert, tmp_path / "d.csv", tmp_path / "run")
    config["search"] = search
    with pytest.raises(ConfigError) as info:
        load_config(config)
    problems = dict(info.value.problems)
    assert any(k.startswith(key) and fragment in m for k, m in problems.items()), problems


def test_tabular_reads_search_with_its_own_space(tmp_path):
    """Tabular runs its own study from search: (tests/tasks/test_tabular_search.py); config keys are not its space."""
    raw = {
        "task": "tabular_classification",
        "model": {"name": "auto"},
        "data": {"source": "t.csv"},
        "params": {"target_columns": ["y"]},
        "search": {"trials": 3, "space": {"params.cv_folds": {"int": [2, 5]}}},
    }
    with pytest.raises(ConfigError) as info:
        load_config(raw)
    assert "<family>.<hyper-parameter>" in dict(info.value.problems)["search.space.params.cv_folds"]
    raw["search"]["space"] = {"xgboost.max_depth": {"int": [2, 5]}}
    assert load_config(raw).search.trials == 3


def test_validate_shows_the_search(tiny_bert, tmp_path, capsys):
    path = tmp_path / "c.yaml"
    config = search_config(tiny_bert, tmp_path)
    path.write_text(yaml.safe_dump(config))
    assert main(["validate", str(path)]) == 0


def test_a_search_needs_an_eval_split(tiny_bert, tmp_path):
    config = search_config(tiny_bert, tmp_path)
    config["data"]["eval_fraction"] = 0
    with pytest.raises(ConfigError) as info:
        load_config(config)
    assert "give an eval split" in dict(info.value.problems)["search.trials"]


def test_a_worker_keeps_only_its_own_trials(tmp_path):
    """Workers sharing a storage: runs/w must not take runs/w2's trials for its own (their names share a prefix)."""
    from types import SimpleNamespace

    from trainforge.training.search import _ours

    def trial(folder: Path) -> SimpleNamespace:
        return SimpleNamespace(user_attrs={"run_dir": str(folder)})

    assert _ours(trial(tmp_path / "w" / "search" / "trial-000"), tmp_path / "w")
    assert not _ours(trial(tmp_path / "w2" / "search" / "trial-000"), tmp_path / "w")
