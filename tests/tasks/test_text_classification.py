"""text_classification end to end on a tiny BERT: binary, multi-class, multi-label, weights, seeds, resume."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
import yaml
from safetensors.numpy import load_file

import trainforge
from conftest import make_sentiment_frame
from trainforge.cli.main import main
from trainforge.training.events import read_events

RUNTIME_KEYS = {"train_runtime"}


def make_config(model: str, source: Path, out: Path, **sections) -> dict:
    """A fast config on the tiny model: 32 tokens, batch 16, a high learning rate, a loss logged every step."""
    config = {
        "task": "text_classification",
        "model": {"name": model},
        "data": {"source": str(source), "columns": {"text": "review", "label": "sentiment"}, "eval_fraction": 0.25},
        "training": {
            "num_train_epochs": 3,
            "learning_rate": 5e-3,
            "per_device_train_batch_size": 16,
            "logging_steps": 1,
        },
        "params": {"max_length": 32},
        "output": {"dir": str(out), "report_to": ["none"]},
    }
    for section, values in sections.items():
        config[section] = {**config.get(section, {}), **values}
    return config


def step_losses(run_dir: Path) -> list[float]:
    return [e["loss"] for e in read_events(run_dir / "events.jsonl") if e["event"] == "step"]


def assert_loss_falls(run_dir: Path, window: int = 4) -> None:
    losses = step_losses(run_dir)
    assert len(losses) >= 2 * window
    assert all(math.isfinite(loss) for loss in losses)
    first, last = sum(losses[:window]) / window, sum(losses[-window:]) / window
    assert last < first - 0.05, f"loss did not fall: {losses}"


def weights(folder: str | Path) -> dict:
    """Encoder weights of a saved model, with the task head's ``bert.`` prefix removed."""
    return {k.removeprefix("bert."): v for k, v in load_file(str(Path(folder) / "model.safetensors")).items()}


def final_metrics(result) -> dict:
    return {k: v for k, v in result.metrics.items() if k not in RUNTIME_KEYS}


# ------------------------------------------------------------------------------------------------ binary


@pytest.fixture(scope="module")
def binary(tiny_bert, tmp_path_factory):
    """One binary run shared by the tests that only inspect what it left behind."""
    folder = tmp_path_factory.mktemp("binary")
    make_sentiment_frame(160).to_csv(folder / "reviews.csv", index=False)
    config = make_config(tiny_bert, folder / "reviews.csv", folder / "run", output={"report_to": ["tensorboard"]})
    return trainforge.train(config)


def test_binary_loss_is_finite_and_falls(binary):
    assert_loss_falls(binary.output_dir)
    assert math.isfinite(binary.metrics["train_loss"]) and math.isfinite(binary.metrics["eval_loss"])


def test_binary_parameters_changed(binary, tiny_bert):
    base, tuned = weights(tiny_bert), weights(binary.output_dir)
    encoder = [k for k in base if k.startswith("encoder.")]
    assert encoder and set(encoder) <= set(tuned)
    changed = [k for k in encoder if not (base[k] == tuned[k]).all()]
    assert len(changed) == len(encoder)
    assert tuned["classifier.weight"].shape == (2, 32)


def test_binary_run_directory(binary):
    run_dir = binary.output_dir
    for name in (
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "config.resolved.yaml",
    ):
        assert (run_dir / name).is_file(), name
    model_config = json.loads((run_dir / "config.json").read_text())
    assert model_config["id2label"] == {"0": "negative", "1": "positive"}
    assert model_config["problem_type"] == "single_label_classification"
    assert any(p.name.startswith("events.out.tfevents") for p in (run_dir / "tensorboard").iterdir())
    assert binary.train_rows == 120 and binary.eval_rows == 40


def test_binary_events(binary):
    events = read_events(binary.output_dir / "events.jsonl")
    kinds = [e["event"] for e in events]
    assert kinds[:2] == ["run_started", "train_started"] and kinds[-1] == "run_finished"
    assert {"step", "eval", "checkpoint"} <= set(kinds)
    assert "run_failed" not in kinds
    started = events[0]
    assert started["labels"] == ["negative", "positive"] and started["train_rows"] == 120
    evals = [e for e in events if e["event"] == "eval" and "f1" in e["metrics"]]
    assert len(evals) >= 3  # one per epoch, plus the final evaluation
    assert events[-1]["metrics"] == json.loads((binary.output_dir / "metrics.json").read_text())


