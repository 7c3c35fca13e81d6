"""What to tell a user whose finished model has not learned its task: train more, or lower the learning rate.

A model that scores no better than a trivial baseline (the commonest class, copying the source, no box found) was
either trained too little or thrown off by steps too large. The advice must tell the two apart: "a higher
learning rate" to a run whose rate was 1e5 instead of 1e-5 makes it worse.
"""

from __future__ import annotations

from typing import Any

TRAIN_MORE = "train longer, with a higher training.learning_rate, or on more data"
RISE = 1.5  # last third's mean loss over the first third's: above it, the steps made the model worse


def not_learned_advice(trainer: Any) -> str:
    """The advice for a run whose kept model has not learned: lower the rate if the training loss rose, else more.

    Reads the logged training losses (``trainer.state.log_history`` entries with ``loss``). A model that learned
    nothing logs a flat, noisy loss, so one log against another says nothing; the rate is named as too high only
    when the mean of the last third of the logs is over ``RISE`` times the mean of the first third (at least 3 logs).

    Returns:
        One clause, to follow "it has not learned the task; ".
    """
    losses = [e["loss"] for e in trainer.state.log_history if isinstance(e.get("loss"), int | float)]
    third = len(losses) // 3
    if third:
        first, last = sum(losses[:third]) / third, sum(losses[-third:]) / third
        if last > RISE * first:
            return (
                f"its training loss rose (mean {first:.3g} over the first third of the logs, {last:.3g} over the "
                f"last), so training.learning_rate ({trainer.args.learning_rate:g}) is likely too high: lower it "
                "(fine-tuning rates are about 1e-5 to 1e-3)"
            )
    return TRAIN_MORE


def learning_rate_notes(learning_rate: float) -> list[str]:
    """A note for a learning rate of 1 or more, which no fine-tuning uses: most likely a dropped minus (5e5 for 5e-5).

    Not an error: a user may mean it. Training with it typically ends in a diverged or a no-better-than-chance model.

    Returns:
        [] or one note naming ``training.learning_rate`` and the rate with its exponent's sign flipped.
    """
    if learning_rate < 1:
        return []
    mantissa, exponent = f"{learning_rate:e}".split("e")
    flipped = float(f"{mantissa}e-{int(exponent)}")
    guess = f"; did you mean {flipped:g}?" if 1e-7 <= flipped <= 1e-2 else ""  # only a rate someone would train with
    return [
        f"training.learning_rate {learning_rate:g} is far above fine-tuning rates (about 1e-5 to 1e-3): steps this "
        f"large throw the weights off{guess}"
    ]
