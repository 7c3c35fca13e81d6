"""The runs one server answers for: a run directory, or every finished run directly inside a folder.

A client names a run by its folder name (the OpenAI ``model`` field). The folder is read again on each request, so
runs that finish while the server is up are served without a restart; predictors load on first use and the last
few stay loaded (``serve/cache.PredictorCache``, which the web app uses too).
"""

from __future__ import annotations

import functools
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from trainforge.errors import RunDirError
from trainforge.serve.cache import PredictorCache


@dataclass(frozen=True)
class ServedRun:
    """One finished run as the server lists it: its name (the folder's), folder, task and finish time."""

    name: str
    run_dir: Path
    task: str
    created: int  # unix seconds: when metrics.json was written (the run finished)

    @property
    def spec(self):
        """The run's ``TaskSpec``, or None for a task this version does not know."""
        from trainforge.tasks import get_task, task_names

        return get_task(self.task) if self.task in task_names() else None


def is_finished_run(folder: Path) -> bool:
    """Whether ``folder`` holds a finished trainforge run (``config.resolved.yaml`` and ``metrics.json``)."""
    return (folder / "config.resolved.yaml").is_file() and (folder / "metrics.json").is_file()


class RunFolder:
    """The runs served from ``path``: the run itself when it is one, else the finished runs directly inside it.

    Thread-safe. Predictors are loaded by ``load`` (default ``trainforge.sdk.load_predictor``) once per run and
    kept for the last ``max_loaded`` runs used; each non-generative predictor gets one ``MicroBatcher``.
    """

    def __init__(
        self, path: Path, max_loaded: int = 2, load: Callable[[Path], Any] | None = None, batch_window_s: float = 0.005
    ) -> None:
        """Check that ``path`` holds at least one finished run.

        Raises:
            RunDirError: ``path`` does not exist, or holds no finished run (naming what a run folder holds).
        """
        self.path = Path(path).expanduser().resolve()
        if not self.path.is_dir():
            raise RunDirError(f"{path} does not exist or is not a folder: give a run directory or a folder of runs")
        self.single = is_finished_run(self.path)
        if not self.runs():
            raise RunDirError(
                f"{path} holds no finished run: serve a run directory (with config.resolved.yaml and metrics.json) "
                "or a folder whose sub-folders are such runs"
            )
        self._cache = PredictorCache(max_loaded)
        self._load = load
        self.batch_window_s = batch_window_s
        # One batcher per loaded predictor, by id: dropped when the predictor is freed (the cache let it go).
        self._batchers: dict[int, Any] = {}
        self._guard = threading.Lock()

    def runs(self) -> list[ServedRun]:
        """Every run served now, by name (read from disk on each call)."""
        folders = [self.path] if self.single else sorted(p for p in self.path.iterdir() if p.is_dir())
        return [_served(folder) for folder in folders if is_finished_run(folder)]

    def get(self, name: str) -> ServedRun | None:
        """The run named ``name``, or None."""
        return next((run for run in self.runs() if run.name == name), None)

    def predictor(self, run: ServedRun) -> Any:
        """The run's predictor: loaded once, then reused (the last ``max_loaded`` runs stay loaded).

        Raises:
            RunDirError: The run cannot be loaded (as ``trainforge.load_predictor``).
        """
        if self._load is not None:
            load = self._load
        else:
            from trainforge.sdk import load_predictor as load
        return self._cache.get(run.run_dir, lambda: load(run.run_dir))

    def batcher(self, predictor: Any):
        """The ``MicroBatcher`` of ``predictor`` (one per loaded predictor)."""
        from trainforge.serve.batching import MicroBatcher

        key = id(predictor)
        with self._guard:
            batcher = self._batchers.get(key)
            if batcher is None:
                batcher = self._batchers[key] = MicroBatcher(self.batch_window_s)
                weakref.finalize(predictor, self._batchers.pop, key, None)
            return batcher


def _served(folder: Path) -> ServedRun:
    """The ``ServedRun`` of a finished run folder (its task read from ``config.resolved.yaml``)."""
    resolved = folder / "config.resolved.yaml"
    return ServedRun(
        folder.name,
        folder,
        _task(resolved, resolved.stat().st_mtime_ns),
        int((folder / "metrics.json").stat().st_mtime),
    )


@functools.lru_cache(maxsize=4096)
def _task(resolved: Path, mtime_ns: int) -> str:
    """The task a resolved config names; cached per file version (parsing YAML on every request costs ~10 ms)."""
    parsed = yaml.safe_load(resolved.read_text(encoding="utf-8")) or {}
    return str(parsed.get("task", "")) if isinstance(parsed, dict) else ""
