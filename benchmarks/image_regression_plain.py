"""The baseline: a plain, hand-written transformers Trainer script for image regression (no trainforge import).

    python benchmarks/image_regression_plain.py --model MODEL_DIR \
        --data ../shared/data/regression_bccd_counts --out OUT

Reads <data>/train.csv and <data>/test.csv (file_name relative to <data>, cell_count), trains a one-output head with
MSE with the settings of benchmarks/image_regression.py (epochs, lr, batch, seed 42, 10% warmup, linear decay,
adamw_torch_fused; no augmentation unless --augment: horizontal flip and colour jitter with albumentations, no
crop; the image processor's resize and normalisation), evaluates once on test. Prints one JSON line with RMSE and
wall time.
"""

import argparse
import json
import os
import time

import albumentations as A
import numpy as np
import pandas as pd
from datasets import Dataset
from PIL import Image
from transformers import AutoImageProcessor, AutoModelForImageClassification, Trainer, TrainingArguments, set_seed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--epochs", type=float, default=20)
    parser.add_argument("--augment", action="store_true", help="flip and colour jitter (trainforge's default)")
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--batch", type=int, default=16)
    args = parser.parse_args()
    started = time.perf_counter()

    set_seed(42)
    processor = AutoImageProcessor.from_pretrained(args.model, backend="pil")
    augment = A.Compose(
        [A.HorizontalFlip(p=0.5), A.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2, hue=0.03, p=0.8)],
        seed=42,
    )

    def rows(split: str) -> dict:
        frame = pd.read_csv(os.path.join(args.data, f"{split}.csv"))
        paths = [os.path.join(args.data, name) for name in frame["file_name"]]
        return {"image": paths, "labels": frame["cell_count"].astype("float32").tolist()}

    def train_transform(batch):
        images = [np.asarray(Image.open(p).convert("RGB")) for p in batch["image"]]
        if args.augment:
            images = [augment(image=image)["image"] for image in images]
        pixels = processor(images, return_tensors="np")["pixel_values"]
        return {"pixel_values": list(pixels), "labels": batch["labels"]}

    def eval_transform(batch):
        images = [Image.open(p).convert("RGB") for p in batch["image"]]
        pixels = processor(images, return_tensors="np")["pixel_values"]
        return {"pixel_values": list(pixels), "labels": batch["labels"]}

    def collate(examples):
        import torch

        return {
            "pixel_values": torch.tensor(np.stack([e["pixel_values"] for e in examples])),
            "labels": torch.tensor([e["labels"] for e in examples], dtype=torch.float32),
        }

    train = Dataset.from_dict(rows("train")).with_transform(train_transform)
    test = Dataset.from_dict(rows("test")).with_transform(eval_transform)
    model = AutoModelForImageClassification.from_pretrained(
        args.model,
        num_labels=1,
        id2label={0: "cell_count"},
        label2id={"cell_count": 0},
        problem_type="regression",
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

    def rmse(prediction) -> dict:
        errors = prediction.predictions.reshape(-1) - prediction.label_ids.reshape(-1)
        return {"rmse": float(np.sqrt((errors**2).mean()))}

    trainer = Trainer(
        model=model,
        args=training_args,
        train_dataset=train,
        eval_dataset=test,
        data_collator=collate,
        processing_class=processor,
        compute_metrics=rmse,
    )
    trainer.train()
    metrics = trainer.evaluate()
    trainer.save_model(args.out)
    processor.save_pretrained(args.out)
    print(json.dumps({"rmse": metrics["eval_rmse"], "wall_s": time.perf_counter() - started}))


if __name__ == "__main__":
    main()
