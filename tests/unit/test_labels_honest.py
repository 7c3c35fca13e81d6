"""Honest labels: the strings the user wrote, one rule for text and tabular classification, every problem at once.

Number-like labels (``01`` codes, ``1``/``1.0`` spellings), labels that differ only by case or spaces, and data
problems spread over several rows are read from data each test writes itself.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import trainforge
from conftest import make_sentiment_frame
from trainforge.cli.main import main
from trainforge.data.labels import read_label_names

# ------------------------------------------------------------------------------------------------ the rule


@pytest.mark.parametrize(
    ("written", "classes", "numeric", "note"),
    [
        (["01", "02", "10", "01"], {"01": "01", "02": "02", "10": "10"}, False, None),
        (["0", "1", "0.0", "1.0"], {"0": "0", "0.0": "0", "1": "1", "1.0": "1"}, True, "'1', '1.0' -> '1'"),
        (["0.0", "1.0", "2.0"], {"0.0": "0", "1.0": "1", "2.0": "2"}, True, None),
        (["2", "10", "-1"], {"2": "2", "10": "10", "-1": "-1"}, True, None),
        (["0.5", "0.50", "2"], {"0.5": "0.5", "0.50": "0.5", "2": "2"}, True, "'0.5', '0.50' -> '0.5'"),
        (["1", "01", "1.0"], {"1": "1", "01": "01", "1.0": "1.0"}, False, "'01' and '1' and '1.0' spell the same"),
        (["1e3", "1000"], {"1e3": "1e3", "1000": "1000"}, False, None),
        (["billing", " billing "], {"billing": "billing", " billing ": "billing"}, False, "' billing ', 'billing'"),
        (["Billing", "billing"], {"Billing": "Billing", "billing": "billing"}, False, "'Billing' and 'billing'"),
    ],
)
def test_label_rule(written, classes, numeric, note):
    reading = read_label_names(written)
    assert reading.classes == classes and reading.numeric is numeric
    if note is None:
        assert reading.notes == ()
    else:
        assert any(note in n for n in reading.notes), reading.notes


def test_numbers_sort_by_value_and_codes_as_text():
    numbers = read_label_names(["10", "2", "1.0", "-3"])
    assert numbers.ordered(numbers.classes.values()) == ["-3", "1", "2", "10"]
    codes = read_label_names(["10", "02", "01"])
    assert codes.ordered(codes.classes.values()) == ["01", "02", "10"]


# ------------------------------------------------------------------------------------------------ helpers


def text_config(model: str, source: Path, out: Path, task: str = "text_classification") -> dict:
    columns = {"text": "review", "label": "sentiment"} if task == "text_classification" else {"text": "review"}
    return {
        "task": task,
        "model": {"name": model},
        "data": {"source": str(source), "columns": columns, "eval_fraction": 0},
        "training": {"num_train_epochs": 1, "learning_rate": 1e-2, "per_device_train_batch_size": 16},
        "params": {"max_length": 32},
        "output": {"dir": str(out), "report_to": ["none"]},
    }


def tabular_frame(labels: list[str], rows: int = 60, seed: int = 0) -> pd.DataFrame:
    """Two numeric features that separate the classes, labels cycled over the rows."""
    rng = np.random.default_rng(seed)
    label = [labels[i % len(labels)] for i in range(rows)]
    position = np.array([i % len(labels) for i in range(rows)], dtype=float)
    return pd.DataFrame({"x1": position * 3 + rng.normal(0, 0.3, rows), "x2": rng.normal(size=rows), "target": label})


def tabular_config(source: Path, out: Path, **params) -> dict:
    return {
        "task": "tabular_classification",
        "model": {"name": "lightgbm"},
        "data": {"source": str(source), "eval_fraction": 0},
        "params": {"target_columns": ["target"], "cv_folds": 3, **params},
        "search": {"trials": 2, "timeout": 60},
        "output": {"dir": str(out)},
    }


def cli(capsys, tmp_path: Path, config: dict, command: str = "validate") -> tuple[int, str]:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    code = main([command, str(path)])
    out, err = capsys.readouterr()
    return code, out + err


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return path


# ------------------------------------------------------------------------------------------------ text classification


def test_zero_padded_codes_in_csv_train_and_predict_as_written(tiny_bert, tmp_path):
    frame = make_sentiment_frame(48, classes=3).drop(columns=["score"])
    frame["sentiment"] = frame["sentiment"].map({"positive": "01", "negative": "02", "neutral": "10"})
    frame.to_csv(tmp_path / "codes.csv", index=False)
    assert "\n" + frame["review"][0] + ",01\n" in (tmp_path / "codes.csv").read_text()  # the file says 01
    result = trainforge.train(text_config(tiny_bert, tmp_path / "codes.csv", tmp_path / "run"))
    assert result.labels.names == ("01", "02", "10")
    id2label = json.loads((result.output_dir / "config.json").read_text())["id2label"]
    assert id2label == {"0": "01", "1": "02", "2": "10"}
    predicted = trainforge.predict(result.output_dir, frame[["review"]].head(6))
    assert set(predicted["prediction"]) <= {"01", "02", "10"}
    assert {"prob_01", "prob_02", "prob_10"} <= set(predicted.columns)


def test_spellings_of_one_number_are_one_class_with_a_note(tiny_bert, tmp_path, capsys):
    frame = make_sentiment_frame(40)
    labels = ["0", "1", "0.0", "1.0"]
    records = [{"review": r, "sentiment": labels[i % 4]} for i, r in enumerate(frame["review"])]
    source = write_jsonl(tmp_path / "mixed.jsonl", records)
    code, output = cli(capsys, tmp_path, text_config(tiny_bert, source, tmp_path / "run"))
    assert code == 0, output
    assert "2 label(s): 0, 1" in output
    assert "'0', '0.0' -> '0'" in output and "'1', '1.0' -> '1'" in output


def test_codes_with_leading_zeros_are_never_merged(tiny_bert, tmp_path, capsys):
    frame = make_sentiment_frame(45)
    labels = ["01", "1", "2"]
    records = [{"review": r, "sentiment": labels[i % 3]} for i, r in enumerate(frame["review"])]
    source = write_jsonl(tmp_path / "codes.jsonl", records)
    code, output = cli(capsys, tmp_path, text_config(tiny_bert, source, tmp_path / "run"))
    assert code == 0, output
    assert "3 label(s): 01, 1, 2" in output
    assert "'01' and '1' spell the same number" in output and "stay separate classes" in output


def test_labels_that_differ_by_case_or_spaces_are_named(tiny_bert, tmp_path, capsys):
    frame = make_sentiment_frame(40)
    labels = ["Billing", "billing", " billing ", "shipping"]
    frame["sentiment"] = [labels[i % 4] for i in range(len(frame))]
    frame.to_csv(tmp_path / "cased.csv", index=False)
    code, output = cli(capsys, tmp_path, text_config(tiny_bert, tmp_path / "cased.csv", tmp_path / "run"))
    assert code == 0, output
    assert "3 label(s): Billing, billing, shipping" in output
    assert "labels 'Billing' and 'billing' differ only by upper/lower case" in output
    assert "' billing ', 'billing' -> 'billing'" in output


def test_every_text_and_label_problem_in_one_message(tiny_bert, tmp_path, capsys):
    frame = make_sentiment_frame(40).astype(object)
    frame.loc[4, "review"] = ""  # data row 5
    frame.loc[8, "sentiment"] = None  # data row 9
    frame.loc[11, "review"] = "   "  # data row 12
    frame.to_csv(tmp_path / "holes.csv", index=False)
    code, output = cli(capsys, tmp_path, text_config(tiny_bert, tmp_path / "holes.csv", tmp_path / "run"))
    assert code == 2, output
    assert "2 problems with the data" in output
    assert "the text column is empty in 2 row(s), first: rows 5, 12" in output
    assert "the label column is empty in 1 row(s), first: rows 9" in output
    assert "Traceback" not in output


def test_every_regression_problem_in_one_message(tiny_bert, tmp_path, capsys):
    frame = make_sentiment_frame(40)[["review", "score"]].astype(object)
    frame.loc[1, "review"] = None  # data row 2
    frame.loc[3, "score"] = "high"  # data row 4
    frame.to_csv(tmp_path / "scores.csv", index=False)
    config = text_config(tiny_bert, tmp_path / "scores.csv", tmp_path / "run", task="text_regression")
    config["data"]["columns"]["target"] = "score"
    code, output = cli(capsys, tmp_path, config)
    assert code == 2, output
    assert "the text column is empty in 1 row(s), first: rows 2" in output
    assert "non-numeric values at row 4: 'high'" in output


# ------------------------------------------------------------------------------------------------ tabular


def test_tabular_codes_in_csv_stay_strings_and_are_predicted(tmp_path):
    pytest.importorskip("lightgbm")
    tabular_frame(["01", "02", "10"]).to_csv(tmp_path / "codes.csv", index=False)
    result = trainforge.train(tabular_config(tmp_path / "codes.csv", tmp_path / "run"))
    assert result.labels.names == ("01", "02", "10")
    rows = tabular_frame(["01", "02", "10"], rows=9, seed=3).drop(columns=["target"])
    predicted = trainforge.predict(result.output_dir, rows)
    assert set(predicted["prediction"]) <= {"01", "02", "10"}
    assert {"prob_01", "prob_02", "prob_10"} <= set(predicted.columns)


def test_tabular_spellings_of_one_number_merge_with_a_note(tmp_path, capsys):
    frame = tabular_frame(["0", "1", "0.0", "1.0"])
    frame["target"] = frame["target"].astype(object)
    write_jsonl(tmp_path / "mixed.jsonl", frame.to_dict(orient="records"))
    code, output = cli(capsys, tmp_path, tabular_config(tmp_path / "mixed.jsonl", tmp_path / "run"))
    assert code == 0, output
    assert "2 label(s): 0, 1" in output and "target 'target' holds numbers only" in output
    assert "'1', '1.0' -> '1'" in output


def test_tabular_case_and_space_labels_are_named(tmp_path, capsys):
    tabular_frame(["Billing", "billing", "billing ", "shipping"], rows=80).to_csv(tmp_path / "t.csv", index=False)
    code, output = cli(capsys, tmp_path, tabular_config(tmp_path / "t.csv", tmp_path / "run"))
    assert code == 0, output
    assert "3 label(s): Billing, billing, shipping" in output
    assert "target 'target': labels 'Billing' and 'billing' differ only by upper/lower case" in output
    assert "'billing', 'billing ' -> 'billing'" in output


def test_tabular_target_weight_and_column_problems_in_one_message(tmp_path, capsys):
    frame = tabular_frame(["a", "b"]).astype(object)
    frame.loc[2, "target"] = None  # data row 3
    frame["w"] = 1.0
    frame.loc[6, "w"] = -2.0  # data row 7
    frame["empty"] = np.nan
    frame.to_csv(tmp_path / "t.csv", index=False)
    config = tabular_config(tmp_path / "t.csv", tmp_path / "run")
    config["data"]["columns"] = {"sample_weight": "w"}
    code, output = cli(capsys, tmp_path, config)
    assert code == 2, output
    assert "3 problems with the data" in output
    assert "target 'target' is missing in 1 row(s), first: rows 3" in output
    assert "sample_weight must be a number >= 0; bad rows 7" in output
    assert "column 'empty' is empty in every row" in output
    assert "Traceback" not in output
