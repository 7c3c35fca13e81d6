"""Optuna storages shared by the searches (tabular model search, hyperparameter search of any task)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator


def open_storage(url: str):
    """An Optuna RDB storage; SQLite waits for other writers instead of failing at once."""
    import optuna
    from sqlalchemy.exc import IntegrityError, OperationalError

    kwargs = {"connect_args": {"timeout": 120}} if url.startswith("sqlite") else {}
    for attempt in range(3):
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs=kwargs)
        except (OperationalError, IntegrityError) as exc:
            # Two workers creating a new study database race on its tables and schema version row; the loser
            # finds them made (https://github.com/optuna/optuna/issues/1475). Open it again after a pause; any
            # other error propagates.
            raced = "already exists" in str(exc) or "alembic_version" in str(exc)
            if not raced or attempt == 2:
                raise
            time.sleep(0.5 * (attempt + 1))
    raise AssertionError("unreachable")


@contextlib.contextmanager
def sqlite_lock(url: str) -> Iterator[None]:
    """Hold an exclusive lock beside a SQLite study database (no-op for other storages) while a block runs.

    SQLite has no row locks: two workers can both see an empty study and enqueue its first trials twice, and both
    take the same enqueued (WAITING) trial, the second then failing with "Cannot tell a COMPLETE trial". PostgreSQL
    and MySQL lock the row themselves.
    """
    if not url.startswith("sqlite:///"):
        yield
        return
    import fcntl

    with open(url.removeprefix("sqlite:///") + ".lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
