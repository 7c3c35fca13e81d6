"""A slice of real data: SST-2 sentences (GLUE TSV files) through text_classification on the tiny model."""

from __future__ import annotations

import json
import math

import pytest

import trainforge
from conftest import SHARED_DATA

SST2 = SHARED_DATA / "sst2"

pytestmark = pytest.mark.skipif(
    not (SST2 / "train.tsv").is_file() or not (SST2 / "test.tsv").is_file(),
    reason=f"SST-2 is not available at {SST2} (needs train.tsv and test.tsv)",
)


def test_sst2_slice(tiny_bert, tmp_path):
    config = {
        "task": "text_classification",
        "model": {"name": tiny_bert},
        "data": {
            "source": str(SST2 / "train.tsv"),
            "eval_split": str(SST2 / "test.tsv"),
            "columns": {"text": "sentence", "label": "label"},
            "max_train_rows": 400,
        },
        "training": {"num_train_epochs": 1, "learning_rate": 5e-3, "per_device_train_batch_size": 16},
        "params": {"max_length": 32, "label_names": ["negative", "positive"]},
        "output": {"dir": str(tmp_path / "sst2"), "report_to": ["none"]},
    }
    result = trainforge.train(config)
    assert result.train_rows == 400
    assert result.eval_rows == sum(1 for _ in (SST2 / "test.tsv").open()) - 1
    metrics = json.loads((result.output_dir / "metrics.json").read_text())
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
    assert 0.0 <= metrics["eval_accuracy"] <= 1.0
    model_config = json.loads((result.output_dir / "config.json").read_text())
    assert model_config["id2label"] == {"0": "negative", "1": "positive"}
