"""Write the images and boxes the object-detection examples train on, and a small detector initialised from config.

    python examples/make_detection_data.py

writes
  examples/object_detection/data/coco/images/*.png, train.json, valid.json
                                   128x96 images holding 1-4 shapes (red squares, blue bars, green disks) on grey
                                   noise; their boxes as COCO JSON ([x, y, width, height] pixels)
  examples/object_detection/data/autotrain/{train,validation}/*.png + metadata.jsonl
                                   the same kind of images in the reference's (AutoTrain's) local layout:
                                   file_name + objects {bbox, category}
  examples/models/rtdetr-small/    an RT-DETR (1-layer hybrid encoder, 2 decoder layers, 64 wide, 30 queries) on a
                                   4-stage transformers ResNet backbone (no timm, no torchvision), randomly
                                   initialised (seed 0), with its image processor (the PIL variant). RT-DETR learns
                                   much faster from scratch than DETR or Conditional DETR (query selection from the
                                   encoder's anchors, denoising queries)

No pretrained detection weights install offline; with the Hub online, point ``model.name`` at a detection checkpoint
whose backbone is a transformers one (see docs/tasks/object_detection.md for which work without timm/torchvision).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent
WIDTH, HEIGHT = 128, 96
SHAPES = {"red_square": (210, 40, 40), "blue_bar": (40, 60, 210), "green_disk": (40, 170, 60)}


def shapes_image(rng: random.Random):
    """One image with 1-4 shapes on noise; returns ``(image, [(category, [x, y, w, h]), ...])``."""
    from PIL import Image, ImageDraw

    base = rng.randint(90, 160)
    pixels = bytes(max(0, min(255, base + rng.randint(-30, 30))) for _ in range(WIDTH * HEIGHT * 3))
    image = Image.frombytes("RGB", (WIDTH, HEIGHT), pixels)
    pen = ImageDraw.Draw(image)
    objects = []
    for _ in range(rng.randint(1, 4)):
        name = rng.choice(list(SHAPES))
        w, h = {
            "red_square": (s := rng.randint(14, 26), s),
            "blue_bar": (rng.randint(30, 48), rng.randint(8, 12)),
        }.get(name, (d := rng.randint(16, 28), d))
        x, y = rng.randint(0, WIDTH - w), rng.randint(0, HEIGHT - h)
        corners = (x, y, x + w - 1, y + h - 1)
        if name == "green_disk":
            pen.ellipse(corners, fill=SHAPES[name])
        else:
            pen.rectangle(corners, fill=SHAPES[name])
        objects.append((name, [float(x), float(y), float(w), float(h)]))
    return image, objects


def write_coco(root: Path, rows: dict[str, int]) -> None:
    """``root/images/<split>-<i>.png`` and ``root/<split>.json`` (COCO) for each split."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    categories = [{"id": i + 1, "name": name, "supercategory": "shape"} for i, name in enumerate(SHAPES)]
    for split, count in rows.items():
        rng = random.Random(f"detection-{split}")
        images, annotations = [], []
        for i in range(count):
            image, objects = shapes_image(rng)
            name = f"{split}-{i:03d}.png"
            image.save(root / "images" / name)
            images.append({"id": i + 1, "file_name": name, "width": WIDTH, "height": HEIGHT})
            for category, box in objects:
                annotations.append(
                    {
                        "id": len(annotations) + 1,
                        "image_id": i + 1,
                        "category_id": list(SHAPES).index(category) + 1,
                        "bbox": box,
                        "area": box[2] * box[3],
                        "iscrowd": 0,
                    }
                )
        data = {"images": images, "annotations": annotations, "categories": categories}
        (root / f"{split}.json").write_text(json.dumps(data))


def write_metadata(root: Path, rows: dict[str, int]) -> None:
    """``root/<split>/<i>.png`` with ``metadata.jsonl`` (``file_name``, ``objects: {bbox, category}``)."""
    for split, count in rows.items():
        rng = random.Random(f"detection-autotrain-{split}")
        (root / split).mkdir(parents=True, exist_ok=True)
        records = []
        for i in range(count):
            image, objects = shapes_image(rng)
            image.save(root / split / f"{i:03d}.png")
            objects_column = {"bbox": [box for _, box in objects], "category": [name for name, _ in objects]}
            records.append({"file_name": f"{i:03d}.png", "objects": objects_column})
        (root / split / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


def write_model(
    folder: Path, names=tuple(SHAPES), image_size: int = WIDTH, num_queries: int = 30, num_denoising: int = 20
) -> int:
    """A small RT-DETR (ResNet backbone, random weights, seed 0) and its processor, saved to ``folder``.

    The processor resizes to ``image_size`` square. Returns the parameter count. ``benchmarks/object_detection.py``
    builds its model here too (BCCD's classes, 100 queries).
    """
    import torch
    from transformers import AutoModelForObjectDetection, RTDetrConfig, RTDetrImageProcessorPil, RTDetrResNetConfig

    backbone = RTDetrResNetConfig(
        embedding_size=16,
        hidden_sizes=[16, 32, 64, 128],
        depths=[1, 1, 1, 1],
        layer_type="basic",
        out_features=["stage2", "stage3", "stage4"],
    )
    config = RTDetrConfig(
        backbone_config=backbone,
        d_model=64,
        encoder_hidden_dim=64,
        encoder_in_channels=[32, 64, 128],
        encoder_ffn_dim=128,
        decoder_ffn_dim=128,
        encoder_layers=1,
        decoder_layers=2,
        encoder_attention_heads=4,
        decoder_attention_heads=4,
        decoder_in_channels=[64, 64, 64],
        num_queries=num_queries,
        num_denoising=num_denoising,
        id2label=dict(enumerate(names)),
        label2id={name: i for i, name in enumerate(names)},
    )
    torch.manual_seed(0)
    model = AutoModelForObjectDetection.from_config(config)
    model.save_pretrained(folder)
    RTDetrImageProcessorPil(size={"height": image_size, "width": image_size}).save_pretrained(folder)
    return sum(p.numel() for p in model.parameters())


def main() -> None:
    """Write both datasets and the model (existing files are overwritten)."""
    write_coco(HERE / "object_detection" / "data" / "coco", {"train": 160, "valid": 40})
    write_metadata(HERE / "object_detection" / "data" / "autotrain", {"train": 40, "validation": 10})
    write_model(HERE / "models" / "rtdetr-small")
    print("wrote examples/object_detection/data/{coco,autotrain} and examples/models/rtdetr-small")


if __name__ == "__main__":
    main()
