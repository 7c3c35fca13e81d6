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
        DataError: A required (or explicitly mapped) column is absent, or an unmapped column hides a logical one.
    """
    selected, taken = {}, set()
    for column in columns:
        if column.rest:
            continue
        user = mapping.get(column.name, column.source_default)
        if user not in frame.columns and isinstance(user, str) and user.strip() in frame.columns:
            user = user.strip()  # a name copied from a header whose stray spaces the reader trimmed
        taken.add(user)
        if user in frame.columns:
            selected[column.name] = frame[user]
        elif column.required or column.name in mapping:
            found = ", ".join(map(str, frame.columns)) or "none"
            how = f"data.columns.{column.name}: {user}" if column.name in mapping else f"data.columns.{column.name}"
            raise DataError(
                f"{origin} has no column {user!r} for the {column.name} column ({column.help}). "
                f"Columns found: {found}. Set {how} to one of them."
            )
    if any(column.rest for column in columns):
        # Every other user column stays under its own name (tabular features); it must not hide a logical column.
        for user in frame.columns:
            if user in taken:
                continue
            if user in selected:
                raise DataError(
                    f"{origin}: column {user!r} has the name of the task's {user} column but is mapped elsewhere; "
                    f"rename it in the file or set data.columns.{user}: {user}"
                )
            selected[user] = frame[user]
    return pd.DataFrame(selected, index=frame.index)
