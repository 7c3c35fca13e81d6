"""Label and row checks shared by tasks that read class labels or targets from a column.

Every function names the origin (file or split) and the 1-based data rows at fault, so messages point at the
user's file.
"""

from __future__ import annotations

import ast
import json

import numpy as np
import pandas as pd

from trainforge.errors import DataError


def require_no_missing(frame: pd.DataFrame, column: str, origin: str) -> None:
    """Fail naming the rows where ``column`` is empty (None, NaN or blank text)."""
    missing = frame[column].map(is_missing)
    if missing.any():
        raise DataError(
            f"{origin}: the {column} column is empty in {int(missing.sum())} row(s), "
            f"first: {rows(frame.index[missing])}. "
            "Fill or drop those rows."
        )


def require_text(frame: pd.DataFrame, column: str, origin: str, file_column: str | None = None) -> None:
    """Fail naming the rows where ``column`` holds no non-empty string.

    Empty cells and values of another type (a JSON object, a list, a number) are refused: the latter would
    otherwise be read as their Python repr. One check for training and predict, so both refuse the same rows.

    Args:
        frame: The rows; messages name ``index + 1`` (1-based data rows of the file).
        column: The column to check, as named in ``frame``.
        origin: File, split or input named in the message.
        file_column: The user's name of the column, when ``frame`` renamed it.

    Raises:
        DataError: Some rows hold no non-empty string (every kind of problem in one message).
    """
    values = frame[column]
    empty = values.map(lambda value: value is pd.NA or is_missing(value))
    other = ~empty & ~values.map(lambda value: isinstance(value, str))
    if not (empty.any() or other.any()):
        return
    problems, fixes = [], []
    if empty.any():
        problems.append(
            f"the {column} column is empty in {int(empty.sum())} row(s), first: {rows(values.index[empty])}"
        )
        fixes.append("fill or drop the empty rows")
    if other.any():
        wrong = values[other]
        problems.append(
            f"the {column} column holds values that are not text in {len(wrong)} row(s), first: {rows(wrong.index)} "
            f"(row {int(wrong.index[0]) + 1} holds {_describe(wrong.iloc[0])})"
        )
        fixes.append(
            "write the other values as plain text (or check that data.columns.text names the column of texts)"
        )
    where = f" (column {file_column!r} of the data)" if file_column and file_column != column else ""
    raise DataError(
        f"{origin}: {'; and '.join(problems)}. Every row needs a non-empty string{where}: {', and '.join(fixes)}."
    )


def _describe(value) -> str:
    """A value's kind in the user's terms, with a short preview."""
    if isinstance(value, dict):
        kind = "a JSON object"
    elif isinstance(value, list | tuple | np.ndarray):
        kind = "a list"
    elif isinstance(value, bool | np.bool_):
        kind = "a boolean"
    elif isinstance(value, int | float | np.number):
        kind = "a number"
    else:
        kind = f"a {type(value).__name__}"
    # Python values, so that the preview reads as the file does (42, not np.int64(42)).
    preview = repr(value.tolist() if isinstance(value, np.ndarray | np.generic) else value)
    return f"{kind}: {preview[:60]}{'...' if len(preview) > 60 else ''}"


def is_missing(value) -> bool:
    """None, NaN or blank text (a list, even empty, is a value)."""
    if isinstance(value, list | tuple | np.ndarray):
        return False
    return (
        value is None
        or (isinstance(value, float) and np.isnan(value))
        or (isinstance(value, str) and not value.strip())
    )


def is_list_like(value) -> bool:
    """A list/array, or text that looks like one (``["a", "b"]``)."""
    return isinstance(value, list | tuple | np.ndarray) or (isinstance(value, str) and value.strip().startswith("["))


def parse_labels(value, delimiter: str | None, origin: str, row) -> list[str]:
    """The sorted label names of one multi-label cell: a list, JSON/Python list text, or delimited text."""
    if isinstance(value, str) and value.strip().startswith("["):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            try:
                value = ast.literal_eval(value)
            except (ValueError, SyntaxError):
                raise DataError(f"{origin}: row {row + 1}: cannot read the label list {value!r}") from None
    if isinstance(value, list | tuple | np.ndarray):
        return sorted({label_text(v) for v in value})
    text = label_text(value)
    return sorted({part.strip() for part in text.split(delimiter)} - {""}) if delimiter else [text]


def normalise_single(labels: pd.Series, origin: str) -> pd.Series:
    """Single-label cells as label text; list-valued cells are an error here."""
    lists = labels.map(is_list_like)
    if lists.any():
        raise DataError(
            f"{origin}: list-valued labels at {rows(labels.index[lists])} but params.multi_label is false; "
            "set params.multi_label: true"
        )
    return labels.map(label_text)


def label_text(value) -> str:
    """Integers stay integers ('1', not '1.0') even when pandas read the column as float."""
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value).strip()


def label_set(labels: pd.Series, multi: bool) -> set[str]:
    """Every label name that occurs in ``labels``."""
    return {name for value in labels for name in value} if multi else set(labels)


def ordered_names(seen: set[str], label_names: list[str] | None) -> list[str]:
    """Class order of the model head."""
    """Integer labels sort numerically (and may be renamed by params.label_names); names sort alphabetically."""
    if all(name.lstrip("-").isdigit() for name in seen):
        ids = sorted(int(name) for name in seen)
        if label_names is not None:
            out_of_range = [i for i in ids if not 0 <= i < len(label_names)]
            if out_of_range:
                raise DataError(f"params.label_names has {len(label_names)} names, but labels include {out_of_range}")
            return [str(i) for i in range(len(label_names))]
        return [str(i) for i in ids]
    if label_names is not None:
        raise DataError("params.label_names names integer labels 0..K-1, but the labels are already names")
    return sorted(seen)


def rows(index) -> str:
    """``rows 3, 7, ...``: 1-based data rows for messages (first five)."""
    numbers = [int(i) + 1 for i in list(index)[:5]]
    more = " ..." if len(index) > 5 else ""
    return "rows " + ", ".join(map(str, numbers)) + more