def test_binary_metrics_json(binary):
    metrics = json.loads((binary.output_dir / "metrics.json").read_text())
    assert metrics == pytest.approx(binary.metrics)
    for key in (
        "eval_accuracy",
        "eval_f1",
        "eval_precision",
        "eval_recall",
        "eval_roc_auc",
        "eval_loss",
        "train_loss",
    ):
        assert math.isfinite(metrics[key]), key
    assert metrics["eval_accuracy"] >= 0.75  # the sentiment words decide the label


def test_binary_model_card(binary):
    text = (binary.output_dir / "README.md").read_text()
    assert text.startswith("---\n")
    front = yaml.safe_load(text.split("---\n")[1])
    assert front["pipeline_tag"] == "text-classification"
    assert front["library_name"] == "transformers" and "text_classification" in front["tags"]
    assert "| accuracy |" in text and "Labels: negative, positive." in text
    (index,) = front["model-index"]  # built by huggingface_hub's ModelCardData: the Hub shows these scores
    (result,) = index["results"]
    assert result["task"]["type"] == "text-classification"
    scores = {m["type"]: m["value"] for m in result["metrics"]}
    assert scores["accuracy"] == pytest.approx(binary.metrics["eval_accuracy"]) and "loss" in scores


def test_binary_resolved_config_reproduces_the_run(binary):
    resolved = binary.output_dir / "config.resolved.yaml"
    config = trainforge.load_config(resolved)
    assert config.training.learning_rate == pytest.approx(5e-3)
    assert config.data.columns == {"text": "review", "label": "sentiment"}
    assert config.output.dir == str(binary.output_dir)


def test_binary_reloads_with_plain_transformers(binary):
    from transformers import pipeline

    classifier = pipeline("text-classification", model=str(binary.output_dir), device="cpu")
    outputs = classifier(["a great and lovely film", "a dull and boring plot"])
    assert {o["label"] for o in outputs} <= {"negative", "positive"}
    assert [o["label"] for o in outputs] == ["positive", "negative"]


def test_binary_predict_cli(binary, tmp_path, capsys):
    inputs = make_sentiment_frame(20, seed=5)
    inputs.to_csv(tmp_path / "new.csv", index=False)
    code = main(
        ["predict", str(binary.output_dir), "--input", str(tmp_path / "new.csv"), "--output", str(tmp_path / "p.csv")]
    )
    assert code == 0, capsys.readouterr().err
    predictions = pd.read_csv(tmp_path / "p.csv")
    assert list(predictions.columns) == [*inputs.columns, "prediction", "prob_negative", "prob_positive"]
    assert set(predictions["prediction"]) <= {"negative", "positive"}
    assert (predictions[["prob_negative", "prob_positive"]].sum(axis=1) - 1).abs().max() < 1e-5
    assert (predictions["prediction"] == inputs["sentiment"]).mean() >= 0.75


def test_predict_input_without_the_text_column(binary, tmp_path, capsys):
    pd.DataFrame({"body": ["good"]}).to_csv(tmp_path / "new.csv", index=False)
    code = main(
        ["predict", str(binary.output_dir), "--input", str(tmp_path / "new.csv"), "--output", str(tmp_path / "p.csv")]
    )
    err = capsys.readouterr().err
    assert code == 2 and "the input has no column 'review' (the run's text column); found: body" in err


# ------------------------------------------------------------------------------------------------ other label shapes


