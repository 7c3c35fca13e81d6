"""Label and row checks shared by tasks that read class labels or targets from a column.

Every function names the origin (file or split) and the 1-based data rows at fault, so messages point at the
user's file.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import pandas as pd

from trainforge.errors import DataError


class Problems:
    """Every data problem found in a pass over the splits, raised together as one ``DataError``.

    Checks that stop at their first problem are run through :meth:`check`, so one run reports an empty text at
    row 5 *and* an empty label at row 9 instead of one of them per attempt.
    """

    def __init__(self) -> None:
        self.messages: list[str] = []

    def add(self, message: str) -> None:
        """Record one problem (its message names the origin, column and rows)."""
        if message not in self.messages:
            self.messages.append(message)

    def check(self, check: Callable[..., object], *args, **kwargs) -> bool:
        """Run ``check``; a ``DataError`` it raises is recorded instead of raised. True when it passed.

        Only ``DataError`` is collected: it is the checks' own report of bad data. Anything else is a bug and
        propagates.
        """
        try:
            check(*args, **kwargs)
        except DataError as exc:
            self.add(str(exc))
            return False
        return True

    def raise_if_any(self) -> None:
        """Raise the problems found so far: one as it is, several as one numbered list.

        Raises:
            DataError: At least one problem was recorded.
        """
        if len(self.messages) == 1:
            raise DataError(self.messages[0])
        if self.messages:
            listing = "\n".join(f"  {i}. {message}" for i, message in enumerate(self.messages, start=1))
            raise DataError(f"{len(self.messages)} problems with the data (fix them all before training):\n{listing}")


def require_no_missing(frame: pd.DataFrame, column: str, origin: str, file_column: str | None = None) -> None:
    """Fail naming the rows where ``column`` is empty (None, NaN or blank text).

    Args:
        frame: The rows; messages name ``index + 1`` (1-based data rows of the file).
        column: The column to check, as named in ``frame``.
        origin: File, split or input named in the message.
        file_column: The user's name of the column, when ``frame`` renamed it.

    Raises:
        DataError: Some rows are empty (naming how many and the first of them).
    """
    missing = frame[column].map(is_missing)
    if missing.any():
        raise DataError(
            f"{origin}: the {column} column is empty in {int(missing.sum())} row(s), "
            f"first: {rows(frame.index[missing])}{of_the_data(column, file_column)}. "
            "Fill or drop those rows."
        )


def finite_numbers(values: pd.Series, what: str, origin: str, where: str = "") -> pd.Series:
    """``values`` as floats, or an error naming the rows that hold no number and those that are not finite.

    For regression targets: text is "not a number", an infinity (``inf``, ``-Infinity``) is "not finite". Values
    are shown as the file has them (``-inf``, ``'high'``), not as numpy reprs. Empty cells are the caller's check
    (``require_no_missing``); one left here counts as no number.

    Args:
        values: One split's cells.
        what: The column in the user's terms (``target 'price'``, ``the target column``).
        origin: File, split or input named in the message.
        where: Appended to the message, e.g. ``of_the_data(...)``.

    Raises:
        DataError: Some cells hold no finite number (both kinds of problem in one message).
    """
    numbers = pd.to_numeric(values, errors="coerce").astype(float)
    text = numbers.isna()
    infinite = ~text & ~np.isfinite(numbers)
    if not (text.any() or infinite.any()):
        return numbers
    problems = []
    if text.any():
        problems.append(f"must be numeric for regression; non-numbers at {_examples(values, text)}")
    if infinite.any():
        problems.append(f"values that are not finite at {_examples(values, infinite)}")
    if not text.any():
        problems[0] = f"must hold finite numbers for regression; {problems[0]}"
    raise DataError(
        f"{origin}: {what} {'; and '.join(problems)}{where}. Regression needs a finite number in every row: fix or "
        "drop those rows."
    )


def _examples(values: pd.Series, bad: pd.Series) -> str:
    """``row 4: 'high', row 9: -inf``: the first five bad cells as the file has them (1-based data rows)."""
    shown = [f"row {int(i) + 1}: {_shown(values.loc[i])}" for i in list(values.index[bad])[:5]]
    more = f" (and {int(bad.sum()) - 5} more)" if bad.sum() > 5 else ""
    return ", ".join(shown) + more


def _shown(value) -> str:
    """A cell as Python shows a plain value: ``-inf`` and ``42``, not ``np.float64(-inf)``."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def of_the_data(column: str, file_column: str | None) -> str:
    """`` (column 'sentiment' of the data)`` when the user's name differs from the task's, else nothing."""
    return f" (column {file_column!r} of the data)" if file_column and file_column != column else ""


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
        # Training renamed the user's column (file_column) by data.columns; predict reads the column as named.
        mapped = f"data.columns.{column} names" if file_column else "this is"
        fixes.append(f"write the other values as plain text (or check that {mapped} the column of texts)")
    where = of_the_data(column, file_column)
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
    """Single-label cells as the text the user wrote (spaces kept: ``read_label_names`` notes and trims them).

    Raises:
        DataError: Some cells hold lists although the task is single-label (naming the rows).
    """
    lists = labels.map(is_list_like)
    if lists.any():
        raise DataError(
            f"{origin}: list-valued labels at {rows(labels.index[lists])} but params.multi_label is false; "
            "set params.multi_label: true"
        )
    return labels.map(written_label)


