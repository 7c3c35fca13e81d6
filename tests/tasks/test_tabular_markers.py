"""Missing-value markers (``?``, ``NA``, ``-``, ...) in tabular numeric columns: read as missing with a note at
training, and the same way by ``model.joblib`` at predict, with no trainforge import."""

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
import yaml

import trainforge
from trainforge.cli.main import main
from trainforge.tabular.features import MISSING_MARKERS, read_missing_markers

pytest.importorskip("lightgbm")
pytest.importorskip("optuna")

QUESTION_ROWS = [3, 17, 29, 41, 58]  # 0-based positions of the '?' cells


def churn_frame(rows: int = 80, seed: int = 0) -> pd.DataFrame:
    """``spend`` decides ``churned``; ``region`` is noise."""
    rng = np.random.default_rng(seed)
    spend = rng.uniform(0, 100, rows).round(2)
    return pd.DataFrame(
        {
            "region": rng.choice(["north", "south", "east", "west"], rows),
            "spend": spend,
            "churned": np.where(spend > 50, "yes", "no"),
        }
    )


def config(source: Path, out: Path) -> dict:
    return {
        "task": "tabular_classification",
        "model": {"name": "lightgbm"},
        "data": {"source": str(source), "eval_fraction": 0.25},
        "params": {
            "target_columns": ["churned"],
            "cv_folds": 3,
            "ensemble": False,
            "n_jobs": 1,
        },
        "search": {"trials": 2, "timeout": 60},
        "output": {"dir": str(out)},
    }


def with_cells(frame: pd.DataFrame, column: str, positions: list[int], values: list) -> pd.DataFrame:
    changed = frame.astype({column: object})
    for position, value in zip(positions, values, strict=True):
        changed.loc[position, column] = value
    return changed


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict:
    """One model trained on a CSV whose spend holds '?', one on the same table with empty cells."""
    folder = tmp_path_factory.mktemp("markers")
    frame = churn_frame()
    with_cells(frame, "spend", QUESTION_ROWS, ["?"] * 5).to_csv(folder / "qmark.csv", index=False)
    with_cells(frame, "spend", QUESTION_ROWS, [np.nan] * 5).to_csv(folder / "empty.csv", index=False)
    assert ",?," in (folder / "qmark.csv").read_text()
    return {
        "folder": folder,
        "qmark": trainforge.train(config(folder / "qmark.csv", folder / "run_q")),
        "empty": trainforge.train(config(folder / "empty.csv", folder / "run_e")),
    }


def test_question_marks_train_like_empty_cells_with_a_note(trained):
    qmark, empty = trained["qmark"], trained["empty"]
    assert qmark.metrics["eval_accuracy"] == empty.metrics["eval_accuracy"]
    assert qmark.metrics["eval_log_loss"] == pytest.approx(empty.metrics["eval_log_loss"])
    assert qmark.metrics["eval_accuracy"] >= 0.9
    note = next(n for n in qmark.labels.notes if "'spend'" in n)
    assert "column 'spend' holds numbers and" in note and "('?')" in note and "read as missing" in note
    # Every '?' is named: in the train split or the eval split, by its 1-based row of the file.
    counted = sum(int(n.split(" and ")[1].split(" ")[0]) for n in qmark.labels.notes if "'spend'" in n)
    assert counted == 5
    importances = pd.read_csv(qmark.output_dir / "feature_importances.csv").set_index("feature")["importance"]
    assert importances["spend"] > importances["region"]  # spend is still read as a number


FRESH = textwrap.dedent(
    """
    import sys, joblib, pandas as pd
    model = joblib.load(sys.argv[1])
    rows = pd.read_csv(sys.argv[2], keep_default_na=False, na_values=[""])
    print(list(model.predict(rows)))
    assert not [m for m in sys.modules if m.startswith("trainforge")], "trainforge was imported"
    """
)


