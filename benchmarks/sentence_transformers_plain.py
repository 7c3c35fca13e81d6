"""The baseline: a plain, hand-written sentence-transformers script for STS-B (no trainforge import).

    python benchmarks/sentence_transformers_plain.py --model PATH --train ../shared/data/stsb/train.csv \
        --test ../shared/data/stsb/test.csv --rows 5749 --out benchmarks/out/plain

Settings mirror benchmarks/sentence_transformers.py: CoSENTLoss, 1 epoch, batch 16, lr 2e-5, 10% warmup, linear
decay, seed 42, scores divided by 5. Spearman (cosine) on the test pairs before and after training, as
sentence-transformers' EmbeddingSimilarityEvaluator computes it, run by the trainer before the first step and after
the epoch (as trainforge's run does: each evaluation draws from the random generator, so the same schedule keeps
the two runs' dropout identical). Prints one JSON line.
"""

import argparse
import json
import sys
import time
from pathlib import Path

# The runner beside this file, benchmarks/sentence_transformers.py, would shadow the library it is named after.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import pandas as pd  # noqa: E402
from datasets import Dataset  # noqa: E402
from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer, SentenceTransformerTrainingArguments  # noqa: E402
from sentence_transformers.sentence_transformer.evaluation import EmbeddingSimilarityEvaluator  # noqa: E402
from sentence_transformers.sentence_transformer.losses import CoSENTLoss  # noqa: E402
from transformers import set_seed  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--train", required=True)
    parser.add_argument("--test", required=True)
    parser.add_argument("--rows", type=int, default=5749)
    parser.add_argument("--out", default="benchmarks/out/plain")
    args = parser.parse_args()
    started = time.perf_counter()

    set_seed(42)
    train = pd.read_csv(args.train).iloc[: args.rows]
    test = pd.read_csv(args.test)
    train_dataset = Dataset.from_dict(
        {
            "sentence1": list(train["sentence1"]),
            "sentence2": list(train["sentence2"]),
            "score": list(train["score"] / 5),
        }
    )
    model = SentenceTransformer(args.model)
    evaluator = EmbeddingSimilarityEvaluator(
        list(test["sentence1"]), list(test["sentence2"]), list(test["score"] / 5), name="test"
    )
    training_args = SentenceTransformerTrainingArguments(
        output_dir=args.out,
        num_train_epochs=1,
        per_device_train_batch_size=16,
        learning_rate=2e-5,
        warmup_steps=0.1,  # a float below 1: a ratio of the total steps
        lr_scheduler_type="linear",
        seed=42,
        data_seed=42,
        save_strategy="no",
        eval_strategy="epoch",
        eval_on_start=True,
        report_to="none",
        logging_steps=25,
        disable_tqdm=True,
        use_cpu=True,
    )
    trainer = SentenceTransformerTrainer(
        model=model, args=training_args, train_dataset=train_dataset, loss=CoSENTLoss(model), evaluator=evaluator
    )
    trainer.train()
    scores = [e["eval_test_spearman_cosine"] for e in trainer.state.log_history if "eval_test_spearman_cosine" in e]
    before, after = scores[0], scores[-1]
    model.save(args.out)
    print(json.dumps({"spearman_before": before, "spearman_after": after, "wall_s": time.perf_counter() - started}))


if __name__ == "__main__":
    main()
