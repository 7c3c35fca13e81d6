"""The baseline: a plain, hand-written transformers Trainer script for SQuAD v1.1 (no trainforge import).

    python benchmarks/extractive_qa_plain.py --model PATH --train ../shared/data/squad/train.jsonl \
        --test ../shared/data/squad/test.jsonl --out benchmarks/out/plain

Hugging Face's ``run_qa.py`` recipe (transformers ``examples/pytorch/question-answering``): questions left-stripped,
(question, context) windows of ``--max-length`` tokens with ``--stride`` overlap, the first answer's tokens as
labels ([CLS] when a window does not hold it), dynamic padding (``DataCollatorWithPadding``, as ``run_qa.py`` without
``--pad_to_max_length``), and its post-processing (20 best starts and ends per window, answers of at most 30 tokens,
the best span over a question's windows). Scores use the official SQuAD v1.1 evaluation (``evaluate-v1.1.py``):
exact match and F1 after lower-casing and removing punctuation, articles and extra whitespace.

Settings mirror benchmarks/extractive_qa.py. Prints one JSON line with exact match, F1 and wall time.
"""

import argparse
import collections
import json
import re
import string
import time

import numpy as np
import pandas as pd
from datasets import Dataset
from transformers import (
    AutoModelForQuestionAnswering,
    AutoTokenizer,
    DataCollatorWithPadding,
    Trainer,
    TrainingArguments,
    set_seed,
)


def normalize_answer(s: str) -> str:
    """evaluate-v1.1.py: lower text and remove punctuation, articles and extra whitespace."""
    s = s.lower()
    s = "".join(ch for ch in s if ch not in set(string.punctuation))
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def f1_score(prediction: str, ground_truth: str) -> float:
    prediction_tokens = normalize_answer(prediction).split()
    ground_truth_tokens = normalize_answer(ground_truth).split()
    common = collections.Counter(prediction_tokens) & collections.Counter(ground_truth_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0.0
    precision = num_same / len(prediction_tokens)
    recall = num_same / len(ground_truth_tokens)
    return 2 * precision * recall / (precision + recall)


def squad_v1(predictions: dict, examples: pd.DataFrame) -> dict:
    """Exact match and F1 in percent, and F1's standard error over the questions."""
    exact, f1 = [], []
    for qid, answers in zip(examples["id"], examples["answers"], strict=True):
        golds = answers["text"]
        exact.append(max(float(normalize_answer(predictions[qid]) == normalize_answer(g)) for g in golds))
        f1.append(max(f1_score(predictions[qid], g) for g in golds))
    f1_se = 100.0 * float(np.std(f1, ddof=1)) / len(f1) ** 0.5
    return {"exact_match": 100.0 * float(np.mean(exact)), "f1": 100.0 * float(np.mean(f1)), "f1_se": f1_se}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--train", required=True)
    parser.add_argument("--test", required=True)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--stride", type=int, default=128)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--rows", type=int, default=None, help="use only the first N training questions")
    parser.add_argument("--out", default="benchmarks/out/plain")
    args = parser.parse_args()
    started = time.perf_counter()

    set_seed(42)
    train = pd.read_json(args.train, lines=True).iloc[: args.rows]
    test = pd.read_json(args.test, lines=True)
    tokenizer = AutoTokenizer.from_pretrained(args.model)

    def tokenize(frame: pd.DataFrame):
        return tokenizer(
            [q.lstrip() for q in frame["question"]],
            list(frame["context"]),
            truncation="only_second",
            max_length=args.max_length,
            stride=args.stride,
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
        )

    def train_features(frame: pd.DataFrame) -> Dataset:
        encoded = tokenize(frame)
        sample_mapping = encoded.pop("overflow_to_sample_mapping")
        offset_mapping = encoded.pop("offset_mapping")
        starts, ends = [], []
        for i, offsets in enumerate(offset_mapping):
            input_ids = encoded["input_ids"][i]
            cls_index = input_ids.index(tokenizer.cls_token_id)
            sequence_ids = encoded.sequence_ids(i)
            answers = frame["answers"].iloc[sample_mapping[i]]
            start_char = answers["answer_start"][0]
            end_char = start_char + len(answers["text"][0])
            token_start = 0
            while sequence_ids[token_start] != 1:
                token_start += 1
            token_end = len(input_ids) - 1
            while sequence_ids[token_end] != 1:
                token_end -= 1
            if not (offsets[token_start][0] <= start_char and offsets[token_end][1] >= end_char):
                starts.append(cls_index)
                ends.append(cls_index)
                continue
            while token_start < len(offsets) and offsets[token_start][0] <= start_char:
                token_start += 1
            starts.append(token_start - 1)
            while offsets[token_end][1] >= end_char:
                token_end -= 1
            ends.append(token_end + 1)
        columns = dict(encoded)
        columns["start_positions"], columns["end_positions"] = starts, ends
        return Dataset.from_dict(columns)

    def test_features(frame: pd.DataFrame) -> tuple[Dataset, list, list]:
        encoded = tokenize(frame)
        sample_mapping = encoded.pop("overflow_to_sample_mapping")
        offset_mapping = encoded.pop("offset_mapping")
        example_ids, offsets_kept = [], []
        for i, offsets in enumerate(offset_mapping):
            sequence_ids = encoded.sequence_ids(i)
            example_ids.append(frame["id"].iloc[sample_mapping[i]])
            offsets_kept.append([o if sequence_ids[k] == 1 else None for k, o in enumerate(offsets)])
        return Dataset.from_dict(dict(encoded)), example_ids, offsets_kept

    def postprocess(start_logits, end_logits, example_ids, offsets, frame, n_best=20, max_answer_length=30) -> dict:
        features_per_example = collections.defaultdict(list)
        for i, example_id in enumerate(example_ids):
            features_per_example[example_id].append(i)
        predictions = {}
        for qid, context in zip(frame["id"], frame["context"], strict=True):
            candidates = []
            for i in features_per_example[qid]:
                start, end, offset = start_logits[i], end_logits[i], offsets[i]
                for s in np.argsort(start)[-1 : -n_best - 1 : -1].tolist():
                    for e in np.argsort(end)[-1 : -n_best - 1 : -1].tolist():
                        if s >= len(offset) or e >= len(offset) or offset[s] is None or offset[e] is None:
                            continue
                        if e < s or e - s + 1 > max_answer_length:
                            continue
                        candidates.append((start[s] + end[e], context[offset[s][0] : offset[e][1]]))
            predictions[qid] = max(candidates)[1] if candidates else ""
        return predictions

    model = AutoModelForQuestionAnswering.from_pretrained(args.model)
    training_args = TrainingArguments(
        output_dir=args.out,
        num_train_epochs=args.epochs,
        learning_rate=args.lr,
        per_device_train_batch_size=args.batch_size,
        per_device_eval_batch_size=2 * args.batch_size,
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
    trainer = Trainer(
        model=model,
        args=training_args,
        train_dataset=train_features(train),
        data_collator=DataCollatorWithPadding(tokenizer),
        processing_class=tokenizer,
    )
    trainer.train()
    features, example_ids, offsets = test_features(test)
    start_logits, end_logits = trainer.predict(features).predictions
    metrics = squad_v1(postprocess(start_logits, end_logits, example_ids, offsets, test), test)
    trainer.save_model(args.out)
    print(json.dumps({**metrics, "wall_s": time.perf_counter() - started}))


if __name__ == "__main__":
    main()
