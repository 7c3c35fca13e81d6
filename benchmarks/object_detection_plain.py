"""A plain transformers Trainer script for object detection (the comparison point of benchmarks/object_detection.py).

    python benchmarks/object_detection_plain.py --model DIR --train train.json --test test.json --steps 100 --out DIR

Hugging Face's object-detection fine-tuning recipe written out by hand, with no trainforge import: COCO JSON read
with json, each image encoded by the model's image processor (boxes in COCO format), batches stacked (the images of a
COCO set of one camera share a size; otherwise the processor pads them), labels kept a list of dicts, the plain
``Trainer`` with ``remove_unused_columns=False``. Scoring runs the model on the test images, post-processes at their
original sizes (``post_process_object_detection``, threshold 0) and hands the detections and the test JSON's own
annotations to pycocotools' COCOeval. ``--steps 0`` scores the model as given (untrained).

Prints one JSON line: map, map_50, map_75, train_loss (None without training), wall_s.
"""

import argparse
import contextlib
import io
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from transformers import AutoImageProcessor, AutoModelForObjectDetection, Trainer, TrainingArguments


def read_coco(path: Path) -> tuple[list[dict], list[dict]]:
    """(images with their annotations, categories sorted by id)."""
    data = json.loads(path.read_text())
    by_image = {image["id"]: {**image, "annotations": []} for image in data["images"]}
    for annotation in data["annotations"]:
        by_image[annotation["image_id"]]["annotations"].append(annotation)
    return list(by_image.values()), sorted(data["categories"], key=lambda c: c["id"])


def image_file(json_path: Path, file_name: str) -> Path:
    direct = json_path.parent / file_name
    return direct if direct.is_file() else json_path.parent / "images" / file_name


class CocoDataset(torch.utils.data.Dataset):
    """Images encoded one at a time by the image processor, with COCO annotations (category ids -> 0..K-1)."""

    def __init__(self, json_path: Path, processor, index: dict[int, int]):
        self.images, _ = read_coco(json_path)
        self.json_path, self.processor, self.index = json_path, processor, index

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict:
        image = self.images[i]
        pixels = Image.open(image_file(self.json_path, image["file_name"])).convert("RGB")
        annotations = [
            {"bbox": a["bbox"], "category_id": self.index[a["category_id"]], "area": a["bbox"][2] * a["bbox"][3]}
            for a in image["annotations"]
        ]
        encoded = self.processor(
            images=pixels, annotations={"image_id": image["id"], "annotations": annotations}, return_tensors="pt"
        )
        item = {"pixel_values": encoded["pixel_values"][0], "labels": dict(encoded["labels"][0])}
        if "pixel_mask" in encoded:
            item["pixel_mask"] = encoded["pixel_mask"][0]
        return item


def collate(batch: list[dict]) -> dict:
    out = {"pixel_values": torch.stack([b["pixel_values"] for b in batch]), "labels": [b["labels"] for b in batch]}
    if "pixel_mask" in batch[0]:
        out["pixel_mask"] = torch.stack([b["pixel_mask"] for b in batch])
    return out


@torch.no_grad()
def score(model, processor, test_json: Path, index: dict[int, int], batch_size: int = 16) -> dict:
    """COCOeval of the model's detections on the test images against the test JSON's annotations."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    images, _ = read_coco(test_json)
    category_of = {i: c for c, i in index.items()}
    model.eval()
    results = []
    for start in range(0, len(images), batch_size):
        chunk = images[start : start + batch_size]
        pixels = [Image.open(image_file(test_json, image["file_name"])).convert("RGB") for image in chunk]
        inputs = processor(images=pixels, return_tensors="pt")
        outputs = model(**inputs)
        sizes = torch.tensor([[p.height, p.width] for p in pixels])
        for image, found in zip(
            chunk, processor.post_process_object_detection(outputs, threshold=0.0, target_sizes=sizes), strict=True
        ):
            triples = zip(found["boxes"].tolist(), found["labels"].tolist(), found["scores"].tolist(), strict=True)
            for box, label, value in triples:
                x1, y1, x2, y2 = box
                results.append(
                    {
                        "image_id": image["id"],
                        "category_id": category_of[label],
                        "bbox": [x1, y1, x2 - x1, y2 - y1],
                        "score": value,
                    }
                )
    with contextlib.redirect_stdout(io.StringIO()):
        truth = COCO(str(test_json))
        evaluation = COCOeval(truth, truth.loadRes(results), iouType="bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    stats = evaluation.stats
    return {"map": float(stats[0]), "map_50": float(stats[1]), "map_75": float(stats[2])}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--train", required=True, type=Path)
    parser.add_argument("--test", required=True, type=Path)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--weight-decay", type=float, default=1e-4)
    parser.add_argument("--warmup", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args()
    started = time.perf_counter()
    torch.manual_seed(args.seed)
    _, categories = read_coco(args.train)
    index = {c["id"]: i for i, c in enumerate(categories)}
    names = [c["name"] for c in categories]
    processor = AutoImageProcessor.from_pretrained(args.model)
    square = processor.size.get("height") is not None and processor.size.get("width") is not None
    size = {"height" if square else "max_height": args.image_size, "width" if square else "max_width": args.image_size}
    processor = AutoImageProcessor.from_pretrained(args.model, size=size)  # RT-DETR resizes to a square
    model = AutoModelForObjectDetection.from_pretrained(
        args.model,
        id2label=dict(enumerate(names)),
        label2id={n: i for i, n in enumerate(names)},
        ignore_mismatched_sizes=True,
    )
    train_loss = None
    if args.steps > 0:
        training = TrainingArguments(
            output_dir=str(args.out),
            max_steps=args.steps,
            learning_rate=args.lr,
            per_device_train_batch_size=args.batch_size,
            weight_decay=args.weight_decay,
            warmup_steps=args.warmup,
            lr_scheduler_type="linear",
            seed=args.seed,
            data_seed=args.seed,
            eval_strategy="no",
            save_strategy="no",
            logging_steps=10,
            report_to="none",
            remove_unused_columns=False,
            use_cpu=not torch.cuda.is_available(),
            disable_tqdm=True,
        )
        trainer = Trainer(
            model=model,
            args=training,
            train_dataset=CocoDataset(args.train, processor, index),
            data_collator=collate,
        )
        train_loss = trainer.train().training_loss
    metrics = score(model, processor, args.test, index)
    print(json.dumps({**metrics, "train_loss": train_loss, "wall_s": time.perf_counter() - started}))


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
