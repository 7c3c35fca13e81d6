"""The baseline: a plain, hand-written transformers Seq2SeqTrainer script for Multi30k en->de (no trainforge import).

    python benchmarks/seq2seq_plain.py --model MODEL_DIR --train ../shared/data/seq2seq_multi30k/train.csv \
        --test ../shared/data/seq2seq_multi30k/test.csv --rows 8000 --epochs 2 --out benchmarks/out/plain

Settings mirror benchmarks/seq2seq.py (trainforge's defaults where the benchmark sets nothing): 2 epochs over the
first N training rows, batch 32, lr 5e-3, 10% warmup then linear decay, AdamW (fused), seed 42, 48 source and 48
target tokens, greedy generation of at most 48 tokens; one evaluation on the test rows after training. Prints one
JSON line with BLEU, chrF and wall time.
"""

import argparse
import json
import time

import numpy as np
import pandas as pd
import sacrebleu
from datasets import Dataset
from rouge_score import rouge_scorer
from transformers import (
    AutoModelForSeq2SeqLM,
    AutoTokenizer,
    DataCollatorForSeq2Seq,
    Seq2SeqTrainer,
    Seq2SeqTrainingArguments,
    set_seed,
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--train", required=True)
    parser.add_argument("--test", required=True)
    parser.add_argument("--rows", type=int, default=8000)
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--lr", type=float, default=5e-3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=48)
    parser.add_argument("--out", default="benchmarks/out/plain")
    args = parser.parse_args()
    started = time.perf_counter()

    set_seed(42)
    train = pd.read_csv(args.train).iloc[: args.rows]
    test = pd.read_csv(args.test)
    tokenizer = AutoTokenizer.from_pretrained(args.model)

    def encode(frame: pd.DataFrame) -> Dataset:
        columns = dict(tokenizer(list(frame["source"]), truncation=True, max_length=args.max_length))
        columns["labels"] = tokenizer(text_target=list(frame["target"]), truncation=True, max_length=args.max_length)[
            "input_ids"
        ]
        return Dataset.from_dict(columns)

    model = AutoModelForSeq2SeqLM.from_pretrained(args.model)
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL", "rougeLsum"], use_stemmer=True)

    def scores(prediction) -> dict:
        pad = tokenizer.pad_token_id
        generated = np.where(prediction.predictions < 0, pad, prediction.predictions)
        labels = np.where(prediction.label_ids < 0, pad, prediction.label_ids)
        texts = [t.strip() for t in tokenizer.batch_decode(generated, skip_special_tokens=True)]
        references = [t.strip() for t in tokenizer.batch_decode(labels, skip_special_tokens=True)]
        rouge = [scorer.score(r, t) for r, t in zip(references, texts, strict=True)]
        metrics = {name: 100 * float(np.mean([s[name].fmeasure for s in rouge])) for name in rouge[0]}
        metrics["bleu"] = sacrebleu.corpus_bleu(texts, [references]).score
        metrics["chrf"] = sacrebleu.corpus_chrf(texts, [references]).score
        metrics["gen_len"] = float((generated[:, 1:] != pad).sum(axis=1).mean())
        return metrics

    training_args = Seq2SeqTrainingArguments(
        output_dir=args.out,
        num_train_epochs=args.epochs,
        learning_rate=args.lr,
        per_device_train_batch_size=args.batch_size,
        per_device_eval_batch_size=2 * args.batch_size,
        warmup_steps=0.1,
        lr_scheduler_type="linear",
        optim="adamw_torch_fused",
        seed=42,
        data_seed=42,
        eval_strategy="no",
        save_strategy="no",
        logging_steps=25,
        report_to="none",
        disable_tqdm=True,
        use_cpu=True,
        predict_with_generate=True,
        generation_max_length=args.max_length + 1,
        generation_num_beams=1,
    )
    trainer = Seq2SeqTrainer(
        model=model,
        args=training_args,
        train_dataset=encode(train),
        eval_dataset=encode(test),
        data_collator=DataCollatorForSeq2Seq(tokenizer, model=model),
        processing_class=tokenizer,
        compute_metrics=scores,
    )
    trainer.train()
    metrics = trainer.evaluate()
    trainer.save_model(args.out)
    tokenizer.save_pretrained(args.out)
    result = {"bleu": metrics["eval_bleu"], "chrf": metrics["eval_chrf"], "wall_s": time.perf_counter() - started}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
