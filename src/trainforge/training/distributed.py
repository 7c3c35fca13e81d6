"""The processes of one run: which one writes the run, and where they wait for each other.

A run launched on several processes (training/launch.py) has one run directory, one ``events.jsonl``, one set of
artifacts: the main process (global rank 0) writes them; the others train and evaluate with it (every Trainer call
is collective) and write nothing of the run's own. A single process is the main process of a group of one.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any


class Ranks:
    """This process's place among the run's processes (accelerate's ``PartialState`` when there are several)."""

    def __init__(self) -> None:
        self.state: Any = None
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            import torch
            from accelerate import PartialState

            # cpu=True on a machine without CUDA: accelerate then joins the processes over gloo (MULTI_CPU), as the
            # Trainer's own state does later (it reuses this process group).
            self.state = PartialState(cpu=not torch.cuda.is_available())

    @property
    def is_main(self) -> bool:
        """Whether this process writes the run (global rank 0)."""
        return self.state is None or bool(self.state.is_main_process)

    @property
    def count(self) -> int:
        """How many processes train the run."""
        return 1 if self.state is None else int(self.state.num_processes)

    def barrier(self) -> None:
        """Wait until every process got here."""
        if self.state is not None:
            self.state.wait_for_everyone()

    @contextlib.contextmanager
    def main_first(self) -> Iterator[None]:
        """Run the block in the main process first, then in the others.

        The others then find what it cached (Hub downloads, ``datasets`` cache files); one process just runs it.
        """
        if self.state is None:
            yield
            return
        with self.state.main_process_first():
            yield


class SilentEventLog:
    """The event log of a process that is not the main one: it records nothing (the main process writes events)."""

    listeners: tuple = ()

    def write(self, event: str, **fields: Any) -> dict:
        """Return the record without writing it."""
        return {"event": event, **fields}

    def close(self) -> None:
        """Nothing to close."""
