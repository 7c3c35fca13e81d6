"""Bad inputs of object_detection: boxes outside their image, without area or not 4 numbers, unknown categories,
missing and corrupt images, broken COCO structure, models that are not detectors. Each message names the file, the
image and the box at fault.

``{detr}`` is the tiny DETR with its image processor (tests/tasks/_detection_fixtures.py). Images are 64x48 PNGs
written by the case under ``{tmp}/data/images``; boxes are COCO JSON (``{tmp}/data/train.json``) or the reference's
``metadata.jsonl`` (``objects: {bbox, category}``).
"""

from __future__ import annotations

import io
import json
from functools import cache

from bad_inputs.cases import CliCase, _merge, csv_text, jsonl_text

CATEGORIES = [{"id": 1, "name": "red_square"}, {"id": 2, "name": "blue_bar"}]
IMAGES = 4
GOOD = [(i, 1 + i % 2, [8.0, 6.0, 12.0, 10.0]) for i in range(IMAGES)]  # (image index, category id, [x, y, w, h])


@cache
def png(seed: int = 0) -> bytes:
    """A 64x48 PNG with shapes on noise (the tests' detection images)."""
    import random

    from _detection_fixtures import shape_image

    buffer = io.BytesIO()
    shape_image(random.Random(seed), 64, 48)[0].save(buffer, format="PNG")
    return buffer.getvalue()


def images(count: int = IMAGES) -> dict:
    return {f"data/images/{i}.png": (lambda i=i: png(i)) for i in range(count)}


def coco(boxes=GOOD, count: int = IMAGES, **extra) -> str:
    """COCO JSON of ``count`` images ``images/<i>.png`` (ids 1..count) and ``boxes``; ``extra`` keys replace parts."""
    data = {
        "images": [{"id": i + 1, "file_name": f"{i}.png", "width": 64, "height": 48} for i in range(count)],
        "annotations": [
            {"id": n + 1, "image_id": i + 1, "category_id": c, "bbox": box, "iscrowd": 0}
            for n, (i, c, box) in enumerate(boxes)
        ],
        "categories": CATEGORIES,
    }
    return json.dumps({**data, **extra})


def with_box(box, category: int = 1) -> dict:
    """The good data with the first image's box replaced."""
    return {**images(), "data/train.json": coco([(0, category, box), *GOOD[1:]])}


def metadata(records: list[dict], count: int = IMAGES) -> dict:
    """``{tmp}/data/train/`` images with metadata.jsonl (``file_name``, ``objects``)."""
    files = {f"data/train/{i}.png": (lambda i=i: png(i)) for i in range(count)}
    return {**files, "data/train/metadata.jsonl": jsonl_text(records)}


def good_records(count: int = IMAGES) -> list[dict]:
    return [
        {"file_name": f"{i}.png", "objects": {"bbox": [[8, 6, 12, 10]], "category": ["red_square"]}}
        for i in range(count)
    ]


def od(**sections) -> dict:
    """A fast object_detection config on the tiny DETR and ``{tmp}/data/train.json``; sections merge into it."""
    base = {
        "task": "object_detection",
        "model": {"name": "{detr}"},
        "data": {"source": "{tmp}/data/train.json", "eval_fraction": 0},
        "training": {"num_train_epochs": 1, "learning_rate": 0.001, "per_device_train_batch_size": 2},
        "params": {"image_size": 64},
        "output": {"dir": "{tmp}/run", "report_to": ["none"], "save_checkpoints": False},
    }
    return _merge(base, sections)


META = {"data": {"source": "{tmp}/data", "train_split": "train"}}
DATA = {**images(), "data/train.json": coco()}
TIMM_DETR = json.dumps({"model_type": "detr", "use_timm_backbone": True, "backbone": "resnet50", "num_queries": 10})

