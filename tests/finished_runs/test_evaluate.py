"""``trainforge evaluate``: a run scored on labelled rows through its predictor, with the task's own metrics.

A run evaluated on its own eval file reproduces the eval metrics it logged; classification (text and tabular),
regression and text generation; what cannot be scored is refused with exit code 2.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tasks"))
from _llm_fixtures import conversations, write_jsonl  # noqa: E402
from _runs import chat_run, tabular_run, text_run  # noqa: F401

import trainforge
from conftest import make_sentiment_frame
from trainforge.cli.main import main
from trainforge.errors import DataError
from trainforge.evaluation import EvaluateError


def _report(folder) -> tuple[dict, str, list[dict]]:
    metrics = json.loads((folder / "metrics.json").read_text())
    lines = (folder / "predictions.jsonl").read_text().splitlines()
    return metrics, (folder / "report.md").read_text(), [json.loads(line) for line in lines]


def test_a_run_evaluated_on_its_eval_file_reproduces_its_eval_metrics(text_run, tmp_path):  # noqa: F811
    logged = json.loads((text_run / "metrics.json").read_text())
    evaluation = trainforge.evaluate(text_run, text_run.parent / "reviews_eval.csv", name="own-eval")
    assert evaluation.folder == text_run / "evaluation" / "own-eval" and evaluation.rows == 40
    assert evaluation.metrics["accuracy"] == pytest.approx(logged["eval_accuracy"], abs=1e-12)
    for key in ("f1", "precision", "recall", "roc_auc"):
        assert evaluation.metrics[key] == pytest.approx(logged[f"eval_{key}"], abs=1e-6), key
    assert logged["eval_accuracy"] > 0.6  # a model that learned: the comparison is not between two constants
    metrics, report, records = _report(evaluation.folder)
    assert metrics["rows"] == 40 and metrics["kind"] == "single_label_classification"
    assert sum(map(sum, metrics["confusion matrix"]["matrix"])) == 40
    assert [c["class"] for c in metrics["per class"]] == ["negative", "positive"]
    assert sum(c["support"] for c in metrics["per class"]) == 40
    assert "## Confusion matrix" in report and f"| accuracy | {logged['eval_accuracy']:.4f} |" in report
    assert len(records) == 40 and records[0]["row"] == 1 and set(records[0]) >= {"input", "truth", "prediction"}
    # The same rows under other column names, mapped on the command line.
    renamed = pd.read_csv(text_run.parent / "reviews_eval.csv").rename(columns={"review": "t", "sentiment": "y"})
    renamed.to_csv(tmp_path / "renamed.csv", index=False)
    command = ["evaluate", str(text_run), "--data", str(tmp_path / "renamed.csv"), "--columns", "text=t", "label=y"]
    assert main([*command, "--name", "renamed"]) == 0
    again = json.loads((text_run / "evaluation" / "renamed" / "metrics.json").read_text())
    assert again["metrics"] == metrics["metrics"]


def test_labels_the_model_lacks_and_missing_columns_are_named(text_run, tmp_path, capsys):  # noqa: F811
    frame = make_sentiment_frame(6, seed=2)
    frame.loc[[1, 4], "sentiment"] = "neutral"
    frame.to_csv(tmp_path / "neutral.csv", index=False)
    with pytest.raises(DataError, match=r"labels \['neutral'\] are not classes of this model .* rows 2, 5"):
        trainforge.evaluate(text_run, tmp_path / "neutral.csv")
    frame.drop(columns=["review"]).to_csv(tmp_path / "no_text.csv", index=False)
    assert main(["evaluate", str(text_run), "--data", str(tmp_path / "no_text.csv")]) == 2
    assert "no column 'review' for the text column" in (err := capsys.readouterr().err) and "--columns text=" in err
    assert main(["evaluate", str(text_run), "--data", str(tmp_path / "neutral.csv"), "--columns", "txt=a"]) == 2
    assert "--columns names ['txt']" in capsys.readouterr().err
    assert not (text_run / "evaluation" / "neutral").exists()  # nothing written for a refused evaluation


def test_tabular_classification_and_text_regression(tabular_run, tiny_bert, tmp_path):  # noqa: F811
    logged = json.loads((tabular_run / "metrics.json").read_text())
    evaluation = trainforge.evaluate(tabular_run, tabular_run.parent / "churn_eval.csv")
    assert evaluation.kind == "single_label_classification" and evaluation.rows == 30
    assert evaluation.metrics["accuracy"] == pytest.approx(logged["eval_accuracy"], abs=1e-12)
    assert "plan=" in _report(evaluation.folder)[2][0]["input"]
    # Regression: RMSE/MAE/R² as training logged them, and the rows with the largest errors.
    make_sentiment_frame(64).to_csv(tmp_path / "train.csv", index=False)
    make_sentiment_frame(24, seed=9).to_csv(tmp_path / "eval.csv", index=False)
    config = {
        "task": "text_regression",
        "model": {"name": tiny_bert},
        "data": {
            "source": str(tmp_path / "train.csv"),
            "eval_split": str(tmp_path / "eval.csv"),
            "columns": {"text": "review", "target": "score"},
        },
        "training": {"num_train_epochs": 2, "learning_rate": 5e-3, "per_device_train_batch_size": 16},
        "params": {"max_length": 16},
        "output": {"dir": str(tmp_path / "regression"), "report_to": ["none"], "save_checkpoints": False},
    }
    run = trainforge.train(config).output_dir
    logged = json.loads((run / "metrics.json").read_text())
    scored = trainforge.evaluate(run, tmp_path / "eval.csv")
    assert scored.kind == "regression"
    for key in ("rmse", "mae", "r2"):
        assert scored.metrics[key] == pytest.approx(logged[f"eval_{key}"], rel=1e-4, abs=1e-6), key
    metrics, report, _ = _report(scored.folder)
    errors = [abs(r["error"]) for r in metrics["largest errors"]]
    assert errors == sorted(errors, reverse=True) and "## Largest errors" in report


def test_text_generation_beside_references(chat_run, tmp_path):  # noqa: F811

    rows = [{"messages": c} for c in conversations(5, seed=3)]
    write_jsonl(tmp_path / "chat.jsonl", rows)
    evaluation = trainforge.evaluate(
        chat_run, tmp_path / "chat.jsonl", max_rows=4, overrides=["params.max_new_tokens=8"]
    )
    metrics, report, records = _report(evaluation.folder)
    assert evaluation.kind == "generation" and len(records) == 4
    assert set(metrics["metrics"]) == {"exact_match", "bleu", "chrf", "rouge1", "rouge2", "rougeL"}
    predictor = trainforge.load_predictor(chat_run)
    for record, row in zip(records, rows, strict=False):
        assert record["reference"] == row["messages"][-1]["content"]
        prompt = row["messages"][:-1]
        assert record["generated"] == predictor.chat(prompt, max_new_tokens=8, temperature=0.0)
    assert "## Generations" in report
    pairs = [{"prompt": "what colour is the kiwi?", "completion": "the kiwi is brown."}]
    write_jsonl(tmp_path / "pairs.jsonl", pairs)
    scored = trainforge.evaluate(chat_run, tmp_path / "pairs.jsonl", overrides=["params.max_new_tokens=8"])
    assert _report(scored.folder)[2][0]["reference"] == "the kiwi is brown."
    write_jsonl(tmp_path / "plain.jsonl", [{"text": "the kiwi is brown."}])
    with pytest.raises(EvaluateError, match="plain text rows: there is no reference answer"):
        trainforge.evaluate(chat_run, tmp_path / "plain.jsonl")


def test_a_task_evaluate_does_not_score_exits_2(text_run, monkeypatch, capsys):  # noqa: F811
    import trainforge.tasks as tasks

    detector = dataclasses.replace(tasks.get_task("text_classification"), pipeline_tag="object-detection")
    monkeypatch.setattr(tasks, "get_task", lambda name: detector)
    assert main(["evaluate", str(text_run), "--data", str(text_run.parent / "reviews_eval.csv")]) == 2
    err = capsys.readouterr().err
    assert "evaluate scores classification, regression and text-generation runs" in err
    assert "(object-detection)" in err and "metrics.json" in err
