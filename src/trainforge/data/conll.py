"""Read CoNLL-style files (one ``token TAG`` line per word, a blank line between sentences) into a table.

The layout of the CoNLL-2003 shared task and of most NER corpora: whitespace-separated fields, the word first and
its tag last (``EU NNP B-NP B-ORG`` and ``EU B-ORG`` are both read as word ``EU``, tag ``B-ORG``). ``-DOCSTART-``
lines (document boundaries) are dropped, as every CoNLL reader does. Each sentence becomes one row of the frame
with list columns ``tokens`` and ``tags``, the layout the ``token_classification`` task reads.
"""

from __future__ import annotations

import codecs
from pathlib import Path

import pandas as pd

from trainforge.errors import DataError

DOCSTART = "-DOCSTART-"
EXAMPLE = "EU B-ORG"
_READ_AS = "(Read as CoNLL because of its .conll/.txt extension or data.format: set data.format for another format.)"


def read_conll(path: Path, max_rows: int | None = None) -> pd.DataFrame:
    """One row per sentence of the CoNLL file ``path``: columns ``tokens`` and ``tags`` (lists of strings).

    Args:
        path: The file: UTF-8 text (a byte-order mark is skipped), one ``word ... TAG`` line per word, blank lines
            between sentences. Every non-blank line holds the same number of fields (2 or more).
        max_rows: Read only the first N sentences (streaming), for checks with bounded memory.

    Returns:
        The sentences in file order, ``-DOCSTART-`` lines and empty sentences left out.

    Raises:
        DataError: The file is missing or not UTF-8, holds no sentence, or a line has one field or a different
            number of fields than the file's first line (naming the file, the line number and the line).
    """
    if not path.is_file():
        raise DataError(f"data file not found: {path}")
    sentences: list[tuple[list[str], list[str]]] = []
    tokens: list[str] = []
    tags: list[str] = []
    width: tuple[int, int] | None = None  # (fields, line number) of the first word line
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            line = _decoded(path, number, raw.removeprefix(codecs.BOM_UTF8) if number == 1 else raw)
            fields = line.split()
            if not fields or fields[0] == DOCSTART:
                if tokens:
                    sentences.append((tokens, tags))
                    tokens, tags = [], []
                    if max_rows is not None and len(sentences) >= max_rows:
                        break
                continue
            width = width or (len(fields), number)
            _check_fields(path, number, line, fields, width)
            tokens.append(fields[0])
            tags.append(fields[-1])
    if tokens and (max_rows is None or len(sentences) < max_rows):
        sentences.append((tokens, tags))
    if not sentences:
        raise DataError(
            f"{path} holds no sentence: a CoNLL file has one 'word TAG' line per word (e.g. {EXAMPLE!r}) and a blank "
            "line between sentences"
        )
    return pd.DataFrame({"tokens": [s[0] for s in sentences], "tags": [s[1] for s in sentences]})


def _decoded(path: Path, number: int, raw: bytes) -> str:
    """One line as text; line by line, so that a byte that is not UTF-8 is named with its line."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path}: line {number} is not UTF-8 text (byte 0x{raw[exc.start]:02x}); re-save the file as UTF-8"
        ) from None


def _check_fields(path: Path, number: int, line: str, fields: list[str], width: tuple[int, int]) -> None:
    """A word line needs a word and a tag, and as many fields as the file's first word line."""
    shown = line.rstrip("\r\n")[:80]
    if len(fields) < 2:
        raise DataError(
            f"{path}: line {number} ({shown!r}) holds one field; a CoNLL line is a word and its tag separated by a "
            f"space or tab (e.g. {EXAMPLE!r}), and sentences are separated by blank lines. {_READ_AS}"
        )
    if len(fields) != width[0]:
        raise DataError(
            f"{path}: line {number} ({shown!r}) holds {len(fields)} fields, but line {width[1]} holds {width[0]}: "
            "every word line needs the same columns (word first, tag last), and a word containing a space reads as "
            f"two fields: fix or remove that line. {_READ_AS}"
        )
