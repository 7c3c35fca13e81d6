"""Read sentences given as a list of words and a list of per-word tags (token classification's rows).

Cells are lists (JSONL, Parquet), list text in a CSV cell (``["EU", "rejects"]`` or Python's ``['EU', 'rejects']``)
or come from a CoNLL file (``data/conll.py``). Every message names the split, the column and the 1-based rows.
"""

from __future__ import annotations

import ast
import json
import re

import numpy as np
import pandas as pd

from trainforge.data.labels import Problems, _describe, is_missing, of_the_data, rows
from trainforge.errors import DataError
from trainforge.metrics.tagging import OUTSIDE

Split = tuple[str, pd.DataFrame, str]  # (split name, rows, origin), as Splits.present() gives them

WORD = re.compile(r"\w+(?:[-'’.&]\w+)*|[^\w\s]")  # words (U.S, don't, 1996-08-22) and single punctuation marks


def read_sentences(present: list[Split], columns: dict[str, str]) -> list[Split]:
    """Every split's sentences as clean lists (words: text; tags: names or ids); the splits are only read.

    Args:
        present: ``(split, rows, origin)`` of every split (``Splits.present()``).
        columns: ``data.columns``, to name the user's columns in messages.

    Returns:
        ``(split, sentences, origin)``: frames with ``tokens`` and ``tags`` list columns and the splits' index.

    Raises:
        DataError: Every problem of every split in one message: cells that are not lists (or are missing), empty
            lists, items that are no word or tag, rows with a different number of tags than words.
    """
    problems, out = Problems(), []
    for split, frame, origin in present:
        words = _lists(frame, "tokens", origin, columns, problems, as_word)
        tags = _lists(frame, "tags", origin, columns, problems, _as_tag)
        if words is None or tags is None:
            continue
        longer = [(i, len(w), len(t)) for i, w, t in zip(frame.index, words, tags, strict=True) if len(w) != len(t)]
        if longer:
            shown = ", ".join(f"row {i + 1}: {w} words, {t} tags" for i, w, t in longer[:5])
            problems.add(
                f"{origin}: {len(longer)} row(s) hold a different number of tags than words ({shown}); every word "
                "needs exactly one tag"
            )
        sentences = pd.DataFrame({"tokens": pd.Series(words, frame.index), "tags": pd.Series(tags, frame.index)})
        out.append((split, sentences, origin))
    problems.raise_if_any()
    return out


def name_tags(sentences: list[Split], label_names: list[str] | None) -> bool:
    """Replace integer tag ids by ``label_names`` in ``read_sentences``' frames; True when the tags were ids.

    Raises:
        DataError: Ids without ``label_names`` or out of its range, names with ``label_names``, or both mixed.
    """
    ids = all(isinstance(t, int) for _, frame, _ in sentences for tags in frame["tags"] for t in tags)
    for _, frame, origin in sentences:
        if not ids:
            _refuse_ids(frame, origin)
        frame["tags"] = [_named(tags, ids, label_names, origin, i) for i, tags in frame["tags"].items()]
    return ids


def tag_order(tag: str) -> tuple[int, str, str]:
    """Sort key of a tag set: O first, then by entity type, B- before I- (E-, S-), so id2label reads well."""
    if tag == OUTSIDE:
        return (0, "", "")
    prefix, _, kind = tag.partition("-")
    return (1, kind, prefix) if kind and len(prefix) == 1 else (1, tag, "")


def as_list(value) -> list | None:
    """A cell as a list: a list/array, or list text (``["a", "b"]`` or ``['a', 'b']``); None when it is not one."""
    if isinstance(value, list | tuple | np.ndarray):
        return list(value)
    if isinstance(value, str) and value.strip().startswith("["):
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            try:
                parsed = ast.literal_eval(value.strip())
            except (ValueError, SyntaxError, MemoryError, RecursionError):
                return None
        return list(parsed) if isinstance(parsed, list | tuple) else None
    return None


def as_word(value) -> str | None:
    """A word as text (a whole number written as one is its digits); None for anything else or a blank."""
    if isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_):
        return str(value)
    return value if isinstance(value, str) and value.strip() else None


