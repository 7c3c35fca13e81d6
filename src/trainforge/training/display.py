"""The console display: live progress rendered from run events (no transformers import, so it costs nothing)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class ConsoleDisplay:
    """Live progress from events: one updating line on a terminal, plain log lines otherwise."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.started = time.monotonic()
        self.first_step: tuple[int, float] | None = None
        self.loss: float | None = None

    def __call__(self, event: dict) -> None:
        """Render one event."""
        kind = event["event"]
        if kind == "run_started":
            for note in event.get("notes") or []:  # what validate says about the data, before training starts
                self._line(f"note: {note}")
        elif kind == "train_started":
            self.started = time.monotonic()
        elif kind == "step":
            self.loss = event.get("loss")
            self._progress(event)
        elif kind == "eval":
            shown = ", ".join(
                f"{k} {v:.4g}"
                for k, v in event["metrics"].items()
                if isinstance(v, int | float) and "runtime" not in k and "per_second" not in k
            )
            self._line(f"eval @ step {event['step']}: {shown}")
        elif kind == "trial" and event.get("state") == "complete":
            self._line(
                f"trial {event['number']} {event['family']}: {event['metric']} {event['score']:.4g} "
                f"(best {event['best_score']:.4g}, {event['fit_time_s']:.1f}s)"
            )
        elif kind == "search_trial":
            value = "" if event.get("value") is None else f": {event['metric']} {event['value']:.4g}"
            shown = ", ".join(f"{k} {v}" for k, v in event["params"].items())
            self._line(f"search trial {event['number']} {event['state']}{value} ({shown})")
        elif kind == "ensemble":
            self._line(f"ensemble of {len(event['members'])} trial(s): {event['metric']} {event['score']:.4g}")
        elif kind == "early_stopped":
            self._line(
                f"early stopping at step {event['step']}/{event['max_steps']}: {event['metric']} did not improve for "
                f"{event['patience']} evaluation(s); best at step {event['best_step']}"
            )
        elif kind == "best_checkpoint":
            loss = f", eval loss {event['eval_loss']:.4g}" if isinstance(event.get("eval_loss"), float) else ""
            self._line(f"kept the checkpoint of step {event['step']} ({event['metric']} {event['value']:.4g}{loss})")
        elif kind == "run_finished":
            self._line(f"finished in {event.get('duration_s', 0):.0f}s; model in {event.get('output_dir')}")
        elif kind == "run_failed":
            self._line(f"failed: {event.get('error')}")

    def _progress(self, event: dict) -> None:
        step, total = event["step"], event["max_steps"]
        now = time.monotonic()
        if self.first_step is None:
            self.first_step = (step, now)
        done_since, t0 = self.first_step
        rate = (step - done_since) / (now - t0) if now > t0 and step > done_since else None
        eta = f"{_clock((total - step) / rate)}" if rate else "--:--"
        text = f"step {step}/{total} | epoch {event.get('epoch') or 0:.2f} | loss {self.loss:.4f} | ETA {eta}"
        if self.tty:
            self.stream.write("\r" + text.ljust(80))
            self.stream.flush()
        else:
            self._line(text)

    def _line(self, text: str) -> None:
        if self.tty:
            self.stream.write("\r" + " " * 80 + "\r")
        self.stream.write(text + "\n")
        self.stream.flush()


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"
