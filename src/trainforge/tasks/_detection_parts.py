"""The torch-side pieces of ``object_detection``: image datasets, augmentation, collator, trainer, scoring, drawing.

Imported on first use by ``tasks/object_detection.py`` (torch, transformers, albumentations load here).

Boxes are learnt relative to each image: each image is encoded alone by the model's image processor (resize,
normalise, boxes to normalised centre format), and the collator pads a batch to its largest image with a pixel mask
(DETR's design: positions are normalised over the unpadded area). Predictions are then fractions of the image
itself, so ``post_process_object_detection`` at the original size gives original pixels, in training, evaluation,
predict and the plain ``pipeline("object-detection")`` alike.
"""

from __future__ import annotations

import inspect
import threading
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
from transformers import Trainer

from trainforge.data.detection import ImageBoxes
from trainforge.data.images import open_rgb
from trainforge.metrics.detection import Detections, coco_metrics
from trainforge.tasks.spec import TrainerInputs
from trainforge.training.hf_trainer import ConvertedCheckpointRestore

MAX_DETECTIONS = 100  # COCOeval's largest maxDets: the detections per image that the metrics read
PREDICT_BATCH = 8

# ---------------------------------------------------------------------------------------------------- data


def augmentation(min_visibility: float, seed: int):
    """Box-safe training augmentation (albumentations, boxes in COCO ``[x, y, w, h]`` pixels), seeded.

    Horizontal flip, a mild scale/shift (boxes pushed partly out are clipped and dropped below ``min_visibility``),
    brightness/contrast and hue/saturation. No vertical flip or rotation: they change what many objects look like.
    """
    import albumentations as A

    return A.Compose(
        [
            A.HorizontalFlip(p=0.5),
            A.Affine(scale=(0.8, 1.2), translate_percent=(-0.1, 0.1), p=0.5),
            A.RandomBrightnessContrast(p=0.5),
            A.HueSaturationValue(p=0.3),
        ],
        bbox_params=A.BboxParams(
            format="coco", label_fields=["category"], min_visibility=min_visibility, min_area=1.0, clip=True
        ),
        seed=seed,
    )


def image_dataset(images: list[ImageBoxes], names: list[str], processor: Any, augment: Any):
    """A ``datasets.Dataset`` of image paths and boxes whose rows are encoded when read (``EncodeImages``)."""
    from datasets import Dataset

    index = {name: i for i, name in enumerate(names)}
    table = Dataset.from_dict(
        {
            "image": [image.image for image in images],
            "boxes": [[list(box) for box in image.boxes] for image in images],
            "categories": [[index[label] for label in image.labels] for image in images],
            "image_id": list(range(len(images))),
        }
    )
    return table.with_transform(EncodeImages(processor, augment))


@dataclass
class EncodeImages:
    """Rows -> ``pixel_values`` (one image each, unpadded) and ``labels`` (the processor's COCO-detection targets)."""

    processor: Any
    augment: Any = None

    def __call__(self, batch: dict[str, list]) -> dict[str, list]:
        """Read, augment (when set) and encode each row; boxes move with the image."""
        pixels, labels = [], []
        for path, boxes, categories, image_id in zip(
            batch["image"], batch["boxes"], batch["categories"], batch["image_id"], strict=True
        ):
            image = np.asarray(open_rgb(path))
            if self.augment is not None:
                moved = self.augment(
                    image=image, bboxes=np.asarray(boxes, dtype=np.float32).reshape(-1, 4), category=categories
                )
                image, boxes, categories = moved["image"], moved["bboxes"], moved["category"]
            annotation = {
                "image_id": image_id,
                "annotations": [
                    {
                        "bbox": [float(v) for v in box],
                        "category_id": int(c),
                        "area": float(box[2] * box[3]),
                        "iscrowd": 0,
                    }
                    for box, c in zip(boxes, categories, strict=True)
                ],
            }
            encoded = self.processor(images=image, annotations=annotation, return_tensors="pt")
            pixels.append(encoded["pixel_values"][0])
            target = dict(encoded["labels"][0])
            if self.augment is None:  # evaluation: the boxes as checked, in pixels, are COCOeval's ground truth
                target["coco_boxes"] = torch.tensor(np.asarray(boxes, dtype=np.float64).reshape(-1, 4))
                target["coco_labels"] = torch.tensor(np.asarray(categories, dtype=np.int64))
            labels.append(target)
        return {"pixel_values": pixels, "labels": labels}


