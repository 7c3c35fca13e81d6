"""Map user columns onto a task's logical columns, with errors that list what was found."""

from __future__ import annotations

import pandas as pd

from trainforge.errors import DataError


def map_columns(frame: pd.DataFrame, columns, mapping: dict[str, str], origin: str) -> pd.DataFrame:
    """Return a frame holding only the task's logical columns, renamed from the user's.

    Args:
        frame: Rows as loaded.
        columns: The task's ``Column`` tuple.
        mapping: ``data.columns``: logical name -> user column.
        origin: File or split name for messages.

    Raises:
        DataError: A required (or explicitly mapped) column is absent.
    """
    selected = {}
    for column in columns:
        user = mapping.get(column.name, column.source_default)
        if user in frame.columns:
            selected[column.name] = frame[user]
        elif column.required or column.name in mapping:
            found = ", ".join(map(str, frame.columns)) or "none"
            how = f"data.columns.{column.name}: {user}" if column.name in mapping else f"data.columns.{column.name}"
            raise DataError(
                f"{origin} has no column {user!r} for the {column.name} column ({column.help}). "
                f"Columns found: {found}. Set {how} to one of them."
            )
    return pd.DataFrame(selected, index=frame.index)
