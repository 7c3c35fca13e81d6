"""Why a JSON or JSON-lines data file is not a table of records: the one sentence a DataError says.

Split from ``data/loading.py``: the readers call ``json_problem`` once pandas could not read a file.
"""

from __future__ import annotations

import json
from pathlib import Path

# The head read to sniff encoding, delimiter and JSON shape (data/loading.py too): bounded, whatever the file's size.
HEAD_BYTES = 1 << 16

TABLE_HINT = "write an array of objects ([{...}, {...}]) or JSON lines (one object per line)"
_KINDS = ((bool, "a boolean"), (int | float, "a number"), (str, "a string"), (list, "a list"), (dict, "an object"))


def _json_kind(value) -> str:
    """A JSON value's kind in the user's terms: an object, a list, a string, a number, a boolean, null."""
    return next((kind for types, kind in _KINDS if isinstance(value, types)), "null")


def _example_record(record: dict | None) -> str:
    """``{"review": ..., "sentiment": ...}``: the shape of a good record (the file's own keys where it has one)."""
    keys = list(record)[:3] if record else ["text", "label"]
    more = ", ..." if len(record or ()) > 3 else ""
    return "{" + ", ".join(f"{json.dumps(str(key))}: ..." for key in keys) + more + "}"


def json_problem(path: Path, fmt: str, encoding: str = "utf-8") -> str | None:
    """Why a JSON / JSON Lines file is not a table of records, naming the line or element; None when not found.

    The shape is the file's, whatever its extension: an array (first character ``[``), one JSON value that is not
    a table (a string, a number, an object spread over several lines), or one record per line.
    """
    with path.open(encoding=encoding, errors="replace") as handle:
        head = handle.read(HEAD_BYTES)
        complete = not handle.read(1)
    if head.lstrip().startswith("["):
        return _bad_json_element(path, fmt, encoding)
    if complete:
        try:
            value = json.loads(head)
        except json.JSONDecodeError:
            pass  # several lines (JSON Lines) or invalid JSON: named line by line below
        else:
            preview = json.dumps(value, ensure_ascii=False)
            if not isinstance(value, dict):
                return (
                    f"{path} holds a single JSON value, {_json_kind(value)} ({preview[:80]}), not a table of "
                    f"records: {TABLE_HINT}"
                )
            lines = sum(1 for line in head.splitlines() if line.strip())
            if lines > 1:
                return (
                    f"{path} holds one JSON object spread over {lines} lines, not a table of records: "
                    f"{TABLE_HINT}, such as {_example_record(value)}"
                )
            return None
    return _bad_json_line(path, fmt, encoding)


def _bad_json_element(path: Path, fmt: str, encoding: str = "utf-8") -> str | None:
    """For a JSON array, name the first element that is not an object (1-based), or where the JSON is invalid."""
    with path.open(encoding=encoding, errors="replace") as handle:
        text = handle.read()
    try:
        records = json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data":  # more after the first value: JSON Lines whose first line is not an object?
            first = next((line for line in text.splitlines() if line.strip()), "")
            try:
                json.loads(first)
            except json.JSONDecodeError:
                return (
                    f"could not parse {path} as {fmt.upper()}: the JSON array ends before line {exc.lineno}, "
                    f"column {exc.colno}, where more follows; {TABLE_HINT}"
                )
            return _bad_json_line(path, fmt, encoding)
        where = f"line {exc.lineno}, column {exc.colno}"
        return f"could not parse {path} as {fmt.upper()}: not valid JSON at {where} ({exc.msg})"
    if not isinstance(records, list):
        return None
    example = next((record for record in records if isinstance(record, dict)), None)
    for number, record in enumerate(records, start=1):
        if not isinstance(record, dict):
            preview = json.dumps(record, ensure_ascii=False)[:80]
            return (
                f"could not parse {path} as {fmt.upper()}: element {number} of the array (counting from 1) is not a "
                f"JSON object: {preview} is {_json_kind(record)}. Every element must be one record, an object such "
                f"as {_example_record(example)}; fix or remove element {number}."
            )
    return None


def _bad_json_line(path: Path, fmt: str = "jsonl", encoding: str = "utf-8") -> str | None:
    """For one-record-per-line files, name the first line that is not a JSON object (pandas gives a byte offset)."""
    example = None
    with path.open(encoding=encoding, errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"could not parse {path} as {fmt.upper()}: line {number}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                return f"{where} is not valid JSON ({exc.msg}): {line.strip()[:80]!r}"
            if not isinstance(record, dict):
                return (
                    f"{where} is not a JSON object: {line.strip()[:80]!r} is {_json_kind(record)}. Every line must "
                    f"hold one record, an object such as {_example_record(example)}; fix or remove line {number}."
                )
            example = example or record
    return None