@dataclass
class DetectionCollator:
    """Pad a batch's images to the largest (zeros, bottom and right) with a pixel mask; keep labels a list of dicts."""

    with_mask: bool = True  # the model's forward takes pixel_mask (DETR family); YOLOS and others do not

    def __call__(self, features: list[dict]) -> dict[str, Any]:
        """``pixel_values`` (B, C, H, W), ``pixel_mask`` (B, H, W; 1 = image) when used, ``labels`` (B dicts)."""
        values = [feature["pixel_values"] for feature in features]
        height = max(v.shape[1] for v in values)
        width = max(v.shape[2] for v in values)
        pixels = values[0].new_zeros((len(values), values[0].shape[0], height, width))
        mask = torch.zeros((len(values), height, width), dtype=torch.long)
        for i, value in enumerate(values):
            pixels[i, :, : value.shape[1], : value.shape[2]] = value
            mask[i, : value.shape[1], : value.shape[2]] = 1
        batch: dict[str, Any] = {"pixel_values": pixels, "labels": [feature["labels"] for feature in features]}
        if self.with_mask:
            batch["pixel_mask"] = mask
        return batch


# ---------------------------------------------------------------------------------------------------- trainer


class DetectionTrainer(ConvertedCheckpointRestore, Trainer):
    """A Trainer whose evaluation keeps what the metrics need: class logits, boxes and the targets, per batch."""

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):  # noqa: D102
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad(), self.compute_loss_context_manager():
            outputs = model(**inputs)
        loss = None if outputs.loss is None else outputs.loss.detach()
        if prediction_loss_only:
            return loss, None, None
        # Only what scoring reads: the model's other outputs (hidden states, auxiliary losses) would be kept per batch.
        return loss, (outputs.logits.detach().float(), outputs.pred_boxes.detach().float()), _truth(inputs["labels"])


