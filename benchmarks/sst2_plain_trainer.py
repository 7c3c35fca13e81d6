"""The baseline: a plain, hand-written transformers Trainer script for SST-2 (no trainforge import).

    python benchmarks/sst2_plain_trainer.py --model PATH --train ../shared/data/sst2/train.tsv \
        --test ../shared/data/sst2/test.tsv --rows 8000 --out benchmarks/out/plain

Settings mirror benchmarks/sst2.py: 1 epoch, max length 64, lr 5e-5, batch 32, seed 42, 10% warmup, linear decay.
Prints one JSON line with accuracy and wall time.
"""

import argparse
import csv
import json
import time

import numpy as np
import pandas as pd
from datasets import Dataset
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DataCollatorWithPadding,
    Trainer,
    TrainingArguments,
    set_seed,
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--train", required=True)
    parser.add_argument("--test", required=True)
    parser.add_argument("--rows", type=int, default=8000)
    parser.add_argument("--out", default="benchmarks/out/plain")
    args = parser.parse_args()
    started = time.perf_counter()

    set_seed(42)
    train = pd.read_csv(args.train, sep="\t", quoting=csv.QUOTE_NONE).iloc[: args.rows]
    test = pd.read_csv(args.test, sep="\t", quoting=csv.QUOTE_NONE)
    tokenizer = AutoTokenizer.from_pretrained(args.model)

    def encode(frame: pd.DataFrame) -> Dataset:
        columns = dict(tokenizer(list(frame["sentence"]), truncation=True, max_length=64))
        columns["labels"] = frame["label"].astype(int).tolist()
        return Dataset.from_dict(columns)

    model = AutoModelForSequenceClassification.from_pretrained(
        args.model, num_labels=2, id2label={0: "0", 1: "1"}, label2id={"0": 0, "1": 1}
    )
    training_args = TrainingArguments(
        output_dir=args.out,
        num_train_epochs=1,
        learning_rate=5e-5,
        per_device_train_batch_size=32,
        per_device_eval_batch_size=64,
        warmup_steps=0.1,
        lr_scheduler_type="linear",
        seed=42,
        data_seed=42,
        save_strategy="no",
        report_to="none",
        logging_steps=25,
        disable_tqdm=True,
        use_cpu=True,
    )

    def accuracy(prediction) -> dict:
        return {"accuracy": float((np.argmax(prediction.predictions, axis=-1) == prediction.label_ids).mean())}

    trainer = Trainer(
        model=model,
        args=training_args,
        train_dataset=encode(train),
        eval_dataset=encode(test),
        data_collator=DataCollatorWithPadding(tokenizer),
        processing_class=tokenizer,
        compute_metrics=accuracy,
    )
    trainer.train()
    metrics = trainer.evaluate()
    trainer.save_model(args.out)
    print(json.dumps({"accuracy": metrics["eval_accuracy"], "wall_s": time.perf_counter() - started}))


if __name__ == "__main__":
    main()
