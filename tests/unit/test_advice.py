"""The advice for a model that has not learned tells "steps too large" apart from "too little training"."""

from types import SimpleNamespace

import pytest

from trainforge.training.advice import TRAIN_MORE, learning_rate_notes, not_learned_advice


def trainer(losses, learning_rate=5e5):
    history = [{"loss": loss, "step": i} for i, loss in enumerate(losses)] + [{"eval_loss": 1.0, "step": 9}]
    state, args = SimpleNamespace(log_history=history), SimpleNamespace(learning_rate=learning_rate)
    return SimpleNamespace(state=state, args=args)


def test_a_rising_training_loss_names_the_learning_rate_as_too_high():
    advice = not_learned_advice(trainer([2.1, 2.3, 40.0, 95.0, 1.2e4, 3e4]))
    assert "lower it" in advice and "500000" in advice and "mean 2.2 over the first third" in advice


@pytest.mark.parametrize(
    "losses",
    [
        [2.1, 1.9, 1.8],
        [0.69, 0.71, 0.68, 0.72, 0.70, 0.74],  # learned nothing: flat and noisy, last above first
        [0.69, 0.7],  # too few logs to tell
        [],
    ],
)
def test_a_falling_or_unknown_loss_asks_for_more_training(losses):
    assert not_learned_advice(trainer(losses)) == TRAIN_MORE


@pytest.mark.parametrize(
    "rate, said",
    [(5e5, "did you mean 5e-05?"), (2e6, "did you mean 2e-06?"), (1.0, "above fine-tuning rates"), (1e30, "off")],
)
def test_a_learning_rate_of_one_or_more_gets_a_note(rate, said):
    (note,) = learning_rate_notes(rate)
    assert "training.learning_rate" in note and said in note
    assert ("did you mean" in note) is (rate in (5e5, 2e6))  # no guess of a rate nobody trains with (1, 1e-30)


@pytest.mark.parametrize("rate", [5e-5, 1e-3, 0.5])
def test_ordinary_learning_rates_get_no_note(rate):
    assert learning_rate_notes(rate) == []


def test_validate_shows_the_note_before_any_model_loads(tiny_bert, tmp_path, capsys):
    from trainforge.cli.main import main

    (tmp_path / "reviews.csv").write_text("review,sentiment\n" + "good film,positive\nbad film,negative\n" * 10)
    config = tmp_path / "c.yaml"
    config.write_text(
        f"task: text_classification\nmodel: {{name: {tiny_bert}}}\n"
        f"data: {{source: {tmp_path / 'reviews.csv'}, columns: {{text: review, label: sentiment}}}}\n"
        f"training: {{learning_rate: 5e5}}\noutput: {{dir: {tmp_path / 'run'}}}\n"
    )
    assert main(["validate", str(config)]) == 0
    assert "did you mean 5e-05?" in capsys.readouterr().out
