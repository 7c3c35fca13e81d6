"""Load the configured data into pandas train/eval frames, with clear errors for every way it can be wrong.

Sources: a file (csv, tsv, jsonl, json, parquet, CoNLL text), a folder holding ``<split>.<ext>`` files, a folder
written by ``datasets``' ``save_to_disk``, or a Hub dataset id; for tasks with an image column (and image folders or
ZIPs whatever the task) the readers of ``data/images.py``. The evaluation policy is explicit: a named split, a
seeded (stratified when asked) fraction of the training rows, or none — never the training rows themselves.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import os
import re
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from trainforge.config.sections import DataSection
from trainforge.data.json_problems import HEAD_BYTES
from trainforge.data.json_problems import TABLE_HINT as _TABLE
from trainforge.data.json_problems import json_problem as _json_problem
from trainforge.data.labels import continuous_scores
from trainforge.errors import DataError

EXTENSIONS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".json": "json", ".parquet": "parquet"}
# CoNLL text (``token TAG`` lines, blank lines between sentences; data/conll.py) ships as .conll or .txt. A .txt is
# CoNLL only for a task that reads words and tags: for any other task (a text classifier's predict inputs, say) its
# format stays unknown and the message asks for one, instead of a CoNLL parse error about a file that is not CoNLL.
EXTENSIONS |= {".conll": "conll"}
_TXT_FORMAT: ContextVar[str | None] = ContextVar("txt_format", default=None)


def extensions() -> dict[str, str]:
    """File extension -> format, as read now (``.txt`` only inside ``txt_read_as``)."""
    txt = _TXT_FORMAT.get()
    return EXTENSIONS | ({".txt": txt} if txt else {})


@contextmanager
def txt_read_as(fmt: str | None) -> Iterator[None]:
    """Read ``.txt`` files as ``fmt`` (``conll`` for tasks whose columns are words and tags) inside the block."""
    token = _TXT_FORMAT.set(fmt)
    try:
        yield
    finally:
        _TXT_FORMAT.reset(token)


def txt_format_of(columns) -> str | None:
    """``conll`` when a task's columns include words (``kind="tokens"``), else None."""
    return "conll" if any(getattr(c, "kind", None) == "tokens" for c in columns or ()) else None


@dataclass
class Splits:
    """Training, (optional) evaluation and (optional) test rows, plus where each came from for messages.

    The test split (``data.test_split``) is never seen while training: the driver scores it once with the kept
    model and reports ``test_*`` metrics. A task's ``analyze`` checks it as it checks the eval split, and its
    ``prepare`` encodes it as it encodes the eval split (``Prepared.test``).
    """

    train: pd.DataFrame
    eval: pd.DataFrame | None
    train_origin: str
    eval_origin: str | None
    test: pd.DataFrame | None = None
    test_origin: str | None = None

    def present(self) -> list[tuple[str, pd.DataFrame, str]]:
        """``(split name, rows, origin)`` for train, then eval and test when present: what ``analyze`` checks."""
        found = [("train", self.train, self.train_origin)]
        if self.eval is not None:
            found.append(("eval", self.eval, self.eval_origin or "eval"))
        if self.test is not None:
            found.append(("test", self.test, self.test_origin or "test"))
        return found


def load_splits(
    data: DataSection, seed: int, stratify: str | None = None, columns=None, sample_rows: int | None = None
) -> Splits:
    """Load, map columns, truncate and split according to ``data``.

    Args:
        data: The validated data section.
        seed: Seed for the evaluation hold-out.
        stratify: Logical column to stratify the hold-out on (classification labels), or None.
        columns: The task's logical columns; when given, user columns are mapped and checked.
        sample_rows: Read only the first N rows of each file (streamed), for checks with bounded memory.

    Returns:
        The splits, with columns renamed to the task's logical names.

    Raises:
        DataError: For a missing path, unparseable file, missing column or empty split.
    """
    with txt_read_as(txt_format_of(columns)):
        return _load_splits(data, seed, stratify, columns, sample_rows)


