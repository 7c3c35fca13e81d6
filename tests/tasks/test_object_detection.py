"""object_detection end to end on a tiny DETR (transformers ResNet backbone) and synthetic shapes with COCO boxes.

The tiny detectors and the shape images come from ``_detection_fixtures.py``: images of red squares and blue bars on
noise, their boxes written as COCO JSON or as the reference's ``metadata.jsonl`` with ``objects: {bbox, category}``.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from safetensors.numpy import load_file

import trainforge
from trainforge.errors import DataError
from trainforge.training.events import read_events

sys.path.insert(0, str(Path(__file__).parent))
from _detection_fixtures import NAMES, build_tiny_detector, make_shapes  # noqa: E402

TASK = "object_detection"


def make_config(model: str, train: Path, valid: Path | None, out: Path, **sections) -> dict:
    """A fast config: 64-pixel images, batch 4, a high learning rate, a loss logged every step."""
    config = {
        "task": TASK,
        "model": {"name": model},
        "data": {"source": str(train), **({"eval_split": str(valid)} if valid else {"eval_fraction": 0})},
        "training": {
            "num_train_epochs": 6,
            "learning_rate": 3e-3,
            "per_device_train_batch_size": 4,
            "logging_steps": 1,
        },
        "params": {"image_size": 64},
        "output": {"dir": str(out), "report_to": ["none"], "keep_checkpoints": True},
    }
    for section, values in sections.items():
        config[section] = {**config.get(section, {}), **values}
    return config


@pytest.fixture(scope="module")
def tiny_detr(tmp_path_factory) -> str:
    """The tiny DETR: ResNet backbone (transformers), 1 encoder and 1 decoder layer, 10 queries, 64-pixel images."""
    return build_tiny_detector(tmp_path_factory.mktemp("tiny-detr"))


@pytest.fixture(scope="module")
def shapes(tmp_path_factory) -> dict[str, Path]:
    """COCO shape data: 24 training images (2 without objects), 9 evaluation and 4 test images, 64x48 pixels.

    9 evaluation images in batches of 8: the last batch holds one image, with 3 boxes (see the pycocotools test).
    """
    root = tmp_path_factory.mktemp("shapes")
    return {
        "train": make_shapes(root / "train", 22, seed=0, negatives=2),
        "valid": make_shapes(root / "valid", 9, seed=1),
        "test": make_shapes(root / "test", 4, seed=5),
        "root": root,
    }


@pytest.fixture(scope="module")
def run(tiny_detr, shapes, tmp_path_factory):
    """One training run shared by the tests that inspect what it left behind."""
    out = tmp_path_factory.mktemp("run") / "run"
    config = make_config(tiny_detr, shapes["train"], shapes["valid"], out)
    config["data"]["test_split"] = str(shapes["test"])
    return trainforge.train(config)


def test_loss_is_finite_and_falls(run):
    losses = [e["loss"] for e in read_events(run.output_dir / "events.jsonl") if e["event"] == "step"]
    assert len(losses) >= 30 and all(math.isfinite(loss) for loss in losses)
    first, last = np.mean(losses[:6]), np.mean(losses[-6:])
    assert last < first - 0.3, losses
    evals = [e["metrics"]["loss"] for e in read_events(run.output_dir / "events.jsonl") if e["event"] == "eval"]
    assert evals[-1] < evals[0], evals


def test_parameters_changed(run, tiny_detr):
    before, after = load_file(f"{tiny_detr}/model.safetensors"), load_file(f"{run.output_dir}/model.safetensors")
    assert before.keys() == after.keys()  # saved in the checkpoint's own (original) key layout
    changed = [k for k in before if not np.allclose(before[k], after[k])]
    assert len(changed) > len(before) // 2


def test_metrics_are_cocoeval_keys_in_unit_range(run):
    metrics = run.metrics
    for key in ("eval_map", "eval_map_50", "eval_map_75", "eval_mar_1", "eval_mar_10", "eval_mar_100"):
        assert key in metrics, sorted(metrics)
    scores = {k: v for k, v in metrics.items() if k.startswith(("eval_map", "eval_mar"))}
    assert all(0.0 <= v <= 1.0 for v in scores.values()), scores
    assert {f"eval_map_{name}" for name in NAMES} <= scores.keys()  # per class, named by category
    assert 0.0 <= metrics["test_map_50"] <= 1.0 and "test_mar_100" in metrics  # data.test_split, scored once
    stored = json.loads((run.output_dir / "metrics.json").read_text())
    assert stored["eval_map_50"] == pytest.approx(metrics["eval_map_50"])


def test_metrics_equal_a_plain_pycocotools_evaluation(run, shapes):
    """The reported mAP is COCOeval's on the evaluation JSON itself, with the model's post-processed detections.

    The last evaluation batch holds 1 image with 3 boxes: accelerate cuts the last batch's tensors to 1 row, which
    would drop 2 of its ground-truth boxes if they were a per-image tensor (as in Hugging Face's example).
    """
    import contextlib
    import io

    import torch
    from PIL import Image
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    from transformers import AutoImageProcessor, AutoModelForObjectDetection

    processor = AutoImageProcessor.from_pretrained(run.output_dir)
    model = AutoModelForObjectDetection.from_pretrained(run.output_dir).eval()
    data = json.loads(shapes["valid"].read_text())
    assert sum(a["image_id"] == 9 for a in data["annotations"]) == 3
    results = []
    for image in data["images"]:
        pixels = Image.open(shapes["valid"].parent / "images" / image["file_name"]).convert("RGB")
        with torch.no_grad():
            outputs = model(**processor(images=pixels, return_tensors="pt"))
        found = processor.post_process_object_detection(outputs, threshold=0.0, target_sizes=[(48, 64)])[0]
        triples = zip(found["boxes"].tolist(), found["labels"], found["scores"], strict=True)
        for (x1, y1, x2, y2), label, score in triples:
            box = [x1, y1, x2 - x1, y2 - y1]
            results.append(
                {"image_id": image["id"], "category_id": int(label) + 1, "bbox": box, "score": float(score)}
            )
    with contextlib.redirect_stdout(io.StringIO()):
        truth = COCO(str(shapes["valid"]))
        evaluation = COCOeval(truth, truth.loadRes(results), "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    assert run.metrics["eval_map"] == pytest.approx(evaluation.stats[0], abs=1e-12)
    assert run.metrics["eval_map_50"] == pytest.approx(evaluation.stats[1], abs=1e-12)
    assert run.metrics["eval_mar_100"] == pytest.approx(evaluation.stats[8], abs=1e-12)


def test_best_checkpoint_is_the_saved_model(run):
    """The kept checkpoint's weights are the run's (the Trainer's own restore would miss renamed keys)."""
    kept = [e for e in read_events(run.output_dir / "events.jsonl") if e["event"] == "best_checkpoint"][-1]
    checkpoint = run.output_dir / "checkpoints" / f"checkpoint-{kept['step']}"
    saved, best = load_file(f"{run.output_dir}/model.safetensors"), load_file(f"{checkpoint}/model.safetensors")
    assert all(np.array_equal(saved[k], best[k]) for k in saved)


def test_reloads_with_plain_transformers_pipeline(run, shapes):
    from transformers import pipeline

    detector = pipeline("object-detection", model=str(run.output_dir))
    found = detector(str(shapes["root"] / "valid" / "images" / "1-0.png"), threshold=0.0)
    assert found and set(found[0]) == {"score", "label", "box"}
    assert {item["label"] for item in found} <= set(NAMES)
    assert all(0 <= item["box"]["xmin"] <= item["box"]["xmax"] <= 64 for item in found)


def test_predict_returns_boxes_and_draws_them(run, shapes, tmp_path):
    images = sorted(str(p) for p in (shapes["root"] / "valid" / "images").glob("*.png"))[:3]
    frame = pd.DataFrame({"image": images})
    predictor = trainforge.load_predictor(
        run.output_dir, ["params.threshold=0.01", f"params.draw_dir={tmp_path / 'drawn'}"]
    )
    out = predictor.predict(frame)
    assert len(out) == 3 and all(isinstance(items, list) for items in out["prediction"])
    first = out["prediction"][0]
    assert first, "no box above 0.01"
    assert set(first[0]) == {"label", "score", "box"} and len(first[0]["box"]) == 4
    assert [item["score"] for item in first] == sorted((item["score"] for item in first), reverse=True)
    x, y, w, h = first[0]["box"]
    assert 0 <= x and 0 <= y and w > 0 and h > 0 and x + w <= 64.01 and y + h <= 48.01  # [x, y, w, h] pixels
    assert all(Path(p).is_file() and p.endswith(".boxes.png") for p in out["drawn"])
    corners = trainforge.load_predictor(run.output_dir, ["params.threshold=0.01", "params.box_format=xyxy"])
    x1, y1, x2, y2 = corners.predict(frame)["prediction"][0][0]["box"]
    assert (x1, y1) == pytest.approx((x, y), abs=0.02) and (x2, y2) == pytest.approx((x + w, y + h), abs=0.02)


def test_predict_names_a_missing_image(run):
    predictor = trainforge.load_predictor(run.output_dir)
    with pytest.raises(DataError, match="image file not found"):
        predictor.predict(pd.DataFrame({"image": ["/nonexistent/x.png"]}))
    with pytest.raises(DataError, match="no column 'image'"):
        predictor.predict(pd.DataFrame({"path": ["x.png"]}))


# ------------------------------------------------------------------------------------------------ data formats


def test_coco_json_is_read_with_categories_in_id_order(tiny_detr, shapes, tmp_path):
    report = trainforge.validate(make_config(tiny_detr, shapes["train"], shapes["valid"], tmp_path / "run"))
    assert report.labels == tuple(NAMES)  # COCO category ids 1, 2
    assert report.train_rows == 24 and report.eval_rows == 9
    assert report.facts["boxes"]["train"] > 22 and set(report.facts["training_boxes_per_category"]) == set(NAMES)
    assert any("2 image(s) have no boxes" in note for note in report.notes)


def test_coco_folder_with_split_files(tiny_detr, shapes, tmp_path):
    """A folder holding train.json / valid.json and images/ (the BCCD layout)."""
    folder = tmp_path / "coco"
    (folder / "images").mkdir(parents=True)
    for split in ("train", "valid"):
        data = json.loads(shapes[split].read_text())
        for image in data["images"]:
            name = f"{split}-{image['file_name']}"
            (folder / "images" / name).write_bytes((shapes[split].parent / "images" / image["file_name"]).read_bytes())
            image["file_name"] = name
        (folder / f"{split}.json").write_text(json.dumps(data))
    config = make_config(tiny_detr, folder, None, tmp_path / "run")
    config["data"] = {"source": str(folder), "train_split": "train", "eval_split": "valid"}
    report = trainforge.validate(config)
    assert (report.train_rows, report.eval_rows) == (24, 9)


def test_reference_metadata_layout(tiny_detr, tmp_path):
    """Split folders of images with metadata.jsonl holding objects: {bbox, category} (the reference's shape)."""
    make_shapes(tmp_path / "data" / "train", 10, seed=2, layout="metadata")
    make_shapes(tmp_path / "data" / "validation", 4, seed=3, layout="metadata")
    config = make_config(tiny_detr, tmp_path / "data", None, tmp_path / "run")
    config["data"] = {"source": str(tmp_path / "data"), "train_split": "train", "eval_split": "validation"}
    report = trainforge.validate(config)
    assert report.labels == tuple(sorted(NAMES)) and (report.train_rows, report.eval_rows) == (10, 4)


def test_csv_of_paths_with_objects_as_json_text_and_integer_categories(tiny_detr, tmp_path):
    path = make_shapes(tmp_path / "data", 8, seed=4, layout="metadata")
    records = [json.loads(line) for line in path.read_text().splitlines()]
    rows = []
    for record in records:
        objects = record["objects"]
        objects["category"] = [NAMES.index(c) for c in objects["category"]]
        rows.append({"path": record["file_name"], "boxes": json.dumps(objects)})
    pd.DataFrame(rows).to_csv(tmp_path / "data" / "boxes.csv", index=False)
    config = make_config(tiny_detr, tmp_path / "data" / "boxes.csv", None, tmp_path / "run")
    config["data"]["columns"] = {"image": "path", "objects": "boxes"}
    config["params"]["label_names"] = NAMES
    report = trainforge.validate(config)
    assert report.labels == tuple(NAMES) and report.train_rows == 8


def test_boxes_within_a_pixel_of_the_edge_are_clipped_with_a_note(tiny_detr, shapes, tmp_path):
    data = json.loads(shapes["train"].read_text())
    data["annotations"][0]["bbox"] = [60.5, 0.0, 4.0, 10.0]  # 0.5 px past the right edge of a 64-pixel image
    data["annotations"][1]["bbox"] = [-3.0, 2.0, 10.0, 10.0]  # 3 px past the left edge
    (shapes["train"].parent / "edges.json").write_text(json.dumps(data))
    config = make_config(tiny_detr, shapes["train"].parent / "edges.json", None, tmp_path / "run")
    with pytest.raises(DataError, match=r"1 boxes beyond their image's edge: row 1 \(0-0.png\) box 2"):
        trainforge.validate(config)
    config["params"]["clip_boxes"] = True
    notes = trainforge.validate(config).notes
    assert any("1 box(es) crossed the image's edge by at most 1 pixel" in n for n in notes), notes
    assert any("1 box(es) crossing the image's edge were clipped" in n for n in notes), notes


def test_coco_structure_problems_are_listed_together(tiny_detr, shapes, tmp_path):
    data = json.loads(shapes["train"].read_text())
    data["images"].append(dict(data["images"][0]))  # a duplicate image id
    data["annotations"][0]["category_id"] = 9
    data["annotations"][1]["image_id"] = 999
    path = shapes["train"].parent / "broken.json"
    path.write_text(json.dumps(data))
    with pytest.raises(DataError) as failure:
        trainforge.validate(make_config(tiny_detr, path, None, tmp_path / "run"))
    message = str(failure.value)
    assert "3 problem(s)" in message and "image id 1 is used twice" in message
    assert "category_id 9 is not among the categories (1 (red_square), 2 (blue_bar))" in message
    assert "refers to image id 999" in message


# ------------------------------------------------------------------------------------------------ the detectors


@pytest.mark.parametrize("kind", ["conditional_detr", "deformable_detr", "rt_detr", "yolos"])
def test_other_detectors_train_and_reload_without_torchvision(kind, shapes, tmp_path):
    """Each detector family trains a few steps, scores, and loads in the plain pipeline; no torchvision or timm."""
    import importlib.util

    from transformers import pipeline

    assert importlib.util.find_spec("torchvision") is None and importlib.util.find_spec("timm") is None
    model = build_tiny_detector(tmp_path / kind, kind)
    config = make_config(model, shapes["train"], shapes["valid"], tmp_path / "run")
    config["training"] = {**config["training"], "max_steps": 4, "eval_strategy": "no"}
    config["output"]["save_checkpoints"] = False
    result = trainforge.train(config)
    assert math.isfinite(result.metrics["eval_loss"]) and 0 <= result.metrics["eval_map_50"] <= 1
    found = pipeline("object-detection", model=str(result.output_dir))(
        str(shapes["root"] / "valid" / "images" / "1-1.png"), threshold=0.0
    )
    assert found and {item["label"] for item in found} <= set(NAMES)


def test_converted_checkpoint_weights_load_back(tiny_detr, tmp_path):
    """A DETR checkpoint (original key layout) restores every weight through the detection trainer's loader."""
    import torch
    from transformers import AutoModelForObjectDetection

    from trainforge.training.hf_trainer import restore_weights

    model = AutoModelForObjectDetection.from_pretrained(tiny_detr)
    original = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(1.0)
    restore_weights(model, tiny_detr)
    assert all(torch.equal(original[k], v) for k, v in model.state_dict().items())


# ------------------------------------------------------------------------------------------------ metrics


def test_coco_metrics_perfect_empty_and_partial():
    from trainforge.metrics.detection import Detections, coco_metrics

    truth = [
        Detections(np.array([[10, 10, 20, 20], [50, 50, 60, 40]]), np.array([0, 1]), width=200, height=200),
        Detections(np.zeros((0, 4)), np.zeros(0, int), width=100, height=100),
    ]
    perfect = [
        Detections(truth[0].boxes, truth[0].labels, np.array([0.9, 0.8])),
        Detections(np.zeros((0, 4)), np.zeros(0, int), np.zeros(0)),
    ]
    scores = coco_metrics(truth, perfect, ["a", "b"])
    assert scores["map"] == pytest.approx(1.0) and scores["map_a"] == pytest.approx(1.0)
    assert "map_large" not in scores  # no large object: COCOeval's -1 is left out
    nothing = [Detections(np.zeros((0, 4)), np.zeros(0, int), np.zeros(0))] * 2
    assert coco_metrics(truth, nothing, ["a", "b"])["map"] == 0.0
    shifted = [Detections(truth[0].boxes + [3, 3, 0, 0], truth[0].labels, np.array([0.9, 0.8])), nothing[0]]
    partial = coco_metrics(truth, shifted, ["a", "b"])
    assert 0 < partial["map"] < partial["map_50"] <= 1.0