def _truth(targets: list[dict]) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch's ground truth as two tensors whose first dimension is the image: what the evaluation loop may slice.

    accelerate's ``gather_for_metrics`` cuts every tensor of the last batch to the batch's true size
    (``tensor[:remainder]``): per-image box tensors would lose their boxes beyond that count (Hugging Face's own
    detection example scores too few boxes that way). Returns ``boxes`` (B, N, 5): ``[x, y, w, h, class]`` pixels,
    rows with class < 0 padding, and ``sizes`` (B, 2): each image's ``(height, width)``.
    """
    most = max((len(t["coco_labels"]) for t in targets), default=0)
    device = targets[0]["orig_size"].device
    boxes = torch.full((len(targets), most, 5), -1.0, dtype=torch.float64, device=device)
    for i, target in enumerate(targets):
        count = len(target["coco_labels"])
        boxes[i, :count, :4] = target["coco_boxes"]
        boxes[i, :count, 4] = target["coco_labels"]
    return boxes, torch.stack([t["orig_size"] for t in targets])


def make_trainer(inputs: TrainerInputs) -> DetectionTrainer:
    """``DetectionTrainer`` with ``eval_do_concat_batches=False``: batches of boxes are scored as they are."""
    from transformers import TrainingArguments

    prepared = inputs.prepared
    return DetectionTrainer(
        model=inputs.model,
        args=TrainingArguments(**{**inputs.args, "eval_do_concat_batches": False}),
        train_dataset=prepared.train,
        eval_dataset=prepared.eval,
        data_collator=prepared.collator,
        processing_class=inputs.ctx.processor,
        compute_metrics=inputs.compute_metrics,
        callbacks=inputs.callbacks,
    )


# ---------------------------------------------------------------------------------------------------- scoring


def post_process(
    processor: Any, logits, boxes, sizes, threshold: float, best_first: bool = True
) -> list[dict[str, np.ndarray]]:
    """The processor's own ``post_process_object_detection``: per image ``boxes`` (xyxy pixels), labels, scores.

    ``sizes`` (B, 2) are ``(height, width)`` of the original images. ``best_first`` sorts each image's results by
    score (stable); else they stay in the processor's order (COCOeval sorts them itself, stably, so equal scores keep
    this order, as in any script that hands the processor's output to it).
    """
    logits, boxes = torch.as_tensor(logits), torch.as_tensor(boxes)
    options: dict[str, Any] = {"threshold": threshold, "target_sizes": torch.as_tensor(np.asarray(sizes))}
    if "top_k" in inspect.signature(processor.post_process_object_detection).parameters:
        options["top_k"] = min(MAX_DETECTIONS, logits.shape[1] * logits.shape[2])  # top-k over (query, class) pairs
    results = processor.post_process_object_detection(SimpleNamespace(logits=logits, pred_boxes=boxes), **options)
    out = []
    for result in results:
        order = torch.argsort(result["scores"], descending=True, stable=True) if best_first else slice(None)
        out.append({key: result[key][order].detach().cpu().numpy() for key in ("boxes", "labels", "scores")})
    return out


def coco_scorer(processor: Any, names: list[str]):
    """``compute_metrics`` for un-concatenated evaluation batches: COCO mAP at the original image sizes."""

    def score(prediction) -> dict[str, float]:
        truth, found = [], []
        for (logits, boxes), (gold, sizes) in zip(prediction.predictions, prediction.label_ids, strict=True):
            found_boxes = post_process(processor, logits, boxes, sizes, 0.0, best_first=False)
            for result, rows, (height, width) in zip(found_boxes, gold, sizes, strict=True):
                rows = rows[rows[:, 4] >= 0]  # padding rows (class -1; -100 where processes padded the batch)
                truth.append(Detections(rows[:, :4], rows[:, 4].astype(int), width=int(width), height=int(height)))
                found.append(Detections(_xywh(result["boxes"]), result["labels"], result["scores"]))
        return coco_metrics(truth, found, names)

    return score


def _xywh(corners: np.ndarray) -> np.ndarray:
    corners = corners.reshape(-1, 4)
    return np.column_stack([corners[:, :2], corners[:, 2:] - corners[:, :2]])


# ---------------------------------------------------------------------------------------------------- predict


def detect(model, processor, images: list, threshold: float, lock: threading.Lock) -> list[dict[str, np.ndarray]]:
    """Boxes (xyxy pixels of each original image), labels and scores at least ``threshold``, best first."""
    accepted = inspect.signature(model.forward).parameters
    results: list[dict[str, np.ndarray]] = []
    with lock, torch.inference_mode():
        for start in range(0, len(images), PREDICT_BATCH):
            chunk = images[start : start + PREDICT_BATCH]
            encoded = processor(images=chunk, return_tensors="pt")
            outputs = model(**{k: v for k, v in encoded.items() if k in accepted})
            sizes = [(image.height, image.width) for image in chunk]
            results += post_process(processor, outputs.logits, outputs.pred_boxes, sizes, threshold)
    return results


def draw(image, found: list[dict], folder: Path, stem: str) -> Path:
    """``image`` with each box, label and score drawn (one colour per label), saved as ``folder/<stem>.boxes.png``."""
    from PIL import ImageDraw

    folder.mkdir(parents=True, exist_ok=True)
    canvas = image.copy()
    pen = ImageDraw.Draw(canvas)
    for item in found:
        x1, y1, x2, y2 = item["xyxy"]
        colour = _colour(item["label"])
        pen.rectangle([x1, y1, x2, y2], outline=colour, width=max(1, round(min(canvas.size) / 200)))
        pen.text((x1 + 2, y1 + 1), f"{item['label']} {item['score']:.2f}", fill=colour)
    path = folder / f"{stem}.boxes.png"
    canvas.save(path)
    return path


def _colour(label: str) -> tuple[int, int, int]:
    import zlib

    hue = zlib.crc32(label.encode()) % 360
    import colorsys

    r, g, b = colorsys.hsv_to_rgb(hue / 360, 0.9, 1.0)
    return int(r * 255), int(g * 255), int(b * 255)
