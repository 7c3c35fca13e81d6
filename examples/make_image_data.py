"""Write the images the vision examples train on, and a small ResNet initialised from its config (seeded).

    python examples/make_image_data.py

writes
  examples/image_classification/data/{train,validation}/<shape>/*.png   shapes (square, disk, triangle) in random
                                                                         colours, sizes and places: the class is the
                                                                         shape, never the colour
  examples/image_regression/data/{train,valid}/images/*.png + metadata.jsonl
                                                                         1-9 small squares; target ``count``
  examples/models/resnet-small/                                          a small ResNet, randomly initialised, with
                                                                         an image processor resizing to 64x64

No pretrained vision weights install offline; with the Hub online, point ``model.name`` at any image model instead
(e.g. google/vit-base-patch16-224-in21k, facebook/convnext-tiny-224, microsoft/resnet-18).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent
SIZE = 32
SHAPES = ("square", "disk", "triangle")


def noisy_background(rng: random.Random):
    """A 32x32 RGB image of grey noise."""
    from PIL import Image

    base = rng.randint(60, 190)
    pixels = bytes(max(0, min(255, base + rng.randint(-25, 25))) for _ in range(SIZE * SIZE * 3))
    return Image.frombytes("RGB", (SIZE, SIZE), pixels)


def shape_image(shape: str, rng: random.Random):
    """One shape of random colour, size and place on a noisy background."""
    from PIL import ImageDraw

    image = noisy_background(rng)
    side = rng.randint(12, 24)
    x, y = rng.randint(1, SIZE - side - 1), rng.randint(1, SIZE - side - 1)
    colour = tuple(rng.randint(0, 255) for _ in range(3))
    draw = ImageDraw.Draw(image)
    if shape == "square":
        draw.rectangle((x, y, x + side, y + side), fill=colour)
    elif shape == "disk":
        draw.ellipse((x, y, x + side, y + side), fill=colour)
    else:
        draw.polygon([(x + side // 2, y), (x, y + side), (x + side, y + side)], fill=colour)
    return image


def count_image(count: int, rng: random.Random):
    """``count`` small bright squares at random, non-overlapping places."""
    from PIL import ImageDraw

    image = noisy_background(rng)
    draw = ImageDraw.Draw(image)
    taken: list[tuple[int, int]] = []
    while len(taken) < count:
        x, y = rng.randint(1, SIZE - 6), rng.randint(1, SIZE - 6)
        if all(abs(x - a) > 6 or abs(y - b) > 6 for a, b in taken):
            taken.append((x, y))
            draw.rectangle((x, y, x + 4, y + 4), fill=(250, 250, 40))
    return image


def write_classification(root: Path, per_class: dict[str, int]) -> None:
    """``root/<split>/<shape>/<i>.png``: ``per_class[split]`` images of each shape (seeded by split)."""
    for split, count in per_class.items():
        rng = random.Random(f"classification-{split}")
        for shape in SHAPES:
            folder = root / split / shape
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                shape_image(shape, rng).save(folder / f"{i:03d}.png")


def write_regression(root: Path, rows: dict[str, int]) -> None:
    """``root/<split>/images/<i>.png`` and ``root/<split>/metadata.jsonl`` (file_name, count), seeded by split."""
    for split, count in rows.items():
        rng = random.Random(f"regression-{split}")
        (root / split / "images").mkdir(parents=True, exist_ok=True)
        records = []
        for i in range(count):
            n = rng.randint(1, 9)
            count_image(n, rng).save(root / split / "images" / f"{i:03d}.png")
            records.append({"file_name": f"images/{i:03d}.png", "count": n})
        (root / split / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


def write_model(folder: Path) -> None:
    """A small ResNet (4 stages of 32-256 channels, 1.2M parameters), randomly initialised (seed 0).

    Its image processor resizes to 64x64 and normalises with ImageNet's mean and standard deviation.
    """
    import torch
    from transformers import ResNetConfig, ResNetModel, ViTImageProcessor

    config = ResNetConfig(embedding_size=32, hidden_sizes=[32, 64, 128, 256], depths=[1, 1, 1, 1], layer_type="basic")
    torch.manual_seed(0)
    ResNetModel(config).save_pretrained(folder)
    ViTImageProcessor(
        size={"height": 64, "width": 64}, image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225]
    ).save_pretrained(folder)


def main() -> None:
    """Write every dataset and the model (existing files are overwritten)."""
    write_classification(HERE / "image_classification" / "data", {"train": 80, "validation": 20})
    write_regression(HERE / "image_regression" / "data", {"train": 240, "valid": 60})
    write_model(HERE / "models" / "resnet-small")
    print("wrote examples/image_classification/data, examples/image_regression/data, examples/models/resnet-small")


if __name__ == "__main__":
    main()
