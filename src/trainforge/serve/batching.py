"""Micro-batching: concurrent predict requests on one model gathered for a few milliseconds, answered by one call.

An encoder answers 8 rows in one forward pass in about the time it answers one, so under concurrent load gathering
requests raises throughput and cuts queueing. The first request of a batch (the leader) waits ``window_s``, then
waits for the previous batch to finish, and takes every request that arrived meanwhile: batches grow with load.
Requests are gathered only with others of the same columns and dtypes, so that no request is predicted on a frame
it did not send (a missing feature column would otherwise arrive as NaN and be imputed instead of refused).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from trainforge.errors import DataError, RunDirError


@dataclass
class _Request:
    frame: pd.DataFrame
    done: threading.Event = field(default_factory=threading.Event)
    result: pd.DataFrame | None = None
    error: BaseException | None = None


class MicroBatcher:
    """Gathers concurrent ``predict(predictor, frame)`` calls into one ``predictor.predict`` per batch.

    Thread-safe; holds no reference to the predictor (it is passed on each call), so it never keeps a model alive.
    ``calls`` counts predictor calls and ``requests`` the requests answered, for the load test and the logs.
    """

    def __init__(self, window_s: float = 0.005) -> None:
        self.window_s = window_s
        self._pending: list[_Request] = []
        self._lock = threading.Lock()  # over _pending
        self._running = threading.Lock()  # one batch at a time
        self.calls = 0
        self.requests = 0

    def predict(self, predictor: Any, frame: pd.DataFrame) -> pd.DataFrame:
        """``predictor.predict(frame)``, computed together with the requests that arrive within the window.

        Raises:
            DataError, RunDirError: This request's rows are refused (a request is never failed by another's rows).
        """
        request = _Request(frame)
        with self._lock:
            self._pending.append(request)
            leader = len(self._pending) == 1
        if leader:
            if self.window_s > 0:
                time.sleep(self.window_s)
            with self._running:
                with self._lock:
                    batch, self._pending = self._pending, []
                self._answer(predictor, batch)
        request.done.wait()
        if request.error is not None:
            raise request.error
        assert request.result is not None
        return request.result

    def _answer(self, predictor: Any, batch: list[_Request]) -> None:
        """Answer every request of ``batch``: one predictor call per group of requests with the same columns."""
        groups: dict[tuple, list[_Request]] = {}
        for request in batch:
            groups.setdefault(_signature(request.frame), []).append(request)
        for group in groups.values():
            try:
                self._answer_group(predictor, group)
            finally:
                for request in group:
                    request.done.set()

    def _answer_group(self, predictor: Any, group: list[_Request]) -> None:
        frames = [request.frame.reset_index(drop=True) for request in group]
        try:
            self.calls += 1
            result = predictor.predict(pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0])
        except (DataError, RunDirError) as exc:
            if len(group) == 1:
                group[0].error = exc
                return
            for request in group:  # some request's rows were refused: find whose, answering the others alone
                self._answer_group(predictor, [request])
            return
        except Exception as exc:  # noqa: BLE001 - every request of the group gets the failure, none waits forever
            for request in group:
                request.error = exc
            return
        if len(result) != sum(len(frame) for frame in frames):
            error = RuntimeError(f"the predictor returned {len(result)} rows for {sum(map(len, frames))}")
            for request in group:
                request.error = error
            return
        start = 0
        for request, frame in zip(group, frames, strict=True):
            part = result.iloc[start : start + len(frame)].copy()
            part.index = request.frame.index
            request.result = part
            start += len(frame)
        self.requests += len(group)


def _signature(frame: pd.DataFrame) -> tuple:
    """What requests must share to be predicted together: column names, order and dtypes."""
    return tuple((str(name), str(dtype)) for name, dtype in frame.dtypes.items())
