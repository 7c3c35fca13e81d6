"""Multi-label decision thresholds: evaluation and predict use the same ones, tuned on the eval split by default."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import f1_score

import trainforge
from trainforge.metrics.classification import THRESHOLD_GRID, multi_label_metrics, tune_thresholds

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_text_classification import LONGER, make_config, tagged_frame  # noqa: E402

NAMES = ["negative", "plot", "positive"]


def train_tagged(tiny_bert: str, tmp_path: Path, **params):
    frame = tagged_frame()
    frame.iloc[:120].to_json(tmp_path / "train.jsonl", orient="records", lines=True)
    frame.iloc[120:].to_json(tmp_path / "valid.jsonl", orient="records", lines=True)
    config = make_config(
        tiny_bert, tmp_path, tmp_path / "run",
        data={"columns": {"text": "review", "label": "tags"}, "eval_split": "valid", "eval_fraction": None},
        params=params, training=LONGER,
    )  # fmt: skip
    return trainforge.train(config), frame.iloc[120:]


def predicted_f1(result, rows) -> float:
    predictions = trainforge.predict(result.output_dir, rows.drop(columns=["tags"]))
    chosen = [set(filter(None, str(p).split("|"))) for p in predictions["prediction"].fillna("")]
    truth = np.array([[n in tags for n in NAMES] for tags in rows["tags"]], dtype=int)
    return f1_score(truth, np.array([[n in c for n in NAMES] for c in chosen], dtype=int), average="micro")


def test_a_fixed_threshold_gives_the_same_f1_in_metrics_and_predict(tiny_bert, tmp_path):
    result, eval_rows = train_tagged(tiny_bert, tmp_path, threshold=0.3, threshold_tuning="none")
    metrics = json.loads((result.output_dir / "metrics.json").read_text())
    assert metrics["eval_threshold"] == pytest.approx(0.3)
    assert predicted_f1(result, eval_rows) == pytest.approx(metrics["eval_f1_micro"], abs=1e-6)
    stored = json.loads((result.output_dir / "thresholds.json").read_text())
    assert stored == {"mode": "none", "thresholds": dict.fromkeys(NAMES, 0.3)}


@pytest.mark.parametrize("mode", ["global", "per_label"])
def test_tuned_thresholds_are_stored_and_used_by_predict(tiny_bert, tmp_path, mode):
    result, eval_rows = train_tagged(tiny_bert, tmp_path, threshold_tuning=mode)
    metrics = json.loads((result.output_dir / "metrics.json").read_text())
    assert {"eval_f1_micro_at_0_5", "eval_subset_accuracy_at_0_5", "eval_no_label_rate", "eval_threshold"} <= set(
        metrics
    )
    if mode == "global":  # tuned for micro F1 on these rows: never worse than 0.5 (per label tunes each label's F1)
        assert metrics["eval_f1_micro"] >= metrics["eval_f1_micro_at_0_5"]
    stored = json.loads((result.output_dir / "thresholds.json").read_text())
    assert stored["mode"] == mode and set(stored["thresholds"]) == set(NAMES)
    if mode == "global":
        assert len(set(stored["thresholds"].values())) == 1
    assert predicted_f1(result, eval_rows) == pytest.approx(metrics["eval_f1_micro"], abs=1e-6)


def test_tune_thresholds_finds_the_best_value_and_prefers_one_near_half_on_ties():
    truth = np.array([[1, 0], [0, 1], [1, 1], [0, 0]])
    probabilities = np.array([[0.3, 0.1], [0.1, 0.35], [0.32, 0.4], [0.05, 0.2]])
    (best,) = set(tune_thresholds(truth, probabilities))
    assert multi_label_metrics(truth, probabilities, best)["f1_micro"] == 1.0 and 0.2 < best <= 0.3
    per_label = tune_thresholds(truth, probabilities, per_label=True)
    assert multi_label_metrics(truth, probabilities, per_label)["f1_micro"] == 1.0
    separable = np.array([[0.9, 0.9], [0.1, 0.9], [0.9, 0.9], [0.1, 0.1]])
    assert set(tune_thresholds(truth, separable)) == {0.5}  # every value in (0.1, 0.9] ties: the closest to 0.5
    assert THRESHOLD_GRID.min() > 0 and THRESHOLD_GRID.max() < 1


def test_a_model_that_predicts_nothing_is_named(tiny_bert, tmp_path, capsys):
    result, _ = train_tagged(tiny_bert, tmp_path, threshold=0.98, threshold_tuning="none")
    assert "predicts no label for" in capsys.readouterr().err
    assert json.loads((result.output_dir / "metrics.json").read_text())["eval_no_label_rate"] > 0.5