def _load_splits(data: DataSection, seed: int, stratify: str | None, columns, sample_rows: int | None) -> Splits:
    from trainforge.data.columns import map_columns

    # The stratify column holds class labels: CSV/TSV read it as text, so that codes such as "01" keep the
    # spelling the user wrote (pandas would read them as the number 1) for the task's label rule.
    label_column = _file_column(stratify, columns, data) if stratify else None
    images = _reads_images(data, columns)
    if images:  # image folders, ZIPs, tables of image paths (data/images.py)
        from trainforge.data.images import read_image_splits

        train, train_origin, eval_frame, eval_origin = read_image_splits(data, columns, sample_rows, label_column)
    else:
        train, train_origin, eval_frame, eval_origin = _read_sources(data, sample_rows, label_column)
    if columns is not None:
        train = map_columns(train, columns, data.columns, train_origin)
        if eval_frame is not None:
            eval_frame = map_columns(eval_frame, columns, data.columns, eval_origin)
    if data.max_train_rows:
        train = train.iloc[: data.max_train_rows]
    _require_rows(train, train_origin)
    if eval_frame is None and data.eval_fraction:
        train, eval_frame = hold_out(train, data.eval_fraction, seed, stratify)
        eval_origin = f"{data.eval_fraction:g} of {train_origin} (seed {seed})"
        if len(eval_frame) == 0 and stratify is not None and stratify in train:
            # No class had a row to spare: when the "classes" are scores, raising eval_fraction cannot help.
            what = f"the {stratify} column ({_file_column(stratify, columns, data)!r})"
            if scores := continuous_scores(train[stratify], what):
                raise DataError(
                    f"{train_origin}: {scores}. Use a regression task (text_regression, tabular_regression) with "
                    "this column as the target, or choose a column of class names."
                )
        _require_rows(eval_frame, eval_origin, hint="raise data.eval_fraction or add rows")
        _require_rows(train, train_origin, hint="lower data.eval_fraction or add rows")
    if eval_frame is not None:
        if data.max_eval_rows:
            eval_frame = eval_frame.iloc[: data.max_eval_rows]
        _require_rows(eval_frame, eval_origin)
    test_frame, test_origin = None, None
    if data.test_split:
        if images:
            from trainforge.data.images import read_image_test

            test_frame, test_origin = read_image_test(data, columns, sample_rows, label_column)
        else:
            test_frame, test_origin = _read_test(data, sample_rows, label_column)
        if columns is not None:
            test_frame = map_columns(test_frame, columns, data.columns, test_origin)
        _require_rows(test_frame, test_origin)
    # Indexes are kept as loaded so that messages can name the offending rows of the user's file.
    eval_origin_or_none = None if eval_frame is None else eval_origin
    return Splits(train, eval_frame, train_origin, eval_origin_or_none, test_frame, test_origin)


def _reads_images(data: DataSection, columns) -> bool:
    """Whether the image readers apply: the task has an image column, or the source is an image folder or ZIP."""
    from trainforge.data.images import image_column_names, is_image_source

    return bool(image_column_names(columns, data.columns)) or is_image_source(data)


def load_sample(data: DataSection, rows: int) -> tuple[pd.DataFrame, str, int | None]:
    """The first ``rows`` training rows, where they came from, and the file's row count, with bounded memory.

    Local files are streamed (only ``rows`` rows are parsed; the count streams the bytes). A saved dataset or Hub
    dataset is read as ``load_splits`` reads it.

    Raises:
        DataError: As ``load_splits`` for a missing path or an unreadable file.
    """
    path = Path(os.path.expanduser(data.source))
    if _reads_images(data, None):  # image rows: paths and labels, read as training reads them
        from trainforge.data.images import read_image_splits

        frame, origin, _, _ = read_image_splits(data, None, rows)
        return frame, origin, len(frame) if len(frame) < rows else None
    disk = path.is_dir() and (
        data.format == "disk" or (path / "dataset_dict.json").exists() or (path / "state.json").exists()
    )
    if path.exists() and not disk and data.format != "hub":
        file = path if path.is_file() else _split_file(path, data.train_split, data.format)
        return read_table(file, data.format, max_rows=rows), str(file), count_rows(file, data.format)
    train, origin, _, _ = _read_sources(data)
    return train.head(rows), origin, len(train)


