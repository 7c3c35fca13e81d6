"""Trainer callbacks that turn training progress into events (the console display reads them: display.py)."""

from __future__ import annotations

from transformers import TrainerCallback

from trainforge.training.events import EventLog


class EventsCallback(TrainerCallback):
    """Write step, eval and checkpoint events from the Trainer's logs."""

    def __init__(self, events: EventLog):
        self.events = events

    def on_train_begin(self, args, state, control, **kwargs):  # noqa: D102
        if state.is_world_process_zero:
            self.events.write(
                "train_started",
                max_steps=state.max_steps,
                num_train_epochs=args.num_train_epochs,
                start_step=state.global_step,
            )

    def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: D102
        if not state.is_world_process_zero or not logs:
            return
        position = {"step": state.global_step, "max_steps": state.max_steps, "epoch": state.epoch}
        if "loss" in logs:
            keep = ("loss", "learning_rate", "grad_norm")
            self.events.write("step", **position, **{k: logs[k] for k in keep if k in logs})
        metrics = {k.removeprefix("eval_"): v for k, v in logs.items() if k.startswith("eval_")}
        if metrics:
            self.events.write("eval", **position, metrics=metrics)

    def on_save(self, args, state, control, **kwargs):  # noqa: D102
        if state.is_world_process_zero:
            self.events.write("checkpoint", step=state.global_step, best=state.best_model_checkpoint)
