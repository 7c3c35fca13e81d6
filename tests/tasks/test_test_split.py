"""``data.test_split``: scored once after training with the kept model, reported as ``test_*``, checked like eval.

One test per carrier of the contract: a Trainer task (text_classification), the tabular trainer and a TRL trainer
(llm_sft); then the ways a test split can be wrong, each an exit-2 message naming the split.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from _llm_fixtures import conversations, llm_config, tiny_llama, write_jsonl  # noqa: F401
from test_tabular import FAST, mixed_frame
from test_text_classification import make_config

import trainforge
from conftest import make_sentiment_frame
from trainforge.cli.main import main


def test_text_classification_reports_test_metrics_that_predict_reproduces(tiny_bert, tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    frame = make_sentiment_frame(200)
    frame.iloc[:120].to_csv(folder / "train.csv", index=False)
    frame.iloc[120:160].to_csv(folder / "valid.csv", index=False)
    frame.iloc[160:].to_csv(folder / "test.csv", index=False)
    config = make_config(tiny_bert, folder, tmp_path / "run")
    config["data"].update(eval_split="valid", test_split="test", eval_fraction=None)
    result = trainforge.train(config)
    metrics = json.loads((result.output_dir / "metrics.json").read_text())
    assert {"test_loss", "test_accuracy", "test_f1", "eval_accuracy"} <= metrics.keys()
    assert not any(k.endswith(("_runtime", "_per_second")) and k.startswith("test_") for k in metrics)

    test = pd.read_csv(folder / "test.csv")
    predicted = trainforge.predict(result.output_dir, test[["review"]])
    accuracy = float(np.mean(predicted["prediction"].to_numpy() == test["sentiment"].to_numpy()))
    assert metrics["test_accuracy"] == pytest.approx(accuracy)

    events = [json.loads(line) for line in (result.output_dir / "events.jsonl").read_text().splitlines()]
    started = next(e for e in events if e["event"] == "run_started")
    assert started["test_rows"] == 40 and started["test_origin"].endswith("test.csv")
    assert [e["metrics"]["test_accuracy"] for e in events if e["event"] == "test"] == [metrics["test_accuracy"]]


def test_tabular_reports_test_metrics(tmp_path):
    frame = mixed_frame(200)
    frame.iloc[:160].to_csv(tmp_path / "train.csv", index=False)
    frame.iloc[160:].to_csv(tmp_path / "test.csv", index=False)
    config = {
        "task": "tabular_regression",
        "model": {"name": "auto"},
        "data": {
            "source": str(tmp_path / "train.csv"),
            "test_split": str(tmp_path / "test.csv"),
            "columns": {"id": "customer_id"},
            "eval_fraction": 0.2,
        },
        "params": {**FAST, "target_columns": ["spend"], "ignore_columns": ["churned", "tier", "upsell", "visits"]},
        "output": {"dir": str(tmp_path / "run")},
    }
    result = trainforge.train(config)
    assert {"test_rmse", "test_r2", "eval_rmse"} <= result.metrics.keys()
    assert result.metrics["test_r2"] > 0.5  # spend is mostly income and age: a kept model predicts it


def test_llm_sft_reports_test_loss(tiny_llama, tmp_path):  # noqa: F811
    folder = tmp_path / "chats"
    folder.mkdir()
    for split, rows in (("train", 24), ("test", 6)):
        write_jsonl(folder / f"{split}.jsonl", [{"messages": c} for c in conversations(rows, seed=rows)])
    config = llm_config("llm_sft", tiny_llama, folder, tmp_path / "run")
    config["data"]["test_split"] = "test"
    result = trainforge.train(config)
    assert result.metrics["test_loss"] > 0 and "eval_loss" in result.metrics


def _validate(capsys, tmp_path, config: dict) -> tuple[int, str]:
    import yaml

    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    code = main(["validate", str(path)])
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    ("data", "fragments"),
    [
        ({"eval_split": "valid", "test_split": "valid"}, ["data", "test_split names the evaluation split"]),
        ({"test_split": "train"}, ["data", "test_split names the training split"]),
        ({"test_split": "missing"}, ["no file for split 'missing'", "found: test.csv, train.csv, valid.csv"]),
        ({"test_split": "unseen"}, ["unseen.csv: labels ['neutral'] never occur in training"]),
    ],
    ids=["same-as-eval", "same-as-train", "missing", "unseen-labels"],
)
def test_a_wrong_test_split_is_named_at_validate(tiny_bert, tmp_path, capsys, data, fragments):
    folder = tmp_path / "data"
    folder.mkdir()
    for split in ("train", "valid", "test"):
        make_sentiment_frame(40).to_csv(folder / f"{split}.csv", index=False)
    if data["test_split"] == "unseen":
        make_sentiment_frame(30, classes=3).to_csv(folder / "unseen.csv", index=False)
    config = make_config(tiny_bert, folder, tmp_path / "run")
    config["data"].update(eval_fraction=None, **data)
    code, err = _validate(capsys, tmp_path, config)
    assert code == 2, err
    assert all(fragment in err for fragment in fragments), err
    assert "Traceback" not in err


def test_without_an_eval_split_the_test_split_gets_every_metric(tiny_bert, tmp_path):
    frame = make_sentiment_frame(160)
    frame.iloc[:120].to_csv(tmp_path / "train.csv", index=False)
    frame.iloc[120:].to_csv(tmp_path / "test.csv", index=False)
    config = make_config(tiny_bert, tmp_path / "train.csv", tmp_path / "run")
    config["data"].update(eval_fraction=0, test_split=str(tmp_path / "test.csv"))
    result = trainforge.train(config)
    assert {"test_loss", "test_accuracy", "test_f1"} <= result.metrics.keys()


def test_the_eval_file_under_another_spelling_is_not_a_test_file(tiny_bert, tmp_path, capsys):
    frame = make_sentiment_frame(60)
    for name in ("train", "valid"):
        frame.to_csv(tmp_path / f"{name}.csv", index=False)
    config = make_config(tiny_bert, tmp_path / "train.csv", tmp_path / "run")
    other_spelling = str(tmp_path / ".." / tmp_path.name / "valid.csv")
    config["data"].update(eval_fraction=None, eval_split=str(tmp_path / "valid.csv"), test_split=other_spelling)
    code, err = _validate(capsys, tmp_path, config)
    assert code == 2 and "data.test_split is the evaluation file" in err, err