def read_table(
    path: Path,
    fmt: str = "auto",
    max_rows: int | None = None,
    text_column: str | None = None,
    format_key: str | None = "data.format",
) -> pd.DataFrame:
    """Read one local file into a DataFrame, naming the file in every error.

    Text files are read as people have them: the encoding (UTF-8 with or without a BOM, UTF-16 with a BOM, or a
    Windows-1252/latin-1 export, with a note), the delimiter of a ``.csv`` (comma, semicolon, tab or pipe, with a
    note when it is not the expected one) and the shape of a JSON file (an array or one record per line) are
    sniffed from a small head of the file. Column names are trimmed of stray spaces (with a note).

    Args:
        path: The file.
        fmt: ``auto`` (by extension) or one of csv, tsv, jsonl, json, parquet, conll (``data/conll.py``).
        max_rows: Read only the first N rows, streaming, so memory stays bounded whatever the file's size
            (a JSON array is the exception: it has to be parsed whole).
        text_column: A column of a CSV/TSV file to read as text, as written (``01`` stays ``01``); empty cells
            stay missing. Other formats keep the types they store.
        format_key: The setting that names the format when the extension does not, for the message about an
            unknown extension; None where there is no such setting (predict's inputs): the message then asks for
            a file name with a known extension.

    Raises:
        DataError: Unknown format, missing file, an encoding that cannot be read, a header naming a column twice,
            or content that does not parse (naming file and line).
    """
    if fmt == "auto":
        fmt = extensions().get(path.suffix.lower(), "")
        if not fmt:
            known = ", ".join(extensions())
            if format_key is None:
                raise DataError(
                    f"cannot tell the format of {path} from its extension ({path.suffix or 'none'}): save or rename "
                    f"it as a file ending in one of {known} (e.g. {path.stem}.csv for comma-separated text)"
                )
            raise DataError(f"cannot tell the format of {path}: use one of {known} or set {format_key}")
    if not path.is_file():
        raise DataError(f"data file not found: {path}")
    if fmt not in EXTENSIONS.values():
        raise DataError(f"data.format {fmt!r} does not apply to the file {path}")
    encoding = "utf-8"
    try:
        if fmt == "parquet":
            frame = _read_parquet(path, max_rows)
        elif fmt == "conll":
            from trainforge.data.conll import read_conll

            frame = read_conll(path, max_rows)
        else:
            head = _read_head(path)
            encoding = head.encoding
            frame = _read_text(path, fmt, max_rows, head, text_column)
    # TypeError: pandas' answer to a JSON line that is not an object.
    except (ValueError, TypeError, pd.errors.ParserError, OSError) as exc:
        if isinstance(exc, pd.errors.EmptyDataError):
            raise DataError(f"{path} is empty: it has no header and no rows") from None
        problem = _json_problem(path, fmt, encoding) if fmt in ("jsonl", "json") else None
        reason = " ".join(str(exc).split())[:300]
        raise DataError(problem or f"could not parse {path} as {fmt.upper()}: {reason}") from None
    _require_unique_columns(list(frame.columns), path)
    return _trim_column_names(frame, path)


SNIFF_ROWS = 200
DELIMITERS = {",": "commas", ";": "semicolons", "\t": "tabs", "|": "pipes"}
BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
ENCODING_NAMES = {"utf-8": "UTF-8", "utf-8-sig": "UTF-8", "utf-16": "UTF-16", "cp1252": "Windows-1252"}
RESAVE = (
    "re-save it as UTF-8 (Excel: File > Save As > 'CSV UTF-8 (Comma delimited)'; LibreOffice: Save As, tick "
    "'Edit filter settings', character set 'Unicode (UTF-8)')"
)


@dataclass(frozen=True)
class _Head:
    """The decoded start of a text file: enough to sniff its shape without reading it whole."""

    text: str
    encoding: str
    complete: bool  # the head is the whole file