@pytest.mark.parametrize("which", ["qmark", "empty"])
def test_model_joblib_reads_markers_without_trainforge(trained, tmp_path, which):
    markers = ["?", "NA", "-", "n/a", "null", "None", "NaN", "missing", " ? "]
    rows = pd.DataFrame({"region": ["north"] * (len(markers) + 2), "spend": ["90", "10.5", *markers]})
    rows.to_csv(tmp_path / "rows.csv", index=False)
    script = tmp_path / "fresh.py"
    script.write_text(FRESH)
    out = subprocess.run(
        [
            sys.executable,
            "-I",
            str(script),
            str(trained[which].output_dir / "model.joblib"),
            str(tmp_path / "rows.csv"),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": ""},
        check=True,
        cwd=tmp_path,
    )
    predicted = eval(out.stdout)
    assert predicted[:2] == ["yes", "no"]
    # Every marker is the same missing value: one prediction for all of them, as for an empty cell.
    reference = trainforge.predict(trained[which].output_dir, pd.DataFrame({"region": ["north"], "spend": [np.nan]}))[
        "prediction"
    ][0]
    assert set(predicted[2:]) == {reference}


def test_predict_reads_markers_and_names_other_text(trained, tmp_path, capsys):
    run = trained["empty"].output_dir
    rows = pd.DataFrame({"region": ["north", "south", "east"], "spend": ["80", "?", "N/A"]})
    rows.to_csv(tmp_path / "rows.csv", index=False)
    predicted = trainforge.predict(run, tmp_path / "rows.csv")
    assert list(predicted["prediction"][:1]) == ["yes"] and predicted["prediction"].notna().all()
    bad = pd.DataFrame({"region": ["north", "south", "east"], "spend": ["80", "lots", "?"]})
    bad.to_csv(tmp_path / "bad.csv", index=False)
    code = main(["predict", str(run), "--input", str(tmp_path / "bad.csv"), "--output", str(tmp_path / "p.csv")])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "column 'spend' holds numbers for the model" in err and "rows 2 (row 2: 'lots')" in err
    assert "Traceback" not in err and not (tmp_path / "p.csv").exists()


def test_markers_in_json_lines_and_what_is_left_alone(tmp_path):
    frame = churn_frame(20)
    frame = with_cells(frame, "spend", [1, 4, 6, 9], ["NA", "missing", "-", ""])
    frame["color"] = ["red", "?"] * 10  # categories with a '?': a category, not a number
    frame["code"] = ["7", "x1", "?", "12"] * 5  # text and numbers mixed: not a column of numbers
    eval_frame = with_cells(churn_frame(8, seed=1), "spend", [2], ["N/A"])
    notes = read_missing_markers([(frame, "train.jsonl"), (eval_frame, "eval.jsonl")], ["spend", "color", "code"])
    assert notes == [
        "train.jsonl: column 'spend' holds numbers and 4 missing-value marker(s) ('NA', 'missing', '-', '') at "
        "rows 2, 5, 7, 10: read as missing values, and read so at predict too",
        "eval.jsonl: column 'spend' holds numbers and 1 missing-value marker(s) ('N/A') at rows 3: read as missing "
        "values, and read so at predict too",
    ]
    assert pd.api.types.is_float_dtype(frame["spend"]) and frame["spend"].isna().sum() == 4
    assert pd.api.types.is_float_dtype(eval_frame["spend"]) and eval_frame["spend"].isna().sum() == 1
    assert list(frame["color"][:2]) == ["red", "?"] and list(frame["code"][:3]) == ["7", "x1", "?"]
    assert {"?", "na", "n/a", "-", "", "null", "none", "nan", "missing"} <= set(MISSING_MARKERS)


def test_validate_notes_markers_in_a_regression_feature(tmp_path, capsys):
    frame = churn_frame().drop(columns=["churned"])
    frame["amount"] = frame["spend"] * 2 + 1
    with_cells(frame, "spend", [0, 5], ["?", "-"]).to_csv(tmp_path / "r.csv", index=False)
    cfg = config(tmp_path / "r.csv", tmp_path / "run")
    cfg["task"], cfg["params"]["target_columns"] = "tabular_regression", ["amount"]
    cfg["data"]["eval_fraction"] = 0  # every row in the training split, so one note names both cells
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    code = main(["validate", str(tmp_path / "c.yaml")])
    output = "".join(capsys.readouterr())
    assert code == 0, output
    assert "column 'spend' holds numbers and 2 missing-value marker(s) ('?', '-') at rows 1, 6" in output


def test_numeric_target_of_regression_is_not_a_marker_hole(tmp_path, capsys):
    frame = churn_frame().drop(columns=["churned"])
    frame["amount"] = (frame["spend"] * 2).astype(object)
    frame.loc[3, "amount"] = "?"
    frame.to_csv(tmp_path / "r.csv", index=False)
    cfg = config(tmp_path / "r.csv", tmp_path / "run")
    cfg["task"], cfg["params"]["target_columns"] = "tabular_regression", ["amount"]
    (tmp_path / "c.yaml").write_text(json.dumps(cfg))
    code = main(["validate", str(tmp_path / "c.yaml")])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "target 'amount' must be numeric for regression; non-numbers at row 4: '?'" in err
