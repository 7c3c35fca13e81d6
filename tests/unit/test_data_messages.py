"""Messages for data that is not a table of records, misplaced paths and bad targets: each names the file, line,
element, key or rows, and says what to do."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import trainforge
from trainforge.config.loading import read_yaml
from trainforge.config.sections import DataSection
from trainforge.data.labels import finite_numbers
from trainforge.data.loading import load_splits, read_table
from trainforge.errors import ConfigError, DataError
from trainforge.tasks.text_classification import CLASSIFICATION_COLUMNS

RECORDS = [{"review": f"text {i}", "sentiment": "ab"[i % 2]} for i in range(6)]


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def jsonl(values: list) -> str:
    return "".join(json.dumps(value) + "\n" for value in values)


def load(source, **data):
    data.setdefault("eval_fraction", None)
    data.setdefault("columns", {"text": "review", "label": "sentiment"})
    return load_splits(DataSection(source=str(source), **data), 0, None, CLASSIFICATION_COLUMNS)


# ------------------------------------------------------------------------------------------------ JSON shapes


@pytest.mark.parametrize(
    ("values", "line", "kind"),
    [
        (RECORDS[:4] + [[1, 2]], 5, "'[1, 2]' is a list"),
        (RECORDS[:2] + ["just text"] + RECORDS[2:], 3, "'\"just text\"' is a string"),
        (RECORDS[:1] + [None], 2, "'null' is null"),
        ([3] + RECORDS, 1, "'3' is a number"),  # the first record: pandas would read a column named 0
    ],
)
def test_jsonl_line_that_is_not_an_object_is_named(tmp_path, values, line, kind):
    path = write(tmp_path / "train.jsonl", jsonl(values))
    with pytest.raises(DataError) as caught:
        read_table(path)
    message = str(caught.value)
    assert f"could not parse {path} as JSONL: line {line} is not a JSON object: {kind}" in message
    assert f"fix or remove line {line}" in message
    if line > 1:
        assert '{"review": ..., "sentiment": ...}' in message  # the file's own record shape


def test_jsonl_of_lists_names_the_first_line(tmp_path):
    path = write(tmp_path / "train.jsonl", jsonl([[1, 2], [3, 4]]))  # starts like a JSON array
    with pytest.raises(DataError, match=r"train.jsonl as JSONL: line 1 is not a JSON object: '\[1, 2\]' is a list"):
        read_table(path)


@pytest.mark.parametrize(
    ("values", "element", "shown"),
    [
        (RECORDS + [3], 7, "3 is a number"),
        (RECORDS[:1] + ["x"], 2, '"x" is a string'),
        (RECORDS[:1] + [[1, 2]], 2, "[1, 2] is a list"),
        (RECORDS[:2] + [None], 3, "null is null"),
        ([1, 2, 3], 1, "1 is a number"),  # pandas would read a column named 0
        ([[1, 2], [3, 4]], 1, "[1, 2] is a list"),
    ],
)
def test_json_array_element_that_is_not_an_object_is_named(tmp_path, values, element, shown):
    path = write(tmp_path / "train.json", json.dumps(values, indent=1))
    with pytest.raises(DataError) as caught:
        read_table(path)
    message = str(caught.value)
    assert f"{path} as JSON: element {element} of the array (counting from 1) is not a JSON object: {shown}" in message
    assert f"fix or remove element {element}" in message


def test_json_array_element_is_named_in_a_sample_too(tmp_path):
    path = write(tmp_path / "train.json", json.dumps(RECORDS + [3]))
    with pytest.raises(DataError, match="element 7 of the array"):
        read_table(path, max_rows=2)


@pytest.mark.parametrize(
    ("text", "kind"),
    [('"just a string"\n', 'a string ("just a string")'), ("42\n", "a number (42)"), ("true", "a boolean (true)")],
)
def test_json_scalar_is_not_a_table(tmp_path, text, kind):
    path = write(tmp_path / "train.json", text)
    with pytest.raises(DataError) as caught:
        load(path)
    message = str(caught.value)
    assert f"{path} holds a single JSON value, {kind}, not a table of records" in message
    assert "array of objects" in message and "JSON lines" in message


def test_json_object_over_several_lines_is_not_a_table(tmp_path):
    path = write(tmp_path / "train.json", json.dumps({"review": ["a", "b"], "sentiment": ["x", "y"]}, indent=2))
    with pytest.raises(DataError, match=r"holds one JSON object spread over \d+ lines, not a table of records"):
        read_table(path)


def test_invalid_json_array_names_line_and_column(tmp_path):
    path = write(
        tmp_path / "train.json", '[\n  {"review": "a", "sentiment": "x"},\n  {"review": "b" "sentiment": "y"}\n]\n'
    )
    with pytest.raises(DataError, match=r"train.json as JSON: not valid JSON at line 3, column \d+"):
        read_table(path)


def test_tables_of_objects_still_load(tmp_path):
    expected = pd.DataFrame(RECORDS)
    array = read_table(write(tmp_path / "a.json", json.dumps(RECORDS)))
    lines = read_table(write(tmp_path / "b.jsonl", "\n" + jsonl(RECORDS)))
    as_json = read_table(write(tmp_path / "c.json", jsonl(RECORDS)))  # JSON lines in a .json file
    for frame in (array, lines, as_json):
        pd.testing.assert_frame_equal(frame, expected)
    assert len(read_table(write(tmp_path / "empty.json", "[]"))) == 0


# ------------------------------------------------------------------------------------------------ paths and keys


def test_missing_eval_split_file_is_named(tmp_path):
    pd.DataFrame(RECORDS).to_csv(tmp_path / "train.csv", index=False)
    missing = tmp_path / "eval.csv"
    with pytest.raises(DataError, match=rf"data.eval_split '{missing}' does not exist: fix the path"):
        load(tmp_path / "train.csv", eval_split=str(missing))
    (tmp_path / "folder").mkdir()
    with pytest.raises(DataError, match="is a folder; with a file as data.source, eval_split must be a file path"):
        load(tmp_path / "train.csv", eval_split=str(tmp_path / "folder"))
    with pytest.raises(DataError, match="'validation': with a file as source, eval_split must be a file path"):
        load(tmp_path / "train.csv", eval_split="validation")


@pytest.mark.parametrize(
    ("task", "columns", "said"),
    [
        ("text_classification", {"text": "review", "label": "review"}, "text and label both map to 'review'"),
        ("text_classification", {"text": "review", "label": " review "}, "text and label both map to 'review'"),
        ("llm_dpo", {"prompt": "q", "chosen": "q", "rejected": "q"}, "prompt, chosen and rejected all map to 'q'"),
    ],
)
def test_one_column_for_two_logical_columns_is_a_config_error(task, columns, said):
    from trainforge.config.loading import load_config

    config = {"task": task, "model": {"name": "m/m"}, "data": {"source": "train.csv", "columns": columns}}
    with pytest.raises(ConfigError, match=said) as caught:
        load_config(config)
    assert ("data.columns", caught.value.problems[0][1]) in caught.value.problems


def test_same_column_twice_is_reported_by_validate_for_every_task(tmp_path):
    config = {
        "task": "tabular_classification",
        "model": {"name": "auto"},
        "data": {"source": str(tmp_path / "t.csv"), "columns": {"id": "key", "sample_weight": "key"}},
        "output": {"dir": str(tmp_path / "run")},
    }
    with pytest.raises(ConfigError) as caught:
        trainforge.validate(config)
    assert caught.value.problems == [
        (
            "data.columns",
            "id and sample_weight both map to 'key', but each logical column reads a column of its own: map them to "
            "different columns of the data",
        )
    ]


def test_a_misspelled_logical_column_is_reported_once(tmp_path):
    config = {
        "task": "text_classification",
        "model": {"name": "bert-base-uncased"},
        "data": {"source": "train.csv", "columns": {"text": "review", "label": "sentiment", "txt": "review"}},
    }
    with pytest.raises(ConfigError) as caught:
        trainforge.validate(config)
    assert [key for key, _ in caught.value.problems] == ["data.columns.txt"]  # its "did you mean", not a duplicate


def test_config_path_that_is_a_folder(tmp_path):
    folder = tmp_path / "configs"
    folder.mkdir()
    write(folder / "sst2.yaml", "task: text_classification\n")
    with pytest.raises(ConfigError, match=rf"{folder} is a folder, not a config file: .*; it holds sst2.yaml"):
        read_yaml(folder)
    with pytest.raises(ConfigError, match="config file not found"):
        read_yaml(tmp_path / "nope.yaml")


def test_unknown_extension_hint_fits_the_caller(tmp_path):
    path = write(tmp_path / "inputs.dat", "review\ngood\n")
    with pytest.raises(DataError, match="or set data.format"):
        read_table(path)
    with pytest.raises(DataError) as caught:
        read_table(path, format_key=None)
    message = str(caught.value)
    assert "from its extension (.dat)" in message and ".csv, .tsv, .jsonl, .json, .parquet" in message
    assert "data.format" not in message


# ------------------------------------------------------------------------------------------------ targets


def test_finite_numbers_names_infinities_as_written():
    values = pd.Series([1.0, 2.5, -np.inf, 4.0])
    with pytest.raises(DataError) as caught:
        finite_numbers(values, "target 'y'", "t.csv")
    message = str(caught.value)
    assert "t.csv: target 'y' must hold finite numbers for regression; values that are not finite at row 3: -inf" in (
        message
    )
    assert "np.float64" not in message and "non-numbers" not in message


def test_finite_numbers_names_text_and_infinities_together():
    values = pd.Series(["1", "high", "inf", "2"], index=[10, 11, 12, 13])
    with pytest.raises(DataError) as caught:
        finite_numbers(values, "target 'y'", "t.csv")
    assert "must be numeric for regression; non-numbers at row 12: 'high'; and values that are not finite at row " in (
        str(caught.value)
    )
    assert finite_numbers(pd.Series(["1", "2.5"]), "target 'y'", "t.csv").tolist() == [1.0, 2.5]


def tabular(tmp_path: Path, targets: list, task: str = "tabular_classification") -> dict:
    frame = pd.DataFrame(
        {"x": [i * 1.5 for i in range(30)], "colour": ["ab"[i % 2] for i in range(30)], "target": targets}
    )
    frame.to_csv(tmp_path / "table.csv", index=False)
    return {
        "task": task,
        "model": {"name": "auto"},
        "data": {"source": str(tmp_path / "table.csv"), "eval_fraction": 0.2},
        "params": {"target_columns": ["target"]},
        "output": {"dir": str(tmp_path / "run")},
    }


def test_missing_tabular_target_is_reported_once_with_the_held_out_rows(tmp_path):
    targets = [None if i % 4 == 3 else "yes" if i % 3 else "no" for i in range(30)]
    with pytest.raises(DataError) as caught:
        trainforge.validate(tabular(tmp_path, targets))
    message = str(caught.value)
    assert message == (
        f"{tmp_path / 'table.csv'}: target 'target' is missing in 7 row(s), first: rows 4, 8, 12, 16, 20 .... "
        "Fill or drop those rows."
    )


def test_missing_target_of_a_separate_eval_file_is_its_own(tmp_path):
    config = tabular(tmp_path, ["yes" if i % 3 else "no" for i in range(30)])
    pd.read_csv(tmp_path / "table.csv").assign(target=[None] + ["yes"] * 29).to_csv(tmp_path / "eval.csv", index=False)
    config["data"] |= {"eval_split": str(tmp_path / "eval.csv"), "eval_fraction": None}
    with pytest.raises(DataError, match=r"eval.csv: target 'target' is missing in 1 row\(s\), first: rows 1\."):
        trainforge.validate(config)


def test_infinite_tabular_regression_target_is_not_finite(tmp_path):
    targets = [float("-inf") if i == 4 else i * 0.5 for i in range(30)]
    with pytest.raises(DataError) as caught:
        trainforge.validate(tabular(tmp_path, targets, task="tabular_regression"))
    message = str(caught.value)
    assert "table.csv: target 'target' must hold finite numbers for regression; values that are not finite at " in (
        message
    )
    assert "row 5: -inf" in message and "np.float64" not in message
    assert message.count("not finite") == 1  # the hold-out's rows are the file's: one report


def test_tabular_regression_text_target_is_reported_once(tmp_path):
    targets = ["high" if i % 5 == 0 else i * 0.5 for i in range(30)]
    with pytest.raises(DataError) as caught:
        trainforge.validate(tabular(tmp_path, targets, task="tabular_regression"))
    message = str(caught.value)
    assert "target 'target' must be numeric for regression; non-numbers at row 1: 'high', row 6: 'high'" in message
    assert "problems" not in message  # one message, not one per split