def _read_head(path: Path) -> _Head:
    with path.open("rb") as handle:
        raw = handle.read(HEAD_BYTES + 1)
    complete = len(raw) <= HEAD_BYTES
    raw = raw[:HEAD_BYTES]
    encoding = _encoding_of(path, raw, complete)
    try:
        # Incremental, so that a multi-byte character cut by the head's end is not an error.
        text = codecs.getincrementaldecoder(encoding)().decode(raw, final=complete)
    except UnicodeDecodeError:
        raise _undecodable(path, encoding) from None
    return _Head(text, encoding, complete)


def _encoding_of(path: Path, raw: bytes, complete: bool) -> str:
    """UTF-8 (a BOM is stripped), UTF-16 with a BOM, or a legacy Windows export (with a note)."""
    for bom, encoding in BOMS:
        if raw.startswith(bom):
            return encoding
    if b"\x00" in raw:
        raise DataError(
            f"{path} holds NUL bytes, so it is UTF-16 text without a byte-order mark, or not a text file at all; "
            f"{RESAVE}."
        )
    try:
        codecs.getincrementaldecoder("utf-8")().decode(raw, final=complete)
    except UnicodeDecodeError:
        return _legacy_encoding(path)
    return "utf-8"


def _legacy_encoding(path: Path) -> str:
    """A file that is not UTF-8 is read as Windows-1252 (Excel's export in Western locales), with a note."""
    found = _first_non_utf8_line(path)
    if found is None:
        raise _undecodable(path, "utf-8")
    number, line, start = found
    where = f"byte 0x{line[start]:02x} on line {number}"
    try:
        line.decode("cp1252")
    except UnicodeDecodeError:
        raise DataError(f"{path} is not UTF-8 text ({where}), nor Windows-1252 (cp1252); {RESAVE}.") from None
    print(
        f"note: {path} is not UTF-8 ({where}); reading it as Windows-1252 (cp1252, which covers latin-1), the "
        f"encoding of Excel's CSV export in Western locales. If accented letters look wrong, {RESAVE}.",
        file=sys.stderr,
    )
    return "cp1252"


def _first_non_utf8_line(path: Path) -> tuple[int, bytes, int] | None:
    """Line number, bytes and offset of the first line that is not UTF-8 (streaming)."""
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as exc:
                return number, line, exc.start
    return None


def _undecodable(path: Path, encoding: str) -> DataError:
    name = ENCODING_NAMES.get(encoding, encoding)
    return DataError(
        f"{path} does not decode as {name} text throughout, although it starts as {name}: it mixes encodings or "
        f"is not a text file; {RESAVE}."
    )


def _read_text(path: Path, fmt: str, max_rows: int | None, head: _Head, text_column: str | None) -> pd.DataFrame:
    """Parse a text format; a file whose head is UTF-8 but a later line is not falls back to Windows-1252."""
    if fmt in ("json", "jsonl"):
        read = _read_json_records  # JSON keeps the spelling of strings and the type of numbers
    else:
        read = partial(_read_delimited, text_column=text_column)
    try:
        return read(path, fmt, max_rows, head)
    except UnicodeDecodeError:
        if head.encoding != "utf-8":
            raise _undecodable(path, head.encoding) from None
    head = replace(head, encoding=_legacy_encoding(path))
    try:
        return read(path, fmt, max_rows, head)
    except UnicodeDecodeError:
        raise _undecodable(path, head.encoding) from None


