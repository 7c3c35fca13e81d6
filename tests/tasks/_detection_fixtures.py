"""Tiny detectors and synthetic detection data, for the object-detection tests, examples and scripts.

``build_tiny_detector`` saves a seeded, randomly initialised detector (DETR, Conditional DETR, Deformable DETR,
RT-DETR or YOLOS) whose backbone is a tiny transformers ResNet (no timm, no torchvision), with its image processor
(the PIL variant). ``make_shapes`` draws images holding red squares and blue bars on a noisy background and writes
their boxes as COCO JSON or as the reference's ``metadata.jsonl`` (``objects: {bbox, category}``).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

SHAPES = {"red_square": (210, 40, 40), "blue_bar": (40, 60, 210)}
NAMES = list(SHAPES)


def build_tiny_detector(folder: Path, kind: str = "detr", image_size: int = 64, labels=NAMES) -> str:
    """Save a tiny ``kind`` detector (random weights, seed 0) and its image processor into ``folder``.

    ``kind``: detr, conditional_detr, deformable_detr, rt_detr or yolos. Images are resized to fit
    ``image_size`` x ``image_size`` (aspect kept; RT-DETR: exactly that square).
    """
    import torch
    import transformers
    from transformers import AutoModelForObjectDetection, ResNetConfig

    folder.mkdir(parents=True, exist_ok=True)
    id2label = dict(enumerate(labels))
    label2id = {name: i for i, name in id2label.items()}
    resnet = {"embedding_size": 8, "hidden_sizes": [8, 16, 16, 16], "depths": [1, 1, 1, 1], "layer_type": "basic"}
    transformer = {
        "d_model": 32,
        "encoder_layers": 1,
        "decoder_layers": 1,
        "encoder_ffn_dim": 32,
        "decoder_ffn_dim": 32,
        "encoder_attention_heads": 2,
        "decoder_attention_heads": 2,
        "num_queries": 10,
    }
    fit = {"max_height": image_size, "max_width": image_size}
    if kind in ("detr", "conditional_detr"):
        config_class = transformers.DetrConfig if kind == "detr" else transformers.ConditionalDetrConfig
        config = config_class(
            backbone_config=ResNetConfig(**resnet, out_features=["stage4"]), use_timm_backbone=False, **transformer
        )
        processor_class = "DetrImageProcessorPil" if kind == "detr" else "ConditionalDetrImageProcessorPil"
    elif kind == "deformable_detr":
        config = transformers.DeformableDetrConfig(
            backbone_config=ResNetConfig(**resnet, out_features=["stage2", "stage3", "stage4"]),
            use_timm_backbone=False,
            num_feature_levels=3,
            encoder_n_points=2,
            decoder_n_points=2,
            **{**transformer, "decoder_layers": 2},  # one decoder layer leaves its box-head tying nothing to tie
        )
        processor_class = "DeformableDetrImageProcessorPil"
    elif kind == "rt_detr":
        config = transformers.RTDetrConfig(
            backbone_config=transformers.RTDetrResNetConfig(**resnet, out_features=["stage2", "stage3", "stage4"]),
            d_model=32,
            encoder_hidden_dim=32,
            encoder_in_channels=[16, 16, 16],
            encoder_ffn_dim=32,
            decoder_ffn_dim=32,
            encoder_layers=1,
            decoder_layers=1,
            decoder_in_channels=[32, 32, 32],
            num_queries=10,
        )
        processor_class = "RTDetrImageProcessorPil"
        fit = {"height": image_size, "width": image_size}
    elif kind == "yolos":
        config = transformers.YolosConfig(
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=32,
            image_size=[image_size, image_size],
            patch_size=16,
            num_detection_tokens=10,
        )
        processor_class = "YolosImageProcessorPil"
    else:
        raise ValueError(f"unknown detector kind {kind!r}")
    config.id2label, config.label2id = id2label, label2id
    with torch.random.fork_rng():
        torch.manual_seed(0)
        AutoModelForObjectDetection.from_config(config).save_pretrained(folder)
    getattr(transformers, processor_class)(size=fit).save_pretrained(folder)
    return str(folder)


def shape_image(rng: random.Random, width: int, height: int):
    """An image with 1-3 shapes on noise; returns ``(PIL image, [(name, [x, y, w, h]), ...])``."""
    import numpy as np
    from PIL import Image, ImageDraw

    noise = np.random.default_rng(rng.randrange(1 << 30)).integers(90, 150, (height, width, 3), dtype=np.uint8)
    image = Image.fromarray(noise, "RGB")
    pen = ImageDraw.Draw(image)
    objects = []
    for _ in range(rng.randint(1, 3)):
        name = rng.choice(NAMES)
        w, h = (rng.randint(10, 18), rng.randint(10, 18)) if name == "red_square" else (rng.randint(20, 28), 8)
        x, y = rng.randint(0, width - w), rng.randint(0, height - h)
        pen.rectangle([x, y, x + w - 1, y + h - 1], fill=SHAPES[name])
        objects.append((name, [float(x), float(y), float(w), float(h)]))
    return image, objects


def make_shapes(root: Path, rows: int, seed: int = 0, layout: str = "coco", size=(64, 48), negatives: int = 0):
    """Write ``rows`` shape images (plus ``negatives`` without objects) under ``root``; returns the data file.

    ``layout``: ``coco`` (``root/images/*.png`` and ``root/annotations.json``) or ``metadata``
    (``root/*.png`` and ``root/metadata.jsonl`` with ``file_name`` and ``objects: {bbox, category}``).
    """
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    folder = root / "images" if layout == "coco" else root
    folder.mkdir(parents=True, exist_ok=True)
    images, annotations, records = [], [], []
    for i in range(rows + negatives):
        image, objects = shape_image(rng, *size)
        if i >= rows:
            objects = []
            image = shape_image(random.Random(seed * 7919 + i), *size)[0].point(lambda v: 120)
        name = f"{seed}-{i}.png"
        image.save(folder / name)
        images.append({"id": i + 1, "file_name": name, "width": size[0], "height": size[1]})
        for category, box in objects:
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": i + 1,
                    "category_id": NAMES.index(category) + 1,
                    "bbox": box,
                    "area": box[2] * box[3],
                    "iscrowd": 0,
                }
            )
        records.append(
            {"file_name": name, "objects": {"bbox": [b for _, b in objects], "category": [c for c, _ in objects]}}
        )
    if layout == "coco":
        path = root / "annotations.json"
        categories = [{"id": i + 1, "name": name, "supercategory": "shape"} for i, name in enumerate(NAMES)]
        path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
        return path
    path = root / "metadata.jsonl"
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return path


@pytest.fixture(scope="session")
def tiny_detr(tmp_path_factory) -> str:
    """The tiny DETR (``build_tiny_detector``)."""
    return build_tiny_detector(tmp_path_factory.mktemp("tiny-detr"))
