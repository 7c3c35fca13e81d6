"""image_regression end to end: metadata.jsonl with one target (ViT), list targets (ConvNeXt), the reference's YAML."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from test_image_classification import assert_loss_falls, assert_weights_changed

import trainforge
from conftest import make_redness_images


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("TRAINFORGE_CACHE", str(tmp_path_factory.getbasetemp() / "image-cache"))


def write_split(folder: Path, rows: int, seed: int, lists: bool = False) -> list[dict]:
    records = make_redness_images(folder, rows, seed)
    for record in records:
        record["target"] = [record["redness"], record["blueness"]] if lists else record["redness"]
    (folder / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return records


def config(model: str, source: Path, out: Path, **sections) -> dict:
    base = {
        "task": "image_regression",
        "model": {"name": model},
        "data": {"source": str(source), "eval_split": "valid"},
        "training": {
            "num_train_epochs": 4,
            "learning_rate": 3e-3,
            "per_device_train_batch_size": 8,
            "logging_steps": 1,
        },
        "output": {"dir": str(out), "report_to": ["none"]},
    }
    for section, values in sections.items():
        base[section] = {**base.get(section, {}), **values}
    return base


@pytest.fixture(scope="module")
def vit_run(tiny_vit, tmp_path_factory):
    """``train/`` and ``valid/`` folders of images with metadata.jsonl (file_name, target), augmentation on."""
    folder = tmp_path_factory.mktemp("regression")
    write_split(folder / "data" / "train", 48, seed=0)
    valid = write_split(folder / "data" / "valid", 16, seed=1)
    return trainforge.train(config(tiny_vit, folder / "data", folder / "run")), folder, valid


def test_loss_falls_weights_change_and_beats_the_mean(vit_run, tiny_vit):
    result, _, valid = vit_run
    assert_loss_falls(result.output_dir)
    assert_weights_changed(tiny_vit, result.output_dir, "vit.")
    targets = np.array([r["target"] for r in valid])
    spread = float(np.sqrt(((targets - targets.mean()) ** 2).mean()))  # RMSE of predicting the mean
    assert result.metrics["eval_rmse"] < 0.8 * spread
    for key in ("eval_mse", "eval_mae", "eval_r2", "eval_explained_variance", "eval_loss"):
        assert math.isfinite(result.metrics[key]), key


def test_reloads_with_the_plain_pipeline_and_predicts_values(vit_run):
    from transformers import pipeline

    result, folder, valid = vit_run
    paths = [str(folder / "data" / "valid" / r["file_name"]) for r in valid]
    scored = pipeline("image-classification", model=str(result.output_dir))(paths[0])
    assert scored[0]["label"] == "target"  # the raw regression output (no softmax/sigmoid)
    predicted = trainforge.predict(result.output_dir, pd.DataFrame({"image": paths}))
    assert predicted["prediction"][0] == pytest.approx(scored[0]["score"], abs=1e-4)
    truth = np.array([r["target"] for r in valid])
    assert np.corrcoef(predicted["prediction"], truth)[0, 1] > 0.5


def test_list_targets_on_convnext(tiny_convnext, tmp_path):
    write_split(tmp_path / "data" / "train", 48, seed=0, lists=True)
    write_split(tmp_path / "data" / "valid", 16, seed=1, lists=True)
    params = {"target_names": ["redness", "blueness"]}
    result = trainforge.train(config(tiny_convnext, tmp_path / "data", tmp_path / "run", params=params))
    assert result.labels.names == ("redness", "blueness")
    assert_loss_falls(result.output_dir)
    assert_weights_changed(tiny_convnext, result.output_dir, "convnext.")
    image = str(tmp_path / "data" / "valid" / "images" / "0.png")
    predicted = trainforge.predict(result.output_dir, pd.DataFrame({"image": [image]}))
    assert {"prediction_redness", "prediction_blueness"} <= set(predicted.columns)


def test_reference_image_scoring_config_maps(tiny_vit, tmp_path):
    """The reference's configs/image_scoring/local.yml shape: folders with metadata.jsonl, image/target columns."""
    from trainforge.config.loading import load_config

    write_split(tmp_path / "data" / "train", 12, seed=0)
    write_split(tmp_path / "data" / "valid", 6, seed=1)
    raw = {
        "task": "image-scoring",
        "base_model": tiny_vit,
        "project_name": str(tmp_path / "run"),
        "log": "tensorboard",
        "backend": "local",
        "data": {
            "path": str(tmp_path / "data"),
            "train_split": "train",
            "valid_split": "valid",
            "column_mapping": {"image_column": "image", "target_column": "target"},
        },
        "params": {"epochs": 2, "batch_size": 4, "lr": 2e-5, "mixed_precision": "fp16"},
        "hub": {"username": "${HF_USERNAME}", "token": "${HF_TOKEN}", "push_to_hub": False},
    }
    path = tmp_path / "local.yml"
    path.write_text(yaml.safe_dump(raw))
    loaded = load_config(path)
    assert loaded.task == "image_regression" and loaded.data.columns == {"image": "image", "target": "target"}
    report = trainforge.validate(loaded)
    assert report.train_rows == 12 and report.eval_rows == 6