def _read_delimited(
    path: Path, fmt: str, max_rows: int | None, head: _Head, text_column: str | None = None
) -> pd.DataFrame:
    expected = "\t" if fmt == "tsv" else ","
    # Excel writes (and honours) a first line "sep=;" naming the delimiter; it is not the header.
    hint = re.match(r"sep=(.)\r?\n", head.text)
    sep = hint.group(1) if hint else _sniff_delimiter(head, fmt, expected)
    if sep != expected:
        because = f", as its first line 'sep={sep}' says" if hint else ""
        print(
            f"note: {path} is separated by {_named(sep)}, not {_named(expected)}{because}; reading it that way",
            file=sys.stderr,
        )
    options = {"sep": sep, "quoting": _quoting(fmt, sep), "encoding": head.encoding, "skiprows": 1 if hint else 0}
    # Checked before pandas reads the rows: it would rename a repeated name (text -> text.1) without a word.
    header = pd.read_csv(path, header=None, nrows=1, dtype=str, keep_default_na=False, **options)
    names = list(header.iloc[0]) if len(header) else []
    _require_unique_columns(names, path)
    # Matched as the header is written: a name with stray spaces is trimmed only after reading.
    as_text = {name: str for name in names if text_column is not None and str(name).strip() == text_column}
    try:
        with warnings.catch_warnings():
            # index_col=False: pandas would otherwise turn the first field of rows holding one field more than the
            # header into the row index, silently (a text "witty, was moving" read as "was moving").
            warnings.simplefilter("error", pd.errors.ParserWarning)
            return pd.read_csv(path, nrows=max_rows, dtype=as_text or None, index_col=False, **options)
    except pd.errors.ParserWarning:
        rows = _sample_rows(head, sep, _quoting(fmt, sep))  # row 0 is the header: data rows count from 1
        longer = [i for i, row in enumerate(rows) if i and len(row) > len(names)]
        where = f" (first: row{'s' if len(longer) > 1 else ''} {', '.join(map(str, longer[:5]))})" if longer else ""
        raise DataError(
            f"{path}: rows hold more fields than its header's {len(names)}{where}: a field contains the separator "
            f'({_named(sep)}). Quote such fields ("witty, moving"), or re-export the file with quoting on.'
        ) from None
    except pd.errors.ParserError as exc:
        reason = " ".join(str(exc).split())[:300]
        raise DataError(
            f"could not parse {path} as {fmt.upper()} separated by {_named(sep)}: {reason}. "
            "Quote fields that contain the separator, or re-export the file with one separator throughout."
        ) from None


def _named(sep: str) -> str:
    return DELIMITERS.get(sep, repr(sep))


_Quoting = Literal[0, 1, 2, 3]  # csv.QUOTE_MINIMAL, QUOTE_ALL, QUOTE_NONNUMERIC, QUOTE_NONE


def _quoting(fmt: str, sep: str) -> _Quoting:
    # TSV files (GLUE and most exports) do not quote fields, and a stray quote must not swallow rows.
    return csv.QUOTE_NONE if fmt == "tsv" and sep == "\t" else csv.QUOTE_MINIMAL


def _sniff_delimiter(head: _Head, fmt: str, expected: str) -> str:
    """The delimiter that splits the header into several columns with the most rows agreeing; ties keep ``expected``.

    Judging by the header first keeps a comma file whose texts hold semicolons a comma file.
    """
    best, best_agreeing = expected, -1
    for sep in [expected] + [d for d in DELIMITERS if d != expected]:
        rows = _sample_rows(head, sep, _quoting(fmt, sep))
        if not rows or len(rows[0]) < 2:
            continue
        agreeing = sum(len(row) == len(rows[0]) for row in rows[1:])
        if agreeing > best_agreeing:
            best, best_agreeing = sep, agreeing
    return best


def _sample_rows(head: _Head, sep: str, quoting: _Quoting) -> list[list[str]]:
    reader = csv.reader(io.StringIO(head.text), delimiter=sep, quoting=quoting)
    try:
        rows = [row for row in itertools.islice(reader, SNIFF_ROWS) if row]
    except csv.Error:
        return []
    # The head may end inside a row: leave that row out.
    return rows if head.complete or len(rows) < 2 else rows[:-1]


def _read_json_records(path: Path, fmt: str, max_rows: int | None, head: _Head) -> pd.DataFrame:
    """A JSON array of records or one record per line, whichever the file holds (.json and .jsonl alike)."""
    start = head.text.lstrip()
    if not start and head.complete:
        raise DataError(f"{path} is empty: it holds no records")
    # pandas reads a file of other JSON values (a string, numbers, lists) as a table with columns 0, 1, ... without
    # a word: the first record must be an object (later ones that are not make pandas fail, and are named then).
    first = start[1:].lstrip()[:1] if start.startswith("[") else start[:1]
    if first not in ("{", "]", ""):
        raise DataError(_json_problem(path, fmt, head.encoding) or f"{path} does not hold JSON objects: {_TABLE}")
    if start.startswith("["):
        frame = pd.read_json(path, dtype=False, encoding=head.encoding)
        return frame if max_rows is None else frame.iloc[:max_rows]
    if max_rows is None:
        return pd.read_json(path, lines=True, dtype=False, encoding=head.encoding)
    # pandas' nrows counts blank lines as rows, so the first records are collected here (streaming).
    with path.open(encoding=head.encoding) as handle:
        lines = list(itertools.islice((line for line in handle if line.strip()), max_rows))
    return pd.read_json(io.StringIO("".join(lines)), lines=True, dtype=False) if lines else pd.DataFrame()