def written_label(value) -> str:
    """A label cell as text, as written: strings unchanged, numbers in their shortest form.

    A float that is a whole number was a whole number in the file (pandas reads an integer column with a gap,
    or JSON's ``1.0``, as float), so it is spelled ``1``.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def label_text(value) -> str:
    """A label as trimmed text (one name of a multi-label cell)."""
    return written_label(value).strip()


def label_set(labels: pd.Series, multi: bool) -> set[str]:
    """Every label name that occurs in ``labels``."""
    return {name for value in labels for name in value} if multi else set(labels)


# A plain decimal number: digits with an optional sign and fraction (no exponent, no thousands separator).
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")
_SHOWN = 5  # label groups named in one note


def is_plain_number(text: str) -> bool:
    """``1``, ``-2``, ``1.0``, ``.5``: a number written plainly (``1e3``, ``1,000`` and ``0x1`` are not)."""
    return _PLAIN_NUMBER.fullmatch(text) is not None


def has_leading_zero(text: str) -> bool:
    """``01``, ``007``, ``-01.5``: digits before the point that start with a zero (``0`` and ``0.5`` do not)."""
    digits = text.lstrip("+-")
    return len(digits) > 1 and digits[0] == "0" and digits[1].isdigit()


@dataclass(frozen=True)
class LabelNames:
    """How the labels a user wrote become class names.

    Attributes:
        classes: Every written label (as in the file, spaces included) -> its class name.
        numeric: Every label is a plain number without leading zeros; class names are then the numbers'
            shortest spellings and sort by value.
        notes: What the reading merged or noticed, for ``validate`` and the run's events.
    """

    classes: dict[str, str]
    numeric: bool
    notes: tuple[str, ...]

    def ordered(self, names: Iterable[str]) -> list[str]:
        """Class names in the model head's order: by value for numbers, alphabetically otherwise."""
        return sorted(set(names), key=Decimal) if self.numeric else sorted(set(names))

    def value(self, name: str) -> int | float | str:
        """A class name as the value a tabular model returns: numbers for a numeric column, else the text."""
        if not self.numeric:
            return name
        number = Decimal(name)
        return int(number) if number == number.to_integral_value() else float(number)


def read_label_names(written: Iterable[str], what: str = "the label column") -> LabelNames:
    """Class names for the labels of one column, by one rule for every task that reads class labels.

    Labels are the strings the user wrote, trimmed of surrounding spaces. When every label is a plain number
    without leading zeros, spellings of one number (``1``, ``1.0``, ``+1``) are one class named by the number's
    shortest spelling (a whole number by its digits). Codes with leading zeros (``01``, ``02``, ``10``) make the
    column a column of codes: every label stays the string it is, and nothing is merged. Labels that differ only
    by case (``Billing``, ``billing``) stay separate classes, with a note naming them.

    Args:
        written: Every label as written (duplicates allowed), train and eval splits together, so that both
            read one spelling the same way.
        what: The column in the user's terms, for the notes (``the label column``, ``target 'churned'``).

    Returns:
        The mapping from written labels to class names, whether the column is numeric, and notes.
    """
    distinct = sorted(set(written))
    trimmed = {label: label.strip() for label in distinct}
    texts = sorted(set(trimmed.values()))
    notes = []
    spaced = _groups({label: text for label, text in trimmed.items()})
    if spaced:
        notes.append(
            f"{what}: spaces around labels are trimmed, so labels that differ only by them are one class: "
            f"{_listing(spaced)}"
        )
    plain = all(is_plain_number(text) for text in texts)
    numeric = plain and not any(has_leading_zero(text) for text in texts)
    if numeric:
        names = {text: _shortest_spelling(text, texts) for text in texts}
        # Only merges are worth a note: a column written 0.0/1.0 (pandas' export of whole numbers) is 0/1.
        merged = {name: spellings for name, spellings in _groups(names).items() if len(spellings) > 1}
        if merged:
            notes.append(
                f"{what} holds numbers only, so spellings of one number are one class, named by its shortest "
                f"spelling: {_listing(merged)}"
            )
    else:
        names = {text: text for text in texts}
        same_number = _groups(
            {text: str(Decimal(text).normalize()) for text in texts if is_plain_number(text)}, arrow=False
        )
        if same_number:
            notes.append(
                f"{what}: {_listing(same_number, arrow=False)} spell the same number, but the column holds codes "
                "with leading zeros, so every label is kept as written and these stay separate classes; write "
                "them one way if they are one class"
            )
    cased = _groups({name: name.casefold() for name in set(names.values())}, arrow=False)
    if cased:
        notes.append(
            f"{what}: labels {_listing(cased, arrow=False)} differ only by upper/lower case, so they are separate "
            "classes; write them one way if they are one class"
        )
    classes = {label: names[text] for label, text in trimmed.items()}
    return LabelNames(classes, numeric, tuple(notes))