def test_multiclass(tiny_bert, tmp_path):
    make_sentiment_frame(150, classes=3).to_csv(tmp_path / "reviews.csv", index=False)
    config = make_config(
        tiny_bert,
        tmp_path / "reviews.csv",
        tmp_path / "run",
        training={"num_train_epochs": 6, "early_stopping_patience": None},
    )
    result = trainforge.train(config)
    assert result.labels.names == ("negative", "neutral", "positive")
    assert_loss_falls(result.output_dir)
    assert {
        "eval_f1_macro",
        "eval_f1_micro",
        "eval_f1_weighted",
        "eval_precision_macro",
        "eval_recall_weighted",
    } <= set(result.metrics)
    assert json.loads((result.output_dir / "config.json").read_text())["id2label"]["1"] == "neutral"
    predictions = trainforge.predict(result.output_dir, make_sentiment_frame(9, seed=3, classes=3))
    assert [c for c in predictions.columns if c.startswith("prob_")] == [
        "prob_negative",
        "prob_neutral",
        "prob_positive",
    ]


# Three sigmoid outputs learn slower than one softmax: more epochs, all of them run.
LONGER = {"num_train_epochs": 8, "early_stopping_patience": None}  # multi-label learns slower at lr 5e-3


def tagged_frame(rows: int = 160) -> pd.DataFrame:
    """Multi-label rows: the sentiment, plus 'plot' when the text mentions the plot."""
    frame = make_sentiment_frame(rows)
    frame["tags"] = [
        [s] + (["plot"] if "plot" in r.split() else [])
        for r, s in zip(frame["review"], frame["sentiment"], strict=True)
    ]
    return frame


def assert_multi_label_run(result) -> None:
    assert result.labels.problem_type == "multi_label_classification"
    assert result.labels.names == ("negative", "plot", "positive")
    assert {"eval_f1_micro", "eval_f1_macro", "eval_subset_accuracy", "eval_hamming_loss"} <= set(result.metrics)
    assert_loss_falls(result.output_dir)
    model_config = json.loads((result.output_dir / "config.json").read_text())
    assert model_config["problem_type"] == "multi_label_classification"


def test_multi_label_from_list_column_with_weights(tiny_bert, tmp_path):
    tagged_frame().assign(weight=1.5).to_json(tmp_path / "tags.jsonl", orient="records", lines=True)
    columns = {"text": "review", "label": "tags", "sample_weight": "weight"}  # weighted loss in training and eval
    config = make_config(
        tiny_bert, tmp_path / "tags.jsonl", tmp_path / "run", data={"columns": columns}, training=LONGER
    )
    result = trainforge.train(config)
    assert_multi_label_run(result)
    predictions = trainforge.predict(result.output_dir, tagged_frame(10))
    assert all(set(p.split("|")) <= {"", "negative", "plot", "positive"} for p in predictions["prediction"].fillna(""))
    assert {"prob_negative", "prob_plot", "prob_positive"} <= set(predictions.columns)


def test_multi_label_from_delimited_string(tiny_bert, tmp_path):
    frame = tagged_frame()
    frame["tags"] = frame["tags"].map(", ".join)
    frame.to_csv(tmp_path / "tags.csv", index=False)
    config = make_config(
        tiny_bert, tmp_path / "tags.csv", tmp_path / "run",
        data={"columns": {"text": "review", "label": "tags"}}, params={"label_delimiter": ","}, training=LONGER,
    )  # fmt: skip
    assert_multi_label_run(trainforge.train(config))


# ------------------------------------------------------------------------------------------------ weights and seeds


def quick_config(tiny_bert: str, source: Path, out: Path, **data) -> dict:
    """One epoch, no evaluation or checkpoints: only the training loss matters."""
    config = make_config(tiny_bert, source, out, training={"num_train_epochs": 1}, output={"save_checkpoints": False})
    config["data"].update(eval_fraction=0, **data)
    return config


def test_sample_weight_changes_the_loss(tiny_bert, tmp_path):
    frame = make_sentiment_frame(64)
    frame["ones"] = 1.0
    frame["half"] = [0.0 if i % 4 < 2 else 1.0 for i in range(64)]
    frame.to_csv(tmp_path / "weighted.csv", index=False)
    runs = {}
    for name, weight in (("plain", None), ("ones", "ones"), ("half", "half")):
        columns = {"text": "review", "label": "sentiment", **({"sample_weight": weight} if weight else {})}
        runs[name] = step_losses(
            trainforge.train(
                quick_config(tiny_bert, tmp_path / "weighted.csv", tmp_path / name, columns=columns)
            ).output_dir
        )
    assert runs["ones"] == pytest.approx(runs["plain"], rel=1e-4)  # all-one weights are the plain mean
    assert runs["half"] != pytest.approx(runs["plain"], rel=1e-3)


