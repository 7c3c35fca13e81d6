"""COCO mAP of object detections, computed by pycocotools' ``COCOeval`` (the reference implementation of the metric).

Nothing here re-implements average precision: ground truth and detections are handed to ``COCOeval`` in memory,
and its summary (``stats``) and per-category precision table are read back.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass

import numpy as np

# COCOeval.stats, in order (pycocotools/cocoeval.py, ``summarize``): AP over IoU .50:.95, at .50, at .75, by object
# area (small < 32², medium < 96², large), then AR with 1, 10, 100 detections per image and by area.
STAT_KEYS = (
    "map",
    "map_50",
    "map_75",
    "map_small",
    "map_medium",
    "map_large",
    "mar_1",
    "mar_10",
    "mar_100",
    "mar_small",
    "mar_medium",
    "mar_large",
)


@dataclass(frozen=True)
class Detections:
    """One image's boxes: ``boxes`` (n, 4) ``[x, y, w, h]`` pixels, ``labels`` (n,) class indexes, ``scores`` (n,).

    Ground truth has no scores (``None``); ``width``/``height`` are the image's size in pixels.
    """

    boxes: np.ndarray
    labels: np.ndarray
    scores: np.ndarray | None = None
    width: int = 0
    height: int = 0


def coco_metrics(truth: list[Detections], predicted: list[Detections], names: list[str]) -> dict[str, float]:
    """mAP, mAP@50, mAP@75, mAP by size, mAR@1/10/100, mAR by size and ``map_<class>``, all in [0, 1].

    Args:
        truth: One entry per image: its annotated boxes (no scores).
        predicted: One entry per image, same order: detected boxes, class indexes and scores (COCOeval keeps the
            100 best-scoring per image).
        names: Class names; class index ``i`` is COCO category ``i + 1``.

    Returns:
        The metrics COCOeval defines on these images. A metric without ground truth to score (no small objects,
        a class absent from these images) is left out, where COCOeval writes -1.

    Raises:
        ValueError: ``truth`` and ``predicted`` differ in length, or there is no box in ``truth`` at all.
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    if len(truth) != len(predicted):
        raise ValueError(f"{len(truth)} annotated images but {len(predicted)} with predictions")
    if not any(len(t.boxes) for t in truth):
        raise ValueError("no annotated box among the images: average precision is undefined")
    annotations: list[dict] = []
    results: list[dict] = []
    for image_id, (gold, found) in enumerate(zip(truth, predicted, strict=True), start=1):
        for box, label in zip(np.asarray(gold.boxes, float).reshape(-1, 4), gold.labels, strict=True):
            x, y, w, h = map(float, box)
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": int(label) + 1,
                    "bbox": [x, y, w, h],
                    "area": w * h,
                    "iscrowd": 0,
                }
            )
        scores = found.scores if found.scores is not None else np.ones(len(found.labels))
        for box, label, score in zip(np.asarray(found.boxes, float).reshape(-1, 4), found.labels, scores, strict=True):
            results.append(
                {
                    "image_id": image_id,
                    "category_id": int(label) + 1,
                    "bbox": [float(v) for v in box],
                    "score": float(score),
                }
            )
    dataset = {
        "images": [{"id": i, "width": t.width, "height": t.height} for i, t in enumerate(truth, start=1)],
        "annotations": annotations,
        "categories": [{"id": i + 1, "name": name} for i, name in enumerate(names)],
    }
    if not results:  # nothing detected: every precision is 0 (COCO.loadRes refuses an empty list)
        return {key: 0.0 for key in ("map", "map_50", "map_75", "mar_1", "mar_10", "mar_100")}
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress and the summary table
        gold_coco = COCO()
        gold_coco.dataset = dataset
        gold_coco.createIndex()
        found_coco = gold_coco.loadRes(results)
        evaluation = COCOeval(gold_coco, found_coco, iouType="bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    metrics = {
        key: min(1.0, float(value)) for key, value in zip(STAT_KEYS, evaluation.stats, strict=True) if value >= 0
    }
    # precision[T, R, K, A, M]: IoU thresholds, recall points, categories, area ranges (0 = all), max detections
    # (-1 = 100); -1 marks a category without ground truth. Its mean over T and R is the category's AP.
    precision = evaluation.eval["precision"]
    for k, name in enumerate(names):
        table = precision[:, :, k, 0, -1]
        if (table > -1).any():
            metrics[f"map_{name}"] = min(1.0, float(table[table > -1].mean()))
    return metrics
