"""image_classification end to end on a tiny ViT and a tiny ConvNeXt: class folders, multi-label lists, test split,
augmentation, best-checkpoint restore, reload with plain transformers' pipeline, predict."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from safetensors.numpy import load_file

import trainforge
from conftest import IMAGE_CLASSES, make_image, make_image_folder
from trainforge.training.events import read_events


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("TRAINFORGE_CACHE", str(tmp_path_factory.getbasetemp() / "image-cache"))


def config(model: str, source: Path, out: Path, **sections) -> dict:
    """A fast config: batch 8, a high learning rate, a loss logged every step."""
    base = {
        "task": "image_classification",
        "model": {"name": model},
        "data": {"source": str(source)},
        "training": {
            "num_train_epochs": 3,
            "learning_rate": 3e-3,
            "per_device_train_batch_size": 8,
            "logging_steps": 1,
        },
        "output": {"dir": str(out), "report_to": ["none"]},
    }
    for section, values in sections.items():
        base[section] = {**base.get(section, {}), **values}
    return base


def assert_loss_falls(run_dir: Path, window: int = 3) -> None:
    losses = [e["loss"] for e in read_events(run_dir / "events.jsonl") if e["event"] == "step"]
    assert len(losses) >= 2 * window and all(math.isfinite(x) for x in losses)
    first, last = sum(losses[:window]) / window, sum(losses[-window:]) / window
    assert last < first - 0.05, f"loss did not fall: {losses}"


def assert_weights_changed(base: str, run_dir: Path, prefix: str) -> None:
    before = load_file(str(Path(base) / "model.safetensors"))
    after = {k.removeprefix(prefix): v for k, v in load_file(str(run_dir / "model.safetensors")).items()}
    shared = [k for k in before if k in after]
    assert len(shared) == len(before), "the saved model lost base weights"
    changed = [k for k in shared if not np.array_equal(before[k], after[k])]
    assert len(changed) >= 0.8 * len(shared), f"only {len(changed)} of {len(shared)} tensors changed"


# ------------------------------------------------------------------------------------------------ single-label ViT


@pytest.fixture(scope="module")
def vit_run(tiny_vit, tmp_path_factory):
    """Class folders with train/, validation/ and test/ splits; augmentation on (the default)."""
    folder = tmp_path_factory.mktemp("vit-run")
    make_image_folder(folder / "data" / "train", per_class=16)
    make_image_folder(folder / "data" / "validation", per_class=4, seed=1)
    make_image_folder(folder / "data" / "test", per_class=4, seed=2)
    data = {"eval_split": "validation", "test_split": "test"}
    return trainforge.train(config(tiny_vit, folder / "data", folder / "run", data=data)), folder


def test_vit_loss_falls_and_weights_change(vit_run, tiny_vit):
    result, _ = vit_run
    assert_loss_falls(result.output_dir)
    assert_weights_changed(tiny_vit, result.output_dir, "vit.")
    assert result.train_rows == 32 and result.eval_rows == 8


def test_vit_metrics_and_run_folder(vit_run):
    result, _ = vit_run
    metrics = json.loads((result.output_dir / "metrics.json").read_text())
    for key in ("eval_accuracy", "eval_f1", "eval_roc_auc", "eval_loss", "test_accuracy", "test_f1", "train_loss"):
        assert math.isfinite(metrics[key]), key
    assert metrics["eval_accuracy"] >= 0.75 and metrics["test_accuracy"] >= 0.75
    assert (result.output_dir / "preprocessor_config.json").is_file()
    model_config = json.loads((result.output_dir / "config.json").read_text())
    assert model_config["id2label"] == {"0": "blue_disk", "1": "red_square"}


def test_vit_reloads_with_the_plain_pipeline(vit_run):
    from transformers import pipeline

    result, folder = vit_run
    classify = pipeline("image-classification", model=str(result.output_dir))
    right = 0
    for name in IMAGE_CLASSES:
        for path in sorted((folder / "data" / "test" / name).glob("*.png")):
            right += classify(str(path))[0]["label"] == name
    assert right >= 6  # of 8


def test_vit_predict_gives_labels_and_scores(vit_run):
    import base64

    result, folder = vit_run
    path = folder / "data" / "test" / "red_square" / "0.png"
    uri = "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()
    predicted = trainforge.predict(result.output_dir, pd.DataFrame({"image": [str(path), uri]}))
    assert list(predicted["prediction"]) == ["red_square", "red_square"]
    probabilities = predicted[["prob_blue_disk", "prob_red_square"]].to_numpy()
    assert np.allclose(probabilities.sum(axis=1), 1.0)
    assert predicted["prob_red_square"][0] == pytest.approx(predicted["prob_red_square"][1], abs=1e-5)


def test_vit_run_notes_and_events(vit_run):
    result, _ = vit_run
    events = read_events(result.output_dir / "events.jsonl")
    started = events[0]
    assert started["labels"] == ["blue_disk", "red_square"] and started["test_rows"] == 8
    assert events[-1]["event"] == "run_finished"


# ------------------------------------------------------------------------------------------------ multi-label ConvNeXt

COLOURS = {"red": (210, 40, 40), "blue": (40, 60, 210)}


def write_multi_label(folder: Path, rows: int, seed: int) -> Path:
    """``labels.jsonl``: images whose labels are [colour, shape], paths relative to the file."""
    (folder / "pics").mkdir(parents=True, exist_ok=True)
    records = []
    for i in range(rows):
        colour, shape = list(COLOURS)[i % 2], ["square", "disk"][(i // 2) % 2]
        make_image(COLOURS[colour], shape, seed * 1000 + i).save(folder / "pics" / f"{seed}-{i}.png")
        records.append({"file": f"pics/{seed}-{i}.png", "tags": [colour, shape]})
    path = folder / f"labels-{seed}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_convnext_multi_label_from_lists(tiny_convnext, tmp_path):
    from transformers import pipeline

    train = write_multi_label(tmp_path, 48, seed=0)
    valid = write_multi_label(tmp_path, 16, seed=1)
    data = {"eval_split": str(valid), "eval_fraction": None, "columns": {"image": "file", "label": "tags"}}
    cfg = config(tiny_convnext, train, tmp_path / "run", data=data, training={"num_train_epochs": 4})
    result = trainforge.train(cfg)
    assert result.labels.problem_type == "multi_label_classification"
    assert result.labels.names == ("blue", "disk", "red", "square")
    assert_loss_falls(result.output_dir)
    assert_weights_changed(tiny_convnext, result.output_dir, "convnext.")
    assert result.metrics["eval_f1_micro"] >= 0.7
    assert (result.output_dir / "thresholds.json").is_file()
    scores = pipeline("image-classification", model=str(result.output_dir))(str(tmp_path / "pics" / "1-0.png"))
    assert {s["label"] for s in scores} == {"blue", "disk", "red", "square"}
    predicted = trainforge.predict(result.output_dir, pd.DataFrame({"file": [str(tmp_path / "pics" / "1-0.png")]}))
    assert set(predicted["prediction"][0].split("|")) <= {"blue", "disk", "red", "square"}


# ------------------------------------------------------------------------------------------------ augmentation


def test_augmentation_is_on_for_training_only(tiny_vit, tmp_path):
    from trainforge.data.image_transforms import augmentation, batch_transform, pixel_values, processor_size
    from trainforge.tasks.image_classification import image_processor

    processor = image_processor(tiny_vit)
    path = str(make_image_folder(tmp_path, per_class=1) / "red_square" / "0.png")
    assert processor_size(processor) == (32, 32)
    augment = augmentation((32, 32), 0.5, seed=0)
    plain = pixel_values(processor, [path] * 4)
    augmented = pixel_values(processor, [path] * 4, augment)
    assert plain.shape == augmented.shape == (4, 3, 32, 32)
    assert np.allclose(plain[0], plain[3])  # evaluation is deterministic
    assert not np.allclose(augmented[0], augmented[1])  # training images differ per draw
    transform = batch_transform(processor, "image", None)
    assert transform({"labels": [1]}) == {"labels": [1]}  # column reads pass through


def test_augment_false_trains(tiny_vit, tmp_path):
    make_image_folder(tmp_path / "data", per_class=8)
    cfg = config(tiny_vit, tmp_path / "data", tmp_path / "run", params={"augment": False}, data={"eval_fraction": 0})
    cfg["training"]["num_train_epochs"] = 1
    result = trainforge.train(cfg)
    assert math.isfinite(result.metrics["train_loss"])


# ------------------------------------------------------------------------------------------------ checkpoints


def test_best_checkpoint_is_restored_for_renamed_modules(tiny_vit, tmp_path):
    """transformers 5.24's Trainer restores nothing for ViT (keys saved under their v4 names); ours converts them."""
    import torch
    from transformers import AutoModelForImageClassification

    from trainforge.training.hf_trainer import restore_weights

    model = AutoModelForImageClassification.from_pretrained(tiny_vit, num_labels=2)
    model.save_pretrained(tmp_path / "best")
    saved = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(1.0)
    plain = model.load_state_dict(load_file_torch(tmp_path / "best" / "model.safetensors"), strict=False)
    assert plain.missing_keys  # the plain Trainer's way: nothing matched
    restore_weights(model, tmp_path / "best")
    assert all(torch.equal(saved[k], v) for k, v in model.state_dict().items())


def load_file_torch(path: Path) -> dict:
    from safetensors.torch import load_file as load

    return load(str(path))


def test_vit_run_is_scored_by_evaluate_on_an_image_folder(vit_run):
    result, folder = vit_run
    evaluation = trainforge.evaluate(result.output_dir, folder / "data", split="test")
    assert evaluation.rows == 8 and evaluation.metrics["accuracy"] == pytest.approx(result.metrics["test_accuracy"])
