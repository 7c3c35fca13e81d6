"""``events.jsonl``: the one stream of run events that the console display, web UI and model card read."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from trainforge._utils.secrets import redact


class EventLog:
    """Append-only JSON-lines writer; each event is flushed at once so readers can tail the file."""

    def __init__(self, path: Path, listeners: tuple[Callable[[dict], None], ...] = ()):
        self.path = path
        self.listeners = listeners
        self._file = path.open("a", encoding="utf-8")

    def write(self, event: str, **fields: Any) -> dict:
        """Record one event (``time`` is added) and pass it to the listeners."""
        record = {"event": event, "time": round(time.time(), 3), **{k: _jsonable(v) for k, v in fields.items()}}
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()
        for listener in self.listeners:
            listener(record)
        return record

    def copy(self, record: dict, **fields: Any) -> None:
        """Append another log's ``record`` with ``fields`` added, for this file's readers only.

        The listeners are not called: they saw the record where it was first written (a search copies each trial's
        steps and evaluations into the study's log, ``trial`` added, so that one file shows the whole study).
        """
        copied = {**record, **{k: _jsonable(v) for k, v in fields.items()}}
        self._file.write(json.dumps(copied) + "\n")
        self._file.flush()

    def close(self) -> None:
        """Close the file (further writes fail)."""
        self._file.close()


def read_events(path: Path) -> list[dict]:
    """Every event recorded in ``path`` (empty when the file does not exist)."""
    if not path.exists():
        return []
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _jsonable(value: Any) -> Any:
    """``value`` as JSON can hold it; text without the value of any secret-looking environment variable.

    An error message can quote a value read from the environment (``${HF_TOKEN}`` in the wrong field): the event
    file, the console display and the web app all read events, so secrets are removed here, once.
    """
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item"):  # numpy / torch scalars
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, int | float | bool) or value is None:
        return value
    return redact(str(value))