def _require_unique_columns(names: list, path: Path) -> None:
    """Refuse a header naming a column twice: one of the two would be used, silently."""
    positions: dict[str, list[int]] = {}
    for number, name in enumerate(names, start=1):
        if str(name).strip():  # blank header cells are unnamed columns, not duplicates
            positions.setdefault(str(name).strip(), []).append(number)
    repeated = {name: numbers for name, numbers in positions.items() if len(numbers) > 1}
    if repeated:
        listing = "; ".join(
            f"{name!r} (columns {', '.join(map(str, numbers[:-1]))} and {numbers[-1]})"
            for name, numbers in repeated.items()
        )
        raise DataError(
            f"{path}: the header names a column more than once: {listing}. Only one of them could be used, and "
            "nothing would say which; rename or remove the extra column(s) so that every column name is unique."
        )


def _trim_column_names(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    renamed = {name: name.strip() for name in frame.columns if isinstance(name, str) and name != name.strip()}
    if renamed:
        shown = ", ".join(f"{old!r} -> {new!r}" for old, new in renamed.items())
        print(f"note: {path}: trimmed spaces around column names ({shown})", file=sys.stderr)
        frame = frame.rename(columns=renamed)
    return frame


def _read_parquet(path: Path, max_rows: int | None) -> pd.DataFrame:
    import pyarrow as pa
    import pyarrow.parquet as pq

    # pyarrow refuses a repeated column name with an obscure "Multiple matches for FieldRef".
    _require_unique_columns(pq.read_schema(path).names, path)
    if max_rows is None:
        return pd.read_parquet(path)
    parquet = pq.ParquetFile(path)
    batch = next(parquet.iter_batches(batch_size=max_rows), None)
    return (pa.Table.from_batches([batch]) if batch is not None else parquet.schema_arrow.empty_table()).to_pandas()


def count_rows(path: Path, fmt: str = "auto") -> int | None:
    """Data rows in a local file, counted by streaming (memory stays bounded); None where that is not cheap.

    CSV/TSV count lines after the header (a quoted field spanning lines counts as several: an estimate), JSONL
    counts non-empty lines, Parquet reads the row count from the footer; a JSON array gives None.
    """
    fmt = extensions().get(path.suffix.lower(), "") if fmt == "auto" else fmt
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).metadata.num_rows
    if fmt not in ("csv", "tsv", "jsonl"):
        return None
    lines, last = 0, b"\n"
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    lines += last != b"\n"  # a last line without a newline
    return max(0, lines - 1) if fmt in ("csv", "tsv") else lines