def test_evaluation_only_at_the_end(tiny_bert, tmp_path, capsys):
    make_sentiment_frame(64).to_csv(tmp_path / "reviews.csv", index=False)
    config = make_config(tiny_bert, tmp_path / "reviews.csv", tmp_path / "run", training={"num_train_epochs": 2})
    text = yaml.safe_dump(config).replace("num_train_epochs: 2", "num_train_epochs: 2\n  eval_strategy: no")
    (tmp_path / "run.yaml").write_text(text)  # a bare `no` is YAML for false
    assert main(["train", str(tmp_path / "run.yaml")]) == 0, capsys.readouterr().err
    events = read_events(tmp_path / "run" / "events.jsonl")
    assert len([e for e in events if e["event"] == "eval"]) == 1
    assert "eval_accuracy" in json.loads((tmp_path / "run" / "metrics.json").read_text())


def test_same_seed_same_metrics(tiny_bert, tmp_path):
    make_sentiment_frame(96).to_csv(tmp_path / "reviews.csv", index=False)
    results = [
        trainforge.train(
            make_config(
                tiny_bert,
                tmp_path / "reviews.csv",
                tmp_path / f"run{i}",
                training={"num_train_epochs": 1, "seed": seed},
            )
        )
        for i, seed in enumerate((7, 7, 8))
    ]
    assert final_metrics(results[0]) == final_metrics(results[1])
    assert step_losses(results[0].output_dir) == step_losses(results[1].output_dir)
    assert step_losses(results[0].output_dir) != step_losses(results[2].output_dir)


# ------------------------------------------------------------------------------------ best checkpoint, failure, resume


def test_early_stopping_restores_the_best_checkpoint(tiny_bert, tmp_path):
    make_sentiment_frame(96).to_csv(tmp_path / "reviews.csv", index=False)
    # Accuracy cannot improve by more than 1.0, so patience 4 stops training after the fifth evaluation. Ties on
    # accuracy (frequent on 24 eval rows) go to the lower eval loss, then the later step (issue: "ties pick the
    # earliest checkpoint" kept a barely trained model).
    training = {
        "num_train_epochs": 10, "metric_for_best_model": "accuracy",
        "early_stopping_patience": 4, "early_stopping_threshold": 1.0,
    }  # fmt: skip
    result = trainforge.train(make_config(tiny_bert, tmp_path / "reviews.csv", tmp_path / "run", training=training))
    events = read_events(result.output_dir / "events.jsonl")
    # No extra final evaluation: metrics.json reuses the logged evaluation of the restored checkpoint.
    during = [e for e in events if e["event"] == "eval"]
    assert len(during) == 5
    best = max(during, key=lambda e: (e["metrics"]["accuracy"], -e["metrics"]["loss"], e["step"]))
    tied = [e for e in during if e["metrics"]["accuracy"] == best["metrics"]["accuracy"]]
    assert len(tied) >= 2 and best is not tied[0]  # a tie happened, and the earliest did not win it
    last_checkpoint = [e for e in events if e["event"] == "checkpoint"][-1]
    assert last_checkpoint["best"].endswith(f"checkpoint-{best['step']}")
    kept = [e for e in events if e["event"] == "best_checkpoint"]
    assert [(k["step"], k["metric"]) for k in kept] == [(best["step"], "accuracy")]
    stopped = [e for e in events if e["event"] == "early_stopped"]
    assert len(stopped) == 1 and stopped[0]["step"] == during[-1]["step"] < stopped[0]["max_steps"]
    metrics = json.loads((result.output_dir / "metrics.json").read_text())
    assert metrics["eval_accuracy"] == best["metrics"]["accuracy"] and metrics["best_global_step"] == best["step"]
    assert metrics["eval_loss"] == pytest.approx(best["metrics"]["loss"], rel=1e-5)
    assert f"step {best['step']}" in (result.output_dir / "README.md").read_text()


