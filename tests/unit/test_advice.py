"""The advice for a model that has not learned tells "steps too large" apart from "too little training"."""

from types import SimpleNamespace

import pytest

from trainforge.training.advice import TRAIN_MORE, not_learned_advice


def trainer(losses, learning_rate=5e5):
    history = [{"loss": loss, "step": i} for i, loss in enumerate(losses)] + [{"eval_loss": 1.0, "step": 9}]
    state, args = SimpleNamespace(log_history=history), SimpleNamespace(learning_rate=learning_rate)
    return SimpleNamespace(state=state, args=args)


def test_a_rising_training_loss_names_the_learning_rate_as_too_high():
    advice = not_learned_advice(trainer([2.1, 40.0, 1.2e4]))
    assert "lower it" in advice and "500000" in advice and "2.1 -> 1.2e+04" in advice


@pytest.mark.parametrize("losses", [[2.1, 1.9, 1.8], [2.1], []])
def test_a_falling_or_unknown_loss_asks_for_more_training(losses):
    assert not_learned_advice(trainer(losses)) == TRAIN_MORE
