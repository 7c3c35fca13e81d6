"""Loaded predictors kept for reuse, shared by the web app's playground and ``trainforge serve``.

Loading a run (an LLM, a sentence-transformer) takes seconds to minutes; both servers keep the last few loaded and
load each at most once however many requests ask for it at the same time.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any


class PredictorCache:
    """The last ``size`` loaded predictors, by run directory and model files' signature (least recently used out).

    Each key has its own lock, so concurrent first requests for one run load it once and all get it, while other
    runs' predictors are served meanwhile. A run directory whose files change (retrained in place) loads afresh.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[tuple, Any] = OrderedDict()
        self._locks: dict[tuple, threading.Lock] = {}
        self._guard = threading.Lock()  # over _items and _locks, never held while loading

    def get(self, run_dir: Path, load) -> Any:
        """The cached predictor of ``run_dir``, else ``load()`` (once, however many threads ask at the same time).

        Raises:
            Whatever ``load`` raises; nothing is cached then, and the next request tries again.
        """
        key = (str(run_dir.resolve()), _files_signature(run_dir))
        with self._guard:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            with self._guard:
                if key in self._items:  # loaded by the thread this one waited for
                    self._items.move_to_end(key)
                    return self._items[key]
            predictor = load()
            with self._guard:
                self._items[key] = predictor
                stale = [k for k in self._items if k[0] == key[0] and k != key]  # the same run, older files
                for old in stale:
                    del self._items[old]
                while len(self._items) > self.size:
                    self._items.popitem(last=False)
                self._locks.pop(key, None)
            return predictor

    def __len__(self) -> int:
        return len(self._items)


def _files_signature(run_dir: Path) -> tuple:
    """(name, size, mtime) of the run directory's files and its merged model's: what a reload must follow."""
    entries = []
    for folder in (run_dir, run_dir / "merged"):
        if folder.is_dir():
            for path in sorted(folder.iterdir()):
                if path.is_file():
                    stat = path.stat()
                    entries.append((str(path.relative_to(run_dir)), stat.st_size, stat.st_mtime_ns))
    return tuple(entries)