def words_and_spans(value) -> tuple[list[str], list[tuple[int, int]], str] | None:
    """A predict input as words, their character spans (end exclusive) and the text they are spans of.

    A list of words (or list text) is joined by single spaces into the text; any other text is split into words
    and punctuation marks (``WORD``). None when the value holds no word.
    """
    words = as_list(value)
    if words and all(as_word(word) is not None for word in words):
        clean = [str(as_word(word)) for word in words]
        starts = np.cumsum([0] + [len(word) + 1 for word in clean[:-1]])
        return clean, [(int(at), int(at) + len(word)) for at, word in zip(starts, clean, strict=True)], " ".join(clean)
    if isinstance(value, str) and (matches := list(WORD.finditer(value))):
        return [m.group() for m in matches], [m.span() for m in matches], value
    return None


def shown(value) -> str:
    """A cell or item in the user's terms for messages: ``nothing``, a blank string, or its kind and a preview."""
    if isinstance(value, str) and not value.strip():
        return f"a blank string {value!r}"
    return "nothing" if not isinstance(value, list | tuple | np.ndarray) and is_missing(value) else _describe(value)


def _as_tag(value) -> str | int | None:
    """A tag: a name (trimmed) or an integer id (digits count as an id); None for anything else."""
    if isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_):
        return int(value)
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return int(value)
    if isinstance(value, str) and value.strip():
        return int(value) if value.strip().isdigit() else value.strip()
    return None


def _lists(frame: pd.DataFrame, column: str, origin: str, columns: dict, problems: Problems, item) -> list | None:
    """The cells of ``column`` as lists of clean items, or None after recording every bad row."""
    where = of_the_data(column, columns.get(column, column))
    out, bad, empty, items = [], [], [], []
    for i, value in frame[column].items():
        cell = as_list(value)
        if cell is None:
            bad.append(i)
        elif not cell:
            empty.append(i)
        elif None in (clean := [item(v) for v in cell]):
            items.append((i, cell[clean.index(None)]))
        else:
            out.append(clean)
    if bad:
        problems.add(
            f"{origin}: the {column} column must hold a list in every row; {len(bad)} row(s) do not, first: "
            f"{rows(bad)} (row {bad[0] + 1} holds {shown(frame[column][bad[0]])}){where}. Write a list such as "
            "['EU', 'rejects', 'German'] (JSON lists in JSONL, Python/JSON list text in a CSV cell)."
        )
    if empty:
        problems.add(f"{origin}: the {column} column holds an empty list in {rows(empty)}{where}; drop those rows")
    if items:
        what = "a non-empty string (a word)" if column == "tokens" else "a tag name or an integer id"
        problems.add(
            f"{origin}: every item of a {column} list must be {what}; {rows([i for i, _ in items])} hold "
            f"others (row {items[0][0] + 1}: {shown(items[0][1])}){where}"
        )
    return None if bad or empty or items else out


def _refuse_ids(frame: pd.DataFrame, origin: str) -> None:
    """Tags that mix names and integer ids cannot be read either way.

    Raises:
        DataError: Naming the rows holding ids, when other tags are names.
    """
    mixed = [i for i, tags in frame["tags"].items() if any(isinstance(t, int) for t in tags)]
    if mixed:
        raise DataError(
            f"{origin}: the tags mix names and integer ids (ids in {rows(mixed)}, e.g. row {mixed[0] + 1}: "
            f"{frame['tags'][mixed[0]][:8]}); write every tag as a name, or every tag as an id with "
            "params.label_names"
        )


def _named(tags: list, ids: bool, label_names: list[str] | None, origin: str, row) -> list[str]:
    """One row's tags as names: ids through ``label_names``, names as written."""
    if not ids:
        if label_names:
            raise DataError(
                f"{origin}: params.label_names names integer tag ids, but the tags are names (row {row + 1}: "
                f"{tags[:5]}); remove params.label_names"
            )
        return tags
    if not label_names:
        raise DataError(
            f"{origin}: the tags are integer ids (row {row + 1}: {tags[:8]}); name them with params.label_names, "
            "e.g. [O, B-PER, I-PER, B-ORG, I-ORG, B-LOC, I-LOC, B-MISC, I-MISC] for CoNLL-2003's ner_tags"
        )
    if out_of_range := sorted({t for t in tags if not 0 <= t < len(label_names)}):
        raise DataError(
            f"{origin}: row {row + 1} holds tag ids {out_of_range[:5]}, but params.label_names names "
            f"{len(label_names)} tags (ids 0..{len(label_names) - 1})"
        )
    return [label_names[t] for t in tags]