def hold_out(
    frame: pd.DataFrame, fraction: float, seed: int, stratify: str | None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split off ``fraction`` of the rows for evaluation, per class when ``stratify`` names a column.

    Per-class rounding keeps a class too small to split entirely in training rather than failing.
    """
    rng = np.random.default_rng(seed)
    if stratify is None or stratify not in frame:
        order = rng.permutation(len(frame))
        n_eval = int(round(len(frame) * fraction))
        return frame.iloc[np.sort(order[n_eval:])], frame.iloc[np.sort(order[:n_eval])]
    keys = frame[stratify].map(lambda v: repr(v))
    eval_positions: list[int] = []
    for _, positions in sorted(keys.groupby(keys).indices.items()):
        shuffled = rng.permutation(positions)
        eval_positions.extend(shuffled[: int(round(len(shuffled) * fraction))])
    mask = np.zeros(len(frame), dtype=bool)
    mask[eval_positions] = True
    return frame.iloc[~mask], frame.iloc[mask]


def _require_rows(frame: pd.DataFrame, origin: str, hint: str = "check the file and data.max_*_rows") -> None:
    if len(frame) == 0:
        raise DataError(f"{origin} has no rows; {hint}")


def _file_column(logical: str, columns, data: DataSection) -> str:
    """The user's name of a logical column (a tabular target is its own name)."""
    default = next((column.source_default for column in columns or () if column.name == logical), logical)
    return data.columns.get(logical, default)


def _read_sources(
    data: DataSection, max_rows: int | None = None, text_column: str | None = None
) -> tuple[pd.DataFrame, str, pd.DataFrame | None, str]:
    """The training rows and their origin, the evaluation rows (or None) and theirs ("" when there are none)."""
    path = Path(os.path.expanduser(data.source))
    if data.format == "hub" or (not path.exists() and _looks_like_hub_id(data.source)):
        return _read_hub(data)
    if not path.exists():
        raise DataError(f"data.source {data.source!r} does not exist (looked for {path.resolve()})")
    if path.is_file():
        train = read_table(path, data.format, max_rows, text_column)
        if data.eval_split is None:
            return train, str(path), None, ""
        eval_path = Path(os.path.expanduser(data.eval_split))
        if not eval_path.is_file():
            raise DataError(_missing_eval_file(data.eval_split, eval_path))
        if eval_path.resolve() == path.resolve():
            raise DataError(f"data.eval_split is the training file {path}; evaluate on other rows (or eval_fraction)")
        return train, str(path), read_table(eval_path, data.format, max_rows, text_column), str(eval_path)
    if data.format == "disk" or (path / "dataset_dict.json").exists() or (path / "state.json").exists():
        return _read_disk(path, data)
    train_path = _split_file(path, data.train_split, data.format)
    eval_file = _split_file(path, data.eval_split, data.format) if data.eval_split else None
    train = read_table(train_path, data.format, max_rows, text_column)
    eval_frame = read_table(eval_file, data.format, max_rows, text_column) if eval_file else None
    return train, str(train_path), eval_frame, "" if eval_file is None else str(eval_file)


def _read_test(data: DataSection, max_rows: int | None, text_column: str | None) -> tuple[pd.DataFrame, str]:
    """The rows of ``data.test_split`` and their origin: a file (file source), split file, saved split or Hub split.

    Raises:
        DataError: The split or file does not exist (naming what exists), or cannot be read.
    """
    assert data.test_split is not None
    split = data.test_split
    path = Path(os.path.expanduser(data.source))
    if data.format == "hub" or (not path.exists() and _looks_like_hub_id(data.source)):
        hub_only = DataSection.model_validate({"source": data.source, "format": "hub", "train_split": split})
        frame, origin, _, _ = _read_hub(hub_only.model_copy(update={"hub_config": data.hub_config}))
        return frame, origin
    if path.is_file():
        test_path = Path(os.path.expanduser(split))
        if not test_path.is_file():
            raise DataError(_missing_eval_file(split, test_path).replace("eval_split", "test_split"))
        if test_path.resolve() == path.resolve():
            raise DataError(f"data.test_split is the training file {path}; test on rows the model never trains on")
        eval_path = Path(os.path.expanduser(data.eval_split)) if data.eval_split else None
        if eval_path is not None and eval_path.resolve() == test_path.resolve():
            raise DataError(
                f"data.test_split is the evaluation file {eval_path}, which selects the best checkpoint: a test score "
                "on it would be optimistic; test on other rows"
            )
        return read_table(test_path, data.format, max_rows, text_column), str(test_path)
    if data.format == "disk" or (path / "dataset_dict.json").exists() or (path / "state.json").exists():
        import datasets

        loaded = datasets.load_from_disk(str(path))
        if isinstance(loaded, datasets.Dataset) or split not in loaded:
            has = "a single dataset" if isinstance(loaded, datasets.Dataset) else ", ".join(loaded.keys())
            raise DataError(f"test split {split!r} not in {path}; it has: {has}")
        return loaded[split].to_pandas(), f"{path}[{split}]"
    test_file = _split_file(path, split, data.format)
    return read_table(test_file, data.format, max_rows, text_column), str(test_file)


def _missing_eval_file(eval_split: str, eval_path: Path) -> str:
    """Why ``data.eval_split`` names no evaluation file, when ``data.source`` is a file."""
    if eval_path.is_dir():
        return (
            f"data.eval_split {eval_split!r} is a folder; with a file as data.source, eval_split must be a file path: "
            "the evaluation file"
        )
    looks_like_path = eval_path.suffix or any(sep in eval_split for sep in ("/", os.sep)) or eval_split[:1] in "~."
    if looks_like_path:
        resolved = str(eval_path.resolve())
        looked = "" if resolved == eval_split else f" (looked for {resolved})"
        return (
            f"data.eval_split {eval_split!r} does not exist{looked}: fix the path, or drop data.eval_split and set "
            "data.eval_fraction to hold out training rows"
        )
    return (
        f"data.eval_split {eval_split!r}: with a file as source, eval_split must be a file path (a single file has "
        "no named splits): give the path of the evaluation file, or set data.eval_fraction instead"
    )


def _split_file(folder: Path, split: str, fmt: str) -> Path:
    candidates = [e for e, f in extensions().items() if fmt in ("auto", f)]
    found = [folder / f"{split}{ext}" for ext in candidates if (folder / f"{split}{ext}").is_file()]
    if len(found) > 1:
        raise DataError(
            f"{folder} holds several files for split {split!r}: {', '.join(p.name for p in found)}; keep one"
        )
    if not found:
        present = sorted(p.name for p in folder.iterdir() if p.suffix.lower() in extensions()) or ["no data files"]
        raise DataError(
            f"no file for split {split!r} in {folder} (expected {split}.csv, .tsv, .jsonl, .json or .parquet); "
            f"found: {', '.join(present)}"
        )
    return found[0]


def _read_disk(path: Path, data: DataSection) -> tuple[pd.DataFrame, str, pd.DataFrame | None, str]:
    import datasets

    loaded = datasets.load_from_disk(str(path))
    if isinstance(loaded, datasets.Dataset):
        if data.eval_split:
            raise DataError(f"{path} holds a single dataset, so data.eval_split {data.eval_split!r} cannot be found")
        return loaded.to_pandas(), str(path), None, ""
    names = list(loaded.keys())
    for split in [data.train_split] + ([data.eval_split] if data.eval_split else []):
        if split not in loaded:
            raise DataError(f"split {split!r} not in {path}; it has: {', '.join(names)}")
    eval_frame = loaded[data.eval_split].to_pandas() if data.eval_split else None
    return (
        loaded[data.train_split].to_pandas(),
        f"{path}[{data.train_split}]",
        eval_frame,
        f"{path}[{data.eval_split}]" if data.eval_split else "",
    )


def _looks_like_hub_id(source: str) -> bool:
    parts = source.split("/")
    return 1 <= len(parts) <= 2 and all(parts) and not source.startswith((".", "~")) and not Path(source).suffix


def _read_hub(data: DataSection) -> tuple[pd.DataFrame, str, pd.DataFrame | None, str]:
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        raise DataError(
            f"data.source {data.source!r} is not a local path, so it would be a Hub dataset, but the Hub is offline "
            "(HF_HUB_OFFLINE=1). Point data.source at a local file or folder, or go online."
        )
    import datasets

    def load(split: str) -> pd.DataFrame:
        try:
            return datasets.load_dataset(data.source, name=data.hub_config, split=split).to_pandas()
        except (datasets.exceptions.DatasetNotFoundError, FileNotFoundError, ConnectionError) as exc:
            raise DataError(f"could not load Hub dataset {data.source!r} split {split!r}: {exc}") from None
        except ValueError as exc:  # unknown split name
            raise DataError(f"Hub dataset {data.source!r}: {exc}") from None

    eval_frame = load(data.eval_split) if data.eval_split else None
    return (
        load(data.train_split),
        f"{data.source}[{data.train_split}]",
        eval_frame,
        f"{data.source}[{data.eval_split}]" if data.eval_split else "",
    )
