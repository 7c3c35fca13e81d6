"""The baseline: a plain, hand-written transformers Trainer script for CoNLL-2003 NER (no trainforge import).

    python benchmarks/token_classification_plain.py --model PATH --train ../shared/data/conll2003/train.txt \
        --test ../shared/data/conll2003/test.txt --train-rows 2000 --out benchmarks/out/plain

Settings mirror benchmarks/token_classification.py: first sub-token of each word labelled, tag ids in trainforge's
order, 1 epoch, max length 128, lr 1e-4, batch 16 (eval 32), seed 42, 10% warmup, linear decay; entity F1 by seqeval
(default mode) on the test file.
Prints one JSON line with the F1 and the wall time.
"""

import argparse
import json
import time

import numpy as np
from datasets import Dataset
from seqeval.metrics import f1_score
from transformers import (
    AutoModelForTokenClassification,
    AutoTokenizer,
    DataCollatorForTokenClassification,
    Trainer,
    TrainingArguments,
    set_seed,
)


def read_conll(path: str, limit: int | None = None) -> tuple[list[list[str]], list[list[str]]]:
    """Sentences of a CoNLL file (word first, tag last on each line; -DOCSTART- lines dropped)."""
    words, tags, sentence, sentence_tags = [], [], [], []
    with open(path, encoding="utf-8") as handle:
        for line in [*handle, "\n"]:
            fields = line.split()
            if fields and fields[0] != "-DOCSTART-":
                sentence.append(fields[0])
                sentence_tags.append(fields[-1])
            elif sentence:
                words.append(sentence)
                tags.append(sentence_tags)
                sentence, sentence_tags = [], []
    return words[:limit], tags[:limit]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--train", required=True)
    parser.add_argument("--test", required=True)
    parser.add_argument("--train-rows", type=int, default=2000)
    parser.add_argument("--test-rows", type=int, default=None)
    parser.add_argument("--out", default="benchmarks/out/plain")
    args = parser.parse_args()
    started = time.perf_counter()

    set_seed(42)
    train_words, train_tags = read_conll(args.train, args.train_rows)
    test_words, test_tags = read_conll(args.test, args.test_rows)
    # O first, then by entity type, B- before I-: the id order trainforge uses (it decides the head's random init).
    names = sorted({t for sentence in train_tags + test_tags for t in sentence}, key=lambda t: (t != "O", t[2:], t))
    index = {name: i for i, name in enumerate(names)}
    tokenizer = AutoTokenizer.from_pretrained(args.model)

    def encode(words: list[list[str]], tags: list[list[str]]) -> Dataset:
        encoded = tokenizer(words, is_split_into_words=True, truncation=True, max_length=128)
        labels = []
        for i, sentence_tags in enumerate(tags):
            row, previous = [], None
            for word in encoded.word_ids(i):
                row.append(-100 if word is None or word == previous else index[sentence_tags[word]])
                previous = word
            labels.append(row)
        return Dataset.from_dict({**encoded, "labels": labels})

    model = AutoModelForTokenClassification.from_pretrained(
        args.model, num_labels=len(names), id2label=dict(enumerate(names)), label2id=index
    )
    training_args = TrainingArguments(
        output_dir=args.out,
        num_train_epochs=1,
        learning_rate=1e-4,
        per_device_train_batch_size=16,
        per_device_eval_batch_size=32,
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

    def entity_f1(prediction) -> dict:
        predicted = np.argmax(prediction.predictions, axis=-1)
        keep = prediction.label_ids != -100
        truth = [[names[i] for i in row[mask]] for row, mask in zip(prediction.label_ids, keep, strict=True)]
        guess = [[names[i] for i in row[mask]] for row, mask in zip(predicted, keep, strict=True)]
        return {"f1": f1_score(truth, guess)}

    trainer = Trainer(
        model=model,
        args=training_args,
        train_dataset=encode(train_words, train_tags),
        eval_dataset=encode(test_words, test_tags),
        data_collator=DataCollatorForTokenClassification(tokenizer),
        processing_class=tokenizer,
        compute_metrics=entity_f1,
    )
    trainer.train()
    metrics = trainer.evaluate()
    trainer.save_model(args.out)
    tokenizer.save_pretrained(args.out)
    print(json.dumps({"f1": metrics["eval_f1"], "wall_s": time.perf_counter() - started}))


if __name__ == "__main__":
    main()