def test_failed_run_then_resume(tiny_bert, tmp_path, monkeypatch, capsys):
    from trainforge.training.callbacks import EventsCallback

    make_sentiment_frame(96).to_csv(tmp_path / "reviews.csv", index=False)
    training = {"max_steps": 6, "eval_strategy": "steps", "eval_steps": 2, "early_stopping_patience": None}
    config_path = tmp_path / "run.yaml"
    config_path.write_text(
        yaml.safe_dump(make_config(tiny_bert, tmp_path / "reviews.csv", tmp_path / "run", training=training))
    )

    def crash(self, args, state, control, **kwargs):
        if state.global_step == 3:
            raise RuntimeError("simulated crash at step 3")

    monkeypatch.setattr(EventsCallback, "on_step_end", crash, raising=False)
    code = main(["train", str(config_path)])
    err = capsys.readouterr().err
    assert code == 1
    assert "error: train failed: RuntimeError: simulated crash at step 3" in err and "Traceback" not in err
    run_dir = tmp_path / "run"
    events = read_events(run_dir / "events.jsonl")
    assert events[-1]["event"] == "run_failed" and "simulated crash" in events[-1]["error"]
    assert "Traceback" in events[-1]["traceback"]
    assert not (run_dir / "metrics.json").exists()
    assert (run_dir / "checkpoints" / "checkpoint-2").is_dir()

    monkeypatch.undo()
    assert main(["train", str(config_path)]) == 2  # a failed run is not silently overwritten
    assert "already holds a run" in capsys.readouterr().err
    assert main(["train", str(config_path), "--resume"]) == 0, capsys.readouterr().err
    events = read_events(run_dir / "events.jsonl")
    resumed = [e for e in events if e["event"] == "train_started"][-1]
    assert resumed["start_step"] == 2
    assert events[-1]["event"] == "run_finished"
    assert [e["step"] for e in events if e["event"] == "step"][-4:] == [3, 4, 5, 6]
    assert json.loads((run_dir / "metrics.json").read_text())["eval_accuracy"] >= 0


def test_a_model_no_better_than_the_commonest_class_is_named(tiny_bert, tmp_path, capsys):
    make_sentiment_frame(64).to_csv(tmp_path / "reviews.csv", index=False)
    # A learning rate too small to move the weights in one epoch: the run finishes, but has learned nothing.
    config = make_config(tiny_bert, tmp_path / "reviews.csv", tmp_path / "run", training={"num_train_epochs": 1})
    config["training"]["learning_rate"] = 1e-9
    result = trainforge.train(config, progress=True)
    err = capsys.readouterr().err
    if result.metrics["eval_accuracy"] <= 0.5:  # the held-out rows are balanced: 0.5 is "always one class"
        assert "no more accurate" in err and "has not learned the task" in err
    notes = [e["message"] for e in read_events(result.output_dir / "events.jsonl") if e["event"] == "note"]
    assert ("no more accurate" in " ".join(notes)) is (result.metrics["eval_accuracy"] <= 0.5)


@pytest.mark.parametrize(
    "eval_loss, advice",
    [
        (0.7, "with a higher training.learning_rate"),  # about ln 2: learned nothing, a larger step may help
        (1.86e6, "training.learning_rate (1e+06) is likely too high: lower it"),  # thrown off: the opposite advice
    ],
)
def test_a_no_better_than_majority_note_advises_by_the_evaluation_loss(eval_loss, advice):
    # learning_rate 1e6 (a typo of 1e-6) finished with eval loss 1.9e6 and the advice to raise the learning rate.
    from types import SimpleNamespace

    from trainforge.tasks.spec import Analysis, Prepared
    from trainforge.tasks.text_classification import _baseline_notes

    state = SimpleNamespace(
        best_global_step=2, global_step=2, log_history=[{"step": 2, "eval_accuracy": 0.5, "eval_loss": eval_loss}]
    )
    trainer = SimpleNamespace(state=state, args=SimpleNamespace(learning_rate=1e6))
    prepared = Prepared(train=None, eval={"labels": [0, 1, 0, 1]})
    (note,) = _baseline_notes(trainer, prepared, Analysis("single_label_classification", ("negative", "positive")))
    assert "no more accurate (0.500)" in note and advice in note
