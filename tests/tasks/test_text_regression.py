"""text_regression end to end on a tiny BERT: training, artifacts, reload with plain transformers, predict."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from safetensors.numpy import load_file

import trainforge
from conftest import make_sentiment_frame
from trainforge.cli.main import main
from trainforge.training.events import read_events

REGRESSION_METRICS = ("eval_mse", "eval_mae", "eval_rmse", "eval_r2", "eval_explained_variance")


def make_config(model: str, source: Path, out: Path, **training) -> dict:
    return {
        "task": "text_regression",
        "model": {"name": model},
        "data": {"source": str(source), "columns": {"text": "review", "target": "score"}, "eval_fraction": 0.25},
        "training": {
            "num_train_epochs": 4, "learning_rate": 5e-3, "per_device_train_batch_size": 8, "warmup_ratio": 0.0,
            "logging_steps": 1, "early_stopping_patience": None, **training,
        },
        "params": {"max_length": 32},
        "output": {"dir": str(out), "report_to": ["tensorboard"]},
    }  # fmt: skip


@pytest.fixture(scope="module")
def regression(tiny_bert, tmp_path_factory):
    folder = tmp_path_factory.mktemp("regression")
    make_sentiment_frame(160).to_csv(folder / "scores.csv", index=False)  # score ~0 for positive, ~2 for negative
    return trainforge.train(make_config(tiny_bert, folder / "scores.csv", folder / "run"))


def test_loss_is_finite_and_falls(regression):
    losses = [e["loss"] for e in read_events(regression.output_dir / "events.jsonl") if e["event"] == "step"]
    assert len(losses) >= 8 and all(math.isfinite(loss) for loss in losses)
    assert sum(losses[-4:]) / 4 < 0.5 * sum(losses[:4]) / 4, losses


def test_metrics(regression):
    metrics = json.loads((regression.output_dir / "metrics.json").read_text())
    assert metrics == pytest.approx(regression.metrics)
    for key in REGRESSION_METRICS:
        assert math.isfinite(metrics[key]), key
    assert metrics["eval_rmse"] == pytest.approx(math.sqrt(metrics["eval_mse"]), rel=1e-5)
    assert metrics["eval_r2"] > 0.5  # the sentiment words decide the score
    assert regression.labels.problem_type == "regression"


def test_parameters_changed(regression, tiny_bert):
    base = load_file(str(Path(tiny_bert) / "model.safetensors"))
    tuned = {
        k.removeprefix("bert."): v for k, v in load_file(str(regression.output_dir / "model.safetensors")).items()
    }
    encoder = [k for k in base if k.startswith("encoder.")]
    assert encoder and all(not np.array_equal(base[k], tuned[k]) for k in encoder)
    assert tuned["classifier.weight"].shape == (1, 32)


def test_artifacts(regression):
    run_dir = regression.output_dir
    model_config = json.loads((run_dir / "config.json").read_text())
    assert model_config["problem_type"] == "regression" and model_config["id2label"] == {"0": "target"}
    assert (run_dir / "tokenizer.json").is_file()
    assert any((run_dir / "tensorboard").iterdir())
    kinds = [e["event"] for e in read_events(run_dir / "events.jsonl")]
    assert kinds[:2] == ["run_started", "train_started"] and kinds[-1] == "run_finished" and "eval" in kinds
    card = (run_dir / "README.md").read_text()
    assert yaml.safe_load(card.split("---\n")[1])["tags"] == ["trainforge", "text_regression"]
    assert "| rmse |" in card
    assert trainforge.load_config(run_dir / "config.resolved.yaml").task == "text_regression"


def test_reloads_with_plain_transformers(regression):
    from transformers import pipeline

    scorer = pipeline("text-classification", model=str(regression.output_dir), function_to_apply="none", device="cpu")
    low, high = scorer(["a great and lovely film", "a dull and boring plot"])
    assert low["label"] == high["label"] == "target"
    assert low["score"] < high["score"]


def test_predict_cli(regression, tmp_path, capsys):
    inputs = make_sentiment_frame(12, seed=4)
    inputs.to_json(tmp_path / "new.jsonl", orient="records", lines=True)
    output = tmp_path / "scores.parquet"
    code = main(
        ["predict", str(regression.output_dir), "--input", str(tmp_path / "new.jsonl"), "--output", str(output)]
    )
    assert code == 0, capsys.readouterr().err
    predictions = pd.read_parquet(output)
    assert list(predictions.columns) == [*inputs.columns, "prediction"]
    assert predictions["prediction"].dtype.kind == "f"
    assert np.corrcoef(predictions["prediction"], inputs["score"])[0, 1] > 0.8


def test_numeric_strings_and_weights(tiny_bert, tmp_path):
    frame = make_sentiment_frame(48)
    frame["score"] = frame["score"].map(lambda v: f"{v:.3f}")
    frame["weight"] = 2.0
    frame.to_csv(tmp_path / "scores.tsv", sep="\t", index=False)
    config = make_config(tiny_bert, tmp_path / "scores.tsv", tmp_path / "run", num_train_epochs=1)
    config["data"]["columns"]["sample_weight"] = "weight"
    config["output"]["report_to"] = ["none"]
    result = trainforge.train(config)
    assert all(math.isfinite(result.metrics[key]) for key in REGRESSION_METRICS)
    assert result.train_rows == 36 and result.eval_rows == 12