def _shortest_spelling(text: str, texts: list[str]) -> str:
    """The class name of a number: a whole number's digits, else the shortest spelling the column uses for it."""
    number = Decimal(text)
    if number == number.to_integral_value():
        return str(int(number))
    return min((t for t in texts if Decimal(t) == number), key=lambda t: (len(t), t))


def _groups(names: dict[str, str], arrow: bool = True) -> dict[str, list[str]]:
    """Keys that share a value (or, with ``arrow``, a key whose value differs from it): value -> sorted keys."""
    groups: dict[str, list[str]] = {}
    for key, value in names.items():
        groups.setdefault(value, []).append(key)
    if arrow:
        return {value: sorted(keys) for value, keys in groups.items() if keys != [value]}
    return {value: sorted(keys) for value, keys in groups.items() if len(keys) > 1}


def _listing(groups: dict[str, list[str]], arrow: bool = True) -> str:
    shown = sorted(groups.items(), key=lambda item: item[1])[:_SHOWN]
    if arrow:
        parts = [f"{', '.join(map(repr, keys))} -> {value!r}" for value, keys in shown]
    else:
        parts = [" and ".join(map(repr, keys)) for _, keys in shown]
    more = f" (and {len(groups) - _SHOWN} more)" if len(groups) > _SHOWN else ""
    return "; ".join(parts) + more


def ordered_names(reading: LabelNames, seen: set[str], label_names: list[str] | None) -> list[str]:
    """Class order of the model head for the class names ``seen`` in training.

    Args:
        reading: How the column's labels were read (numbers sort by value).
        seen: The class names of the training rows.
        label_names: ``params.label_names``: names for integer labels 0..K-1 (the head then has K classes).

    Raises:
        DataError: ``label_names`` is given but the labels are not the integers it names.
    """
    names = reading.ordered(seen)
    if label_names is None:
        return names
    if not (reading.numeric and all(name.lstrip("-").isdigit() for name in names)):
        raise DataError("params.label_names names integer labels 0..K-1, but the labels are already names")
    ids = [int(name) for name in names]
    out_of_range = [i for i in ids if not 0 <= i < len(label_names)]
    if out_of_range:
        raise DataError(f"params.label_names has {len(label_names)} names, but labels include {out_of_range}")
    return [str(i) for i in range(len(label_names))]


def rows(index) -> str:
    """``rows 3, 7, ...``: 1-based data rows for messages (first five)."""
    numbers = [int(i) + 1 for i in list(index)[:5]]
    more = " ..." if len(index) > 5 else ""
    return "rows " + ", ".join(map(str, numbers)) + more


def continuous_scores(labels: Iterable, what: str = "the label column") -> str | None:
    """A sentence saying that single-label ``labels`` look like continuous scores rather than classes, else None.

    Scores: every label a plain number (codes with leading zeros are names), at least 10 different numbers, and
    more than half of the rows holding a number no other row holds: a classifier would get a class per row, with
    nothing to learn from and nothing to hold out for evaluation.

    Args:
        labels: One split's label cells, as read.
        what: The column, for the message.
    """
    texts = [written_label(value).strip() for value in labels]
    if len(texts) < 10 or not all(is_plain_number(text) and not has_leading_zero(text) for text in texts):
        return None
    counts: dict[Decimal, int] = {}
    for text in texts:  # by value: 1 and 1.0 are one number
        counts[Decimal(text)] = counts.get(Decimal(text), 0) + 1
    once = sum(1 for count in counts.values() if count == 1)
    if len(counts) < 10 or once * 2 <= len(texts):
        return None
    return (
        f"{what} holds {len(counts)} different numbers in {len(texts)} rows (e.g. {', '.join(texts[:3])}), "
        f"{once} of them in one row only: these look like scores to predict, not classes (a classifier would learn "
        "one class per row, with none to hold out for evaluation)"
    )
