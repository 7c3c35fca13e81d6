"""Image batches for a model: training augmentation (albumentations) and the image processor's resize/normalise.

Applied lazily (``datasets.Dataset.with_transform``): a batch's images are opened, augmented and normalised when
the Trainer asks for that batch, so memory holds file paths, never the decoded dataset. Evaluation, test and predict
use the image processor alone (its resize, centre crop, rescale and normalisation), exactly as
``pipeline("image-classification", model=run_dir)`` does with the saved processor.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from trainforge.data.images import open_rgb


def processor_size(processor: Any) -> tuple[int, int]:
    """(height, width) of the images the processor hands the model, read by running it on a square image.

    Works for every processor whatever its ``size`` convention (height/width, shortest edge with a centre crop, ...).
    """
    from PIL import Image

    pixels = processor(Image.new("RGB", (256, 256)), return_tensors="np")["pixel_values"]
    return int(pixels.shape[-2]), int(pixels.shape[-1])


def augmentation(size: tuple[int, int], crop_scale: float, seed: int) -> Any:
    """The training augmentation: random resized crop (when ``crop_scale`` < 1), horizontal flip, colour jitter.

    Args:
        size: (height, width) of the crop: the processor's output size, so its resize is then a no-op.
        crop_scale: Smallest crop area as a fraction of the image; 1 keeps the whole image (no crop).
        seed: Seeds albumentations' own random generator (runs repeat).
    """
    import albumentations as A

    steps: list[Any] = []
    if crop_scale < 1:
        steps.append(A.RandomResizedCrop(size=size, scale=(crop_scale, 1.0), ratio=(3 / 4, 4 / 3)))
    steps += [
        A.HorizontalFlip(p=0.5),
        A.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2, hue=0.03, p=0.8),
    ]
    return A.Compose(steps, seed=seed)


def pixel_values(processor: Any, images: list[Any], augment: Any = None) -> np.ndarray:
    """(n, channels, height, width) float32 model inputs for ``images`` (paths, bytes, PIL images, data URIs).

    With ``augment`` (an albumentations pipeline) each image is augmented first; a pipeline that crops to the
    processor's size makes the processor skip its own resize and centre crop (it still rescales and normalises).

    Raises:
        DataError: An image cannot be opened (``images.open_rgb``).
    """
    opened = [open_rgb(image) for image in images]
    if augment is None:
        return processor(opened, return_tensors="np")["pixel_values"].astype(np.float32, copy=False)
    arrays = [augment(image=np.asarray(image))["image"] for image in opened]
    cropped = any(type(step).__name__ == "RandomResizedCrop" for step in augment.transforms)
    skip = {key: False for key in ("do_resize", "do_center_crop") if cropped and getattr(processor, key, None)}
    return processor(arrays, return_tensors="np", **skip)["pixel_values"].astype(np.float32, copy=False)


def batch_transform(
    processor: Any, image_column: str, augment: Any = None
) -> Callable[[dict[str, list]], dict[str, Any]]:
    """A ``Dataset.with_transform`` function: ``image_column`` (paths) -> ``pixel_values``; other columns kept.

    A batch without the image column (a column read such as ``dataset["labels"]``) passes through unchanged.
    """

    def transform(batch: dict[str, list]) -> dict[str, Any]:
        if image_column not in batch:
            return batch
        out = {key: value for key, value in batch.items() if key != image_column}
        out["pixel_values"] = list(pixel_values(processor, batch[image_column], augment))
        return out

    return transform


def collate(examples: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack ``pixel_values`` and ``labels`` (class ids, multi-hot rows or float targets) into tensors."""
    import torch

    batch = {"pixel_values": torch.from_numpy(np.stack([e["pixel_values"] for e in examples]))}
    if "labels" in examples[0]:
        labels = np.asarray([e["labels"] for e in examples])
        batch["labels"] = torch.from_numpy(labels.astype(np.int64 if labels.dtype.kind in "iu" else np.float32))
    return batch
