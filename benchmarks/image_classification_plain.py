"""The baseline: a plain, hand-written transformers Trainer script for image classification (no trainforge import).

    python benchmarks/image_classification_plain.py --model MODEL_DIR --data ../shared/data/cifar10 --out OUT

Reads <data>/train/<class>/*.jpg and <data>/test/<class>/*.jpg, trains with the settings of
benchmarks/image_classification.py (epochs, lr, batch, seed 42, 10% warmup, linear decay, adamw_torch_fused;
augmentation: random resized crop 0.6-1, horizontal flip, colour jitter, with albumentations; the image processor's
normalisation), evaluates once on test/. Prints one JSON line with accuracy and wall time.
"""

import argparse
import json
import os
import time

import albumentations as A
import numpy as np
from datasets import Dataset
from PIL import Image
from transformers import AutoImageProcessor, AutoModelForImageClassification, Trainer, TrainingArguments, set_seed


def read_folder(folder: str, classes: list[str]) -> dict:
    """Image paths and class ids, interleaved by class (1st of each class, 2nd of each class, ...).

    The order trainforge's folder reader gives, so that the seeded shuffles of both runs draw the same batches and
    any difference in the scores comes from the pipelines, not from which images met which random draws.
    """
    rows = []
    for k, name in enumerate(classes):
        files = sorted(os.listdir(os.path.join(folder, name)))
        rows += [(i, name, k, os.path.join(folder, name, file)) for i, file in enumerate(files)]
    rows.sort()
    return {"image": [r[3] for r in rows], "labels": [r[2] for r in rows]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--epochs", type=float, default=6)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    started = time.perf_counter()

    set_seed(42)
    classes = sorted(os.listdir(os.path.join(args.data, "train")))
    processor = AutoImageProcessor.from_pretrained(args.model, backend="pil")
    height, width = processor.size["height"], processor.size["width"]
    augment = A.Compose(
        [
            A.RandomResizedCrop(size=(height, width), scale=(0.6, 1.0), ratio=(3 / 4, 4 / 3)),
            A.HorizontalFlip(p=0.5),
            A.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2, hue=0.03, p=0.8),
        ],
        seed=42,
    )

    def train_transform(batch):
        images = [augment(image=np.asarray(Image.open(p).convert("RGB")))["image"] for p in batch["image"]]
        pixels = processor(images, do_resize=False, return_tensors="np")["pixel_values"]
        return {"pixel_values": list(pixels), "labels": batch["labels"]}

    def eval_transform(batch):
        images = [Image.open(p).convert("RGB") for p in batch["image"]]
        pixels = processor(images, return_tensors="np")["pixel_values"]
        return {"pixel_values": list(pixels), "labels": batch["labels"]}

    def collate(examples):
        import torch

        return {
            "pixel_values": torch.tensor(np.stack([e["pixel_values"] for e in examples])),
            "labels": torch.tensor([e["labels"] for e in examples]),
        }

    train = Dataset.from_dict(read_folder(os.path.join(args.data, "train"), classes)).with_transform(train_transform)
    test = Dataset.from_dict(read_folder(os.path.join(args.data, "test"), classes)).with_transform(eval_transform)
    model = AutoModelForImageClassification.from_pretrained(
        args.model,
        num_labels=len(classes),
        id2label=dict(enumerate(classes)),
        label2id={c: i for i, c in enumerate(classes)},
        ignore_mismatched_sizes=True,
    )
    training_args = TrainingArguments(
        output_dir=args.out,
        num_train_epochs=args.epochs,
        learning_rate=args.lr,
        per_device_train_batch_size=args.batch,
        per_device_eval_batch_size=2 * args.batch,
        warmup_steps=0.1,
        lr_scheduler_type="linear",
        optim="adamw_torch_fused",
        seed=42,
        data_seed=42,
        eval_strategy="no",
        save_strategy="no",
        report_to="none",
        logging_steps=25,
        disable_tqdm=True,
        use_cpu=True,
        remove_unused_columns=False,
    )

    def accuracy(prediction) -> dict:
        return {"accuracy": float((np.argmax(prediction.predictions, axis=-1) == prediction.label_ids).mean())}

    trainer = Trainer(
        model=model,
        args=training_args,
        train_dataset=train,
        eval_dataset=test,
        data_collator=collate,
        processing_class=processor,
        compute_metrics=accuracy,
    )
    trainer.train()
    metrics = trainer.evaluate()
    trainer.save_model(args.out)
    processor.save_pretrained(args.out)
    print(json.dumps({"accuracy": metrics["eval_accuracy"], "wall_s": time.perf_counter() - started}))


if __name__ == "__main__":
    main()
