"""SQuAD-shaped answers: read each cell, check that every ``answer_start`` points at its answer text.

A cell is ``{"text": [...], "answer_start": [...]}`` (the SQuAD / Hugging Face ``datasets`` shape): a mapping in
JSON Lines, Parquet or a saved dataset, JSON or a Python literal in a CSV cell (as pandas writes a dict). One answer
may be given without lists (``{"text": "Denver", "answer_start": 12}``). An unanswerable question (SQuAD 2.0) has
empty lists, or the reference's ``{"text": [""], "answer_start": [-1]}``.

Messages name the origin and 1-based data rows, as the other data checks do.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from trainforge.data.labels import of_the_data


@dataclass
class AnswerProblems:
    """Rows of one split grouped by what is wrong with their answers, each with an example."""

    kinds: dict[str, list[tuple[int, str]]] = field(default_factory=dict)

    def add(self, kind: str, row: int, example: str) -> None:
        """Record that ``row`` (0-based index of the frame) has the problem ``kind``, shown by ``example``."""
        self.kinds.setdefault(kind, []).append((row, example))

    def messages(self, origin: str, file_column: str) -> list[str]:
        """One message per kind: how many rows, the first five with their example, and the fix."""
        out = []
        where = of_the_data("answers", file_column)
        for kind, found in self.kinds.items():
            shown = "; ".join(f"row {row + 1}: {example}" for row, example in found[:5])
            more = f" (and {len(found) - 5} more)" if len(found) > 5 else ""
            out.append(f"{origin}: {kind} in {len(found)} row(s){where}: {shown}{more}. {_FIXES[kind]}")
        return out


_FIXES = {
    "answers that are not a {text, answer_start} object": (
        'Write each answer as {"text": ["..."], "answer_start": [N]} (JSON in a CSV cell), or check that '
        "data.columns.answers names the answers column"
    ),
    "answers without a 'text' or 'answer_start' key": (
        'Each answer needs both keys: {"text": [...], "answer_start": [...]}'
    ),
    "answers whose text and answer_start lists differ in length": (
        "Give one answer_start (character offset) per answer text"
    ),
    "answer texts that are not strings": "Write each answer text as a string",
    "answer_start values that are not whole numbers >= 0": (
        "answer_start is the character offset of the answer in the context (0 = its first character); an "
        'unanswerable question has empty lists: {"text": [], "answer_start": []}'
    ),
    "empty answer texts": 'Give the answer text, or mark the question unanswerable: {"text": [], "answer_start": []}',
    "answer_start values that do not point at their answer text": (
        "answer_start must be the character offset where the answer text starts in the context, so that "
        "context[answer_start : answer_start + len(text)] == text; fix those offsets (0-based, in characters)"
    ),
}


def read_answers(frame: pd.DataFrame, origin: str, file_column: str) -> tuple[pd.Series, list[str]]:
    """Every answers cell of one split read into ``{"text": [...], "answer_start": [...]}``, and the problems.

    Args:
        frame: The split with ``context`` (already checked to hold text) and ``answers`` columns.
        origin: The split's file or name, for messages.
        file_column: The user's name of the answers column.

    Returns:
        The read cells (same index as ``frame``; unanswerable questions hold empty lists) and one message per
        kind of problem, naming the rows (empty when every cell is fine).
    """
    problems = AnswerProblems()
    read = {}
    for index, cell, context in zip(frame.index, frame["answers"], frame["context"], strict=True):
        answer = _read_cell(cell, problems, index)
        if answer is not None and _check_offsets(answer, context, problems, index):
            read[index] = answer
    return pd.Series(read, index=frame.index, dtype=object), problems.messages(origin, file_column)


def _read_cell(cell, problems: AnswerProblems, row: int) -> dict | None:
    """One cell as ``{"text": list[str], "answer_start": list[int]}``, or None with its problem recorded."""
    value = _parsed(cell)
    if not isinstance(value, Mapping):
        problems.add("answers that are not a {text, answer_start} object", row, _preview(cell))
        return None
    if "text" not in value or "answer_start" not in value:
        keys = ", ".join(map(repr, value)) or "none"
        problems.add("answers without a 'text' or 'answer_start' key", row, f"keys {keys}")
        return None
    texts, starts = _as_list(value["text"]), _as_list(value["answer_start"])
    if len(texts) != len(starts):
        problems.add(
            "answers whose text and answer_start lists differ in length",
            row,
            f"{len(texts)} text(s), {len(starts)} answer_start(s)",
        )
        return None
    if not all(isinstance(t, str) for t in texts):
        problems.add("answer texts that are not strings", row, _preview(value["text"]))
        return None
    if texts == [""] and _whole(starts[0]) == -1:  # the reference's spelling of "unanswerable"
        return {"text": [], "answer_start": []}
    whole = [_whole(s) for s in starts]
    if any(s is None or s < 0 for s in whole):
        problems.add("answer_start values that are not whole numbers >= 0", row, _preview(value["answer_start"]))
        return None
    if any(not t for t in texts):
        problems.add("empty answer texts", row, _preview(value["text"]))
        return None
    return {"text": texts, "answer_start": [int(s) for s in whole if s is not None]}


def _check_offsets(answer: dict, context: str, problems: AnswerProblems, row: int) -> bool:
    """Whether every answer text is found at its offset; the first that is not is recorded with where it occurs."""
    for text, start in zip(answer["text"], answer["answer_start"], strict=True):
        if context[start : start + len(text)] == text:
            continue
        found = context.find(text)
        where = f"it occurs at {found}" if found >= 0 else "it does not occur in the context"
        reads = context[start : start + len(text)]
        problems.add(
            "answer_start values that do not point at their answer text",
            row,
            f"{text!r} at {start} reads {reads!r} ({where})",
        )
        return False
    return True


def _parsed(cell):
    """A text cell read as JSON, else as a Python literal (pandas writes dicts that way); other cells as they are."""
    if not isinstance(cell, str):
        return cell
    try:
        return json.loads(cell)
    except json.JSONDecodeError:
        try:
            return ast.literal_eval(cell.strip())
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            return cell


def _as_list(value) -> list:
    """A list, tuple or array as a list of Python values; anything else as a one-element list."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, list | tuple):
        return list(value)
    return [value.item() if isinstance(value, np.generic) else value]


def _whole(value) -> int | None:
    """An integer (or a float holding one, as pandas reads a column with gaps); None for anything else."""
    if isinstance(value, bool | np.bool_):
        return None
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return int(value)
    return None


def _preview(value) -> str:
    text = repr(value.tolist() if isinstance(value, np.ndarray) else value)
    return text if len(text) <= 60 else text[:57] + "..."