# fmt: off
CLI_CASES = [
    CliCase("od-box-outside-image", "validate", od(), with_box([50.0, 10.0, 30.0, 10.0]),
            fragments=("{tmp}/data/train.json: 1 boxes beyond their image's edge: row 1 (0.png) box 1",
                       "[50.0, 10.0, 30.0, 10.0] in a 64x48 image", "params.clip_boxes: true")),
    CliCase("od-box-outside-image-train", "train", od(), with_box([50.0, 10.0, 30.0, 10.0]),
            fragments=("boxes beyond their image's edge",)),
    CliCase("od-zero-area-box", "validate", od(), with_box([10.0, 10.0, 0.0, 5.0]),
            fragments=("1 boxes without area (width or height 0 or negative): row 1 (0.png) box 1",)),
    CliCase("od-corners-written-as-size", "validate", od(), with_box([30.0, 20.0, 10.0, 8.0 - 20.0]),
            fragments=("boxes without area", "[x_min, y_min, x_max, y_max]")),
    CliCase("od-box-entirely-outside", "validate", od(params={"clip_boxes": True}), with_box([70.0, 10.0, 5.0, 5.0]),
            fragments=("1 boxes entirely outside their image: row 1 (0.png) box 1",)),
    CliCase("od-bbox-not-four-numbers", "validate", od(), with_box([10.0, 10.0, 5.0]),
            fragments=("boxes that are not 4 finite numbers [x, y, width, height]: row 1 (0.png) box 1",
                       "[10.0, 10.0, 5.0]")),
    CliCase("od-bbox-strings", "validate", od(), with_box(["10", "10", "5", "5"]),
            fragments=("boxes that are not 4 finite numbers", '["10", "10", "5", "5"]')),
    CliCase("od-unknown-category", "validate", od(), with_box([8.0, 6.0, 12.0, 10.0], category=7),
            fragments=("{tmp}/data/train.json is not usable COCO detection data",
                       "annotations entry 1 (id 1): category_id 7 is not among the categories "
                       "(1 (red_square), 2 (blue_bar))")),
    CliCase("od-missing-image", "validate", od(), {**images(), "data/images/2.png": None, "data/train.json": coco()},
            fragments=("{tmp}/data/train.json: images that cannot be used", "1 missing file(s)",
                       "row 3: {tmp}/data/images/2.png")),
    CliCase("od-corrupt-image", "validate", od(),
            {**DATA, "data/images/1.png": lambda: png(1)[: len(png(1)) // 2]},
            fragments=("corrupt or truncated image(s)", "{tmp}/data/images/1.png")),
    CliCase("od-duplicate-image-id", "validate", od(),
            {**images(), "data/train.json": coco(annotations=[], images=[{"id": 1, "file_name": "0.png"},
                                                                         {"id": 1, "file_name": "1.png"}])},
            fragments=("image id 1 is used twice (0.png and 1.png)",)),
    CliCase("od-annotation-of-undeclared-image", "validate", od(),
            {**images(), "data/train.json": coco([*GOOD, (8, 1, [1.0, 1.0, 4.0, 4.0])])},
            fragments=("annotations entry 5 (id 5) refers to image id 9, which images does not declare",)),
    CliCase("od-no-boxes-at-all", "validate", od(), {**images(), "data/train.json": coco([])},
            fragments=("{tmp}/data/train.json: no image has a box",)),
    CliCase("od-metadata-bbox-category-mismatch", "validate", od(**META),
            metadata([{"file_name": "0.png", "objects": {"bbox": [[1, 1, 5, 5], [9, 9, 5, 5]], "category": ["a"]}},
                      *good_records()[1:]]),
            fragments=("{tmp}/data/train/metadata.jsonl: 1 objects cells that cannot be read: row 1 (0.png): objects "
                       "has 2 bbox and 1 category entries",)),
    CliCase("od-metadata-objects-without-bbox", "validate", od(**META),
            metadata([{"file_name": "0.png", "objects": {"boxes": [[1, 1, 5, 5]], "category": ["a"]}},
                      *good_records()[1:]]),
            fragments=("objects needs the keys bbox and category (found: boxes, category)",)),
    CliCase("od-metadata-image-listed-twice", "validate", od(**META), metadata([*good_records(), good_records()[0]]),
            fragments=("1 image(s) listed more than once (0.png in rows 1, 5)", "one row holding all its boxes")),
    CliCase("od-csv-objects-not-json", "validate",
            od(data={"source": "{tmp}/data/boxes.csv", "columns": {"image": "path"}}),
            {**images(), "data/boxes.csv": csv_text([("images/0.png", "boxes!"),
                                                     *[(f"images/{i}.png", '"{""bbox"": [[1, 1, 5, 5]], '
                                                        '""category"": [""a""]}"') for i in range(1, IMAGES)]],
                                                    ("path", "objects"))},
            fragments=("row 1 (0.png): objects is not JSON: 'boxes!'",)),
    CliCase("od-eval-category-unseen", "validate",
            od(data={"source": "{tmp}/data", "train_split": "train", "eval_split": "valid", "eval_fraction": None}),
            {**metadata(good_records()),
             "data/valid/0.png": lambda: png(0),
             "data/valid/metadata.jsonl": jsonl_text([{"file_name": "0.png",
                                                      "objects": {"bbox": [[1, 1, 5, 5]], "category": ["green"]}}])},
            fragments=("{tmp}/data/valid/metadata.jsonl: categories ['green'] never occur in training",)),
    CliCase("od-integer-category-beyond-label-names", "validate", od(**META, params={"label_names": ["red_square"]}),
            metadata([{"file_name": "0.png", "objects": {"bbox": [[1, 1, 5, 5]], "category": [3]}},
                      *good_records()[1:]]),
            fragments=("1 categories out of params.label_names: row 1 (0.png) box 1: category 3",)),
    CliCase("od-category-name-beyond-label-names", "validate",
            od(**META, params={"label_names": ["red_square", "blue_bar"]}),
            metadata([{"file_name": "0.png", "objects": {"bbox": [[1, 1, 5, 5]], "category": ["green_disk"]}},
                      *good_records()[1:]]),
            fragments=("{tmp}/data/train/metadata.jsonl: categories ['green_disk'] are not in params.label_names "
                       "(red_square, blue_bar)",)),
    CliCase("od-not-a-detector", "validate", od(model={"name": "{bert}"}), DATA,
            fragments=("model.name", "is a bert model, not an object detector", "detr")),
    CliCase("od-timm-backbone-without-timm", "validate", od(model={"name": "{tmp}/timm-detr"}),
            {**DATA, "timm-detr/config.json": TIMM_DETR},
            fragments=("model.name", "uses a timm backbone (resnet50) and timm is not installed",
                       "use_timm_backbone: false")),
    CliCase("od-rt-detr-size-not-multiple-of-32", "validate",
            od(model={"name": "{tmp}/rtdetr"}, params={"image_size": 100}),
            {**DATA, "rtdetr/config.json": json.dumps({"model_type": "rt_detr"}),
             "rtdetr/preprocessor_config.json": json.dumps({"image_processor_type": "RTDetrImageProcessorPil",
                                                            "size": {"height": 640, "width": 640}})},
            fragments=("params.image_size", "100: rt_detr models need a multiple of 32", "use 128")),
    CliCase("od-rt-detr-fewer-anchors-than-queries", "validate",
            od(model={"name": "{tmp}/rtdetr"}, params={"image_size": 64}),
            {**DATA, "rtdetr/config.json": json.dumps({"model_type": "rt_detr", "num_queries": 300}),
             "rtdetr/preprocessor_config.json": json.dumps({"image_processor_type": "RTDetrImageProcessorPil",
                                                            "size": {"height": 640, "width": 640}})},
            fragments=("params.image_size", "64x64 gives 84 anchor positions, fewer than the model's 300 queries",
                       "use 128")),
    CliCase("od-best-metric-not-always-reported", "validate", od(training={"metric_for_best_model": "map_small"}),
            DATA, fragments=("training.metric_for_best_model", "'map_small' is not an object-detection score",
                             "map, map_50")),
    CliCase("od-autotrain-misspelt-param", "validate",
            {"task": "object_detection", "base_model": "{detr}", "project_name": "{tmp}/run", "backend": "local",
             "data": {"path": "{tmp}/data", "train_split": "train", "valid_split": None,
                      "column_mapping": {"image_column": "image", "objects_column": "objects"}},
             "params": {"image_square_sise": 64, "epochs": 1}, "hub": {"push_to_hub": False}},
            metadata(good_records()), fragments=("params.image_square_sise", "did you mean 'image_square_size'?")),
]
# fmt: on
