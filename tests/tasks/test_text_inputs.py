"""Predict refuses texts that are not text (empty, JSON objects, numbers) the way training does, naming the rows,
and reads its input files as training reads data files (delimiter, encoding)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

import trainforge
from conftest import make_sentiment_frame
from trainforge.cli.main import main
from trainforge.errors import DataError


@pytest.fixture(scope="module")
def run_dir(tiny_bert, tmp_path_factory) -> Path:
    """One small finished run; the tests only predict with it."""
    folder = tmp_path_factory.mktemp("text-inputs")
    make_sentiment_frame(48).to_csv(folder / "reviews.csv", index=False)
    config = {
        "task": "text_classification",
        "model": {"name": tiny_bert},
        "data": {
            "source": str(folder / "reviews.csv"),
            "columns": {"text": "review", "label": "sentiment"},
            "eval_fraction": 0.25,
        },
        "training": {"max_steps": 2, "per_device_train_batch_size": 16},
        "params": {"max_length": 32},
        "output": {"dir": str(folder / "run"), "report_to": ["none"]},
    }
    return trainforge.train(config).output_dir


def predict_cli(capsys, run_dir: Path, inputs: Path) -> tuple[int, str]:
    code = main(["predict", str(run_dir), "--input", str(inputs), "--output", str(inputs.with_name("out.csv"))])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


def test_empty_text_is_refused_naming_the_row(capsys, tmp_path, run_dir):
    inputs = tmp_path / "in.csv"
    inputs.write_text('review\ngood film\n""\nbad film\n"  "\n')
    code, err = predict_cli(capsys, run_dir, inputs)
    assert code == 2
    assert f"{inputs}: the input: the review column is empty in 2 row(s), first: rows 2, 4" in err  # the file named
    assert not inputs.with_name("out.csv").exists()


@pytest.mark.parametrize(
    ("value", "kind"), [({"title": "x"}, "a JSON object: {'title': 'x'}"), (7, "a number: 7"), (["a"], "a list")]
)
def test_non_string_text_is_refused_naming_the_row(capsys, tmp_path, run_dir, value, kind):
    inputs = tmp_path / "in.jsonl"
    inputs.write_text("".join(json.dumps({"review": v}) + "\n" for v in ["good film", "fine", value]))
    code, err = predict_cli(capsys, run_dir, inputs)
    assert code == 2
    assert "the review column holds values that are not text in 1 row(s), first: rows 3" in err
    assert f"(row 3 holds {kind}" in err
    assert "check that this is the column of texts" in err and "data.columns" not in err  # predict has no data.columns


def test_sdk_frame_with_a_label_index_names_positions(run_dir):
    frame = pd.DataFrame({"review": ["good film", None]}, index=["a", "b"])
    with pytest.raises(DataError, match=r"the review column is empty in 1 row\(s\), first: rows 2"):
        trainforge.predict(run_dir, frame)


def test_excel_semicolon_cp1252_input_predicts(capsys, tmp_path, run_dir):
    inputs = tmp_path / "in.csv"
    inputs.write_bytes("review;extra\r\nlovely café film;1\r\ndull plot;2\r\n".encode("cp1252"))
    code, err = predict_cli(capsys, run_dir, inputs)
    assert code == 0, err
    assert "is not UTF-8" in err and "separated by semicolons" in err
    out = pd.read_csv(inputs.with_name("out.csv"))
    assert out["review"].tolist() == ["lovely café film", "dull plot"] and out["prediction"].notna().all()
