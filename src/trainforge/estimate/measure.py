"""Step time measured, not guessed: real optimizer steps of the run's own model, trainer and data on the device.

The driver's ``fit`` trains the task's model with the task's trainer on the prepared sample (no evaluation, no
checkpoints, a temporary run directory); a callback times each optimizer step (every micro-batch of gradient
accumulation included). The first ``WARM_STEPS`` allocate the optimizer state and warm the kernels and are not
counted; then at least ``TIMED_STEPS`` are timed, and more while they add up to less than ``TIMED_SECONDS`` (at most
``MAX_TIMED_STEPS``): a 5 ms step of a tiny model is timed over dozens of steps, a 40 s LLM step over three. The
median of the timed steps is the step time.
"""

from __future__ import annotations

import dataclasses
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

WARM_STEPS = 2
TIMED_STEPS = 3
TIMED_SECONDS = 3.0
MAX_TIMED_STEPS = 40


@dataclasses.dataclass
class Measured:
    """Wall seconds of each timed step and the memory the steps added (bytes; None when not read)."""

    step_seconds: list[float]
    peak_bytes: int | None


def measure_steps(checked: Any, prepared: Any, warm: int = WARM_STEPS, timed: int = TIMED_STEPS) -> Measured:
    """Train the configured run on ``prepared`` (a sample of its data) for ``warm`` + at least ``timed`` steps.

    Args:
        checked: The driver's ``Checked`` of the config (its processor and analysis are reused).
        prepared: The task's ``Prepared`` sample (``lengths.Workload.prepared``); eval and test are dropped.
        warm: Steps run first and not timed.
        timed: The fewest steps timed (more while they take under ``TIMED_SECONDS``).

    Returns:
        The timed steps' wall seconds and the memory the run added at its peak: on CPU the resident set's growth
        from before the model loaded (sampled every 5 ms), on CUDA ``torch.cuda.max_memory_allocated``.
    """
    import torch
    from transformers import TrainerCallback

    from trainforge.training.driver import Checked, fit
    from trainforge.training.events import EventLog

    seconds: list[float] = []

    class StepTimer(TrainerCallback):
        """Wall time of each optimizer step."""

        started = 0.0

        def on_step_begin(self, args, state, control, **kwargs):  # noqa: D102
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            self.started = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):  # noqa: D102
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            seconds.append(time.perf_counter() - self.started)
            counted = seconds[warm:]
            if len(counted) >= timed and sum(counted) >= TIMED_SECONDS:
                control.should_training_stop = True

    ctx = checked.ctx
    with tempfile.TemporaryDirectory(prefix="trainforge-estimate-") as folder:
        config = _short_run(ctx.config, warm + max(timed, MAX_TIMED_STEPS), Path(folder))
        run_ctx = dataclasses.replace(ctx, config=config, run_dir=Path(folder), notes=[])
        run_ctx.events = EventLog(Path(folder) / "events.jsonl")
        sample = dataclasses.replace(prepared, eval=None, test=None)
        with _PeakMemory(torch.cuda.is_available()) as peak:
            try:
                trainer, _ = fit(
                    Checked(run_ctx, checked.splits, []), sample, resume=False, extra_callbacks=[StepTimer()]
                )
                del trainer
            finally:
                run_ctx.events.close()
    return Measured(seconds[warm:] or seconds, peak.bytes)


def median(values: list[float]) -> float:
    """The median (0 for no values)."""
    return statistics.median(values) if values else 0.0


def _short_run(config: Any, steps: int, folder: Path) -> Any:
    """The config trained for ``steps`` optimizer steps into ``folder``: no evaluation, checkpoints or loggers."""
    training = config.training.model_copy(
        update={"max_steps": steps, "eval_strategy": "no", "eval_on_start": False, "logging_steps": steps}
    )
    output = config.output.model_copy(
        update={"dir": str(folder / "run"), "save_checkpoints": False, "report_to": ["none"], "overwrite": True}
    )
    return config.model_copy(update={"training": training, "output": output})


class _PeakMemory:
    """Peak memory added inside the ``with`` block.

    CUDA: the allocator's peak. CPU: the growth of the process's high-water resident set (``ru_maxrss``), None when
    the block did not raise it (its peak stayed below an earlier one). Not sampled with a thread: polling the RSS
    every few milliseconds tripled a tiny model's step time (the GIL).
    """

    def __init__(self, cuda: bool):
        self.cuda = cuda
        self.bytes: int | None = None

    def __enter__(self) -> _PeakMemory:
        if self.cuda:
            import torch

            torch.cuda.reset_peak_memory_stats()
            self._start = torch.cuda.memory_allocated()
        else:
            import psutil

            self._start = psutil.Process().memory_info().rss
            self._high = _max_rss()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.cuda:
            import torch

            self.bytes = int(torch.cuda.max_memory_allocated() - self._start)
            return
        high = _max_rss()
        self.bytes = high - self._start if high > self._high else None


def _max_rss() -> int:
    """This process's peak resident set so far, in bytes (Linux reports kilobytes)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
