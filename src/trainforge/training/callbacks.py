"""Trainer callbacks: progress as events (the console display reads them: display.py) and a divergence guard."""

from __future__ import annotations

import math

from transformers import TrainerCallback

from trainforge.errors import TrainforgeError
from trainforge.training.events import EventLog


class TrainingDivergedError(TrainforgeError):
    """The training loss (or a trained weight) became NaN or infinite: the run failed, nothing is reported done."""


class NonFiniteLossGuard(TrainerCallback):
    """Fail the run as soon as the training loss or a trained weight is NaN/inf.

    transformers replaces a NaN/inf step loss by the running average before logging (``logging_nan_inf_filter``),
    so a diverged run would log plausible numbers and finish "done" with NaN weights; the guard turns that filter
    off. Logs come only every ``logging_steps``, so the trained weights are also checked before every evaluation,
    checkpoint and the end of training: evaluating NaN weights fails later with an unrelated message.
    """

    def on_train_begin(self, args, state, control, **kwargs):  # noqa: D102
        args.logging_nan_inf_filter = False

    def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: D102
        for key in ("loss", "train_loss"):
            value = (logs or {}).get(key)
            if isinstance(value, int | float) and not math.isfinite(value):
                raise TrainingDivergedError(
                    f"training diverged: the training loss is {value} at step {state.global_step} "
                    f"of {state.max_steps}. {_advice(args)}"
                )

    def on_step_end(self, args, state, control, model=None, **kwargs):  # noqa: D102
        # Before a log the loss check speaks (it names the loss); weights are the backstop before anything else.
        if control.should_evaluate or control.should_save or control.should_training_stop:
            _check_weights(model, args, state)

    def on_epoch_end(self, args, state, control, model=None, **kwargs):  # noqa: D102
        if control.should_evaluate or control.should_save:
            _check_weights(model, args, state)


# No trained network holds a weight near 1e8 (they are O(1)-O(100)); at that size activations overflow float32 within
# a few layers, so the model answers NaN although every weight is still finite.
DIVERGED_WEIGHT = 1e8


def _check_weights(model, args, state) -> None:
    """Raise when a trained (requires_grad) weight holds NaN/inf; frozen weights cannot have diverged.

    Raises:
        TrainingDivergedError: Naming the first such weight and the step.
    """
    if model is None:
        return
    import torch

    for name, parameter in model.named_parameters():
        if not parameter.requires_grad or not parameter.numel():
            continue
        if not bool(torch.isfinite(parameter).all()):
            raise TrainingDivergedError(
                f"training diverged: weight {name} is NaN/inf after step {state.global_step} "
                f"of {state.max_steps}. {_advice(args)}"
            )
        largest = float(parameter.detach().abs().max())
        if largest > DIVERGED_WEIGHT:
            raise TrainingDivergedError(
                f"training diverged: weight {name} reached {largest:.3g} after step {state.global_step} of "
                f"{state.max_steps} (outputs overflow to NaN). {_advice(args)}"
            )


def _advice(args) -> str:
    return (
        f"Lower training.learning_rate (now {args.learning_rate:g}); with fp16 precision, try bf16 or fp32. "
        "The run is marked failed; no final model is saved."
    )


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


class TieBreakOnLoss(TrainerCallback):
    """Ties on the best-checkpoint metric go to the lower evaluation loss, then to the later step.

    The Trainer keeps a new best only when the metric strictly improves, so on small eval sets (accuracy 1.0 at step
    18 and again at 36) it keeps the earliest, least trained checkpoint. ``on_evaluate`` runs just before the Trainer
    compares the new metrics with ``state.best_metric``; on a tie whose eval loss is no worse, the stored best is
    moved one float step towards "worse", so the strict comparison keeps the new checkpoint (and then stores the
    true value again). The best checkpoint's loss is read from ``state.log_history``, so resuming keeps the rule.
    """

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):  # noqa: D102
        name = args.metric_for_best_model
        if not name or not metrics or state.best_metric is None or state.best_global_step is None:
            return
        key = name if name.startswith("eval_") else f"eval_{name}"
        value, loss = metrics.get(key), metrics.get("eval_loss")
        if value is None or loss is None or value != state.best_metric:
            return
        best_loss = next(
            (
                entry["eval_loss"]
                for entry in reversed(state.log_history)
                if entry.get("step") == state.best_global_step and "eval_loss" in entry
            ),
            None,
        )
        if best_loss is not None and loss <= best_loss:
            worse = -math.inf if args.greater_is_better else math.inf
            state.best_metric = math.nextafter(state.best_metric, worse)


class EarlyStoppingEvents(TrainerCallback):
    """Record that and why training stopped early (``early_stopped`` event), which the Trainer does without a word.

    Read at the end of training rather than beside ``EarlyStoppingCallback``: on ``--resume`` the Trainer replaces
    that callback with a restored copy at the end of its list, so no neighbour sees its decision in time.
    """

    def __init__(self, events: EventLog, patience: int):
        self.events = events
        self.patience = patience

    def on_train_end(self, args, state, control, **kwargs):  # noqa: D102
        if control.should_training_stop and state.global_step < state.max_steps and state.is_world_process_zero:
            self.events.write(
                "early_stopped",
                step=state.global_step,
                max_steps=state.max_steps,
                metric=args.metric_for_best_model,
                patience=self.patience,
                best_step=state.best_global_step,
                best_metric=state.best_metric,
            )
