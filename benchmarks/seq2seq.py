"""trainforge ``seq2seq`` vs a plain transformers Seq2SeqTrainer script on Multi30k English->German (CPU).

    HF_HUB_OFFLINE=1 python benchmarks/seq2seq.py [--rows 8000] [--epochs 2] [--repeats 1]

No pretrained encoder-decoder weights can be installed offline, so the setup (not timed) builds one model that both
runs start from: a randomly initialised T5 (d_model 128, 2+2 layers, 4 heads, d_ff 512, no dropout, 1.4M parameters)
with a 2,000-piece unigram tokenizer trained on the training rows' English and German text
(``examples/make_seq2seq_data.small_t5``). Both train 2 epochs on the first N rows of
../shared/data/seq2seq_multi30k/train.csv (batch 32, lr 5e-3, 10% warmup then linear decay, 48 source and target
tokens, seed 42) and generate greedily (at most 48 tokens) for the 500 test rows once, after training (trainforge:
``training.eval_strategy: "no"``, so its final evaluation is that one pass; its other defaults stay: checkpoints each
epoch, TensorBoard, events). Each runs as its own process with one thread (the CPU is shared; imports included in the
wall time); with --repeats > 1 they alternate so that machine noise hits both. Prints BLEU/chrF (sacrebleu) of both,
of copying the source, the test set's bootstrap standard error of BLEU, both wall times and CPU times (user + system,
which other jobs on a shared machine disturb less) and trainforge's ratios.
"""

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
MULTI30K = ROOT.parent / "shared" / "data" / "seq2seq_multi30k"
MAX_TOKENS = 48
BATCH = 32
OPTIONS = {"rows": 8000, "epochs": 2.0, "lr": 5e-3}


def build_model(folder: Path, rows: int) -> str:
    """The shared starting point: a random small T5 and a tokenizer trained on the first ``rows`` training pairs."""
    sys.path.insert(0, str(ROOT / "examples"))
    from make_seq2seq_data import small_t5

    train = pd.read_csv(MULTI30K / "train.csv").iloc[:rows]
    texts = list(train["source"]) + list(train["target"])
    return small_t5(folder, texts, vocab_size=2000, d_model=128, layers=2, heads=4, d_ff=512, dropout=0.0)


def run_plain(model: str, args, out: Path) -> dict:
    command = [
        sys.executable,
        str(ROOT / "benchmarks" / "seq2seq_plain.py"),
        *("--model", model, "--train", str(MULTI30K / "train.csv"), "--test", str(MULTI30K / "test.csv")),
        *("--rows", str(args.rows), "--epochs", str(args.epochs), "--lr", str(args.lr), "--out", str(out)),
        *("--batch-size", str(BATCH), "--max-length", str(MAX_TOKENS)),
    ]
    cpu = child_cpu_s()
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return {**json.loads(result.stdout.strip().splitlines()[-1]), "cpu_s": child_cpu_s() - cpu, "dir": out}


def run_trainforge(model: str, args, out: Path) -> dict:
    config = {
        "task": "seq2seq",
        "model": {"name": model},
        "data": {
            "source": str(MULTI30K / "train.csv"),
            "eval_split": str(MULTI30K / "test.csv"),
            "max_train_rows": args.rows,
            "columns": {"text": "source", "target": "target"},
        },
        "training": {
            "eval_strategy": "no",
            "num_train_epochs": args.epochs,
            "learning_rate": args.lr,
            "per_device_train_batch_size": BATCH,
            "seed": 42,
        },
        "params": {"max_length": MAX_TOKENS, "max_target_length": MAX_TOKENS},
        "output": {"dir": str(out), "overwrite": True},
    }
    path = out.parent / f"{out.name}.yaml"
    path.write_text(yaml.safe_dump(config))
    started, cpu = time.perf_counter(), child_cpu_s()
    command = [sys.executable, "-m", "trainforge", "train", str(path)]
    subprocess.run(command, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - started
    metrics = json.loads((out / "metrics.json").read_text())
    cpu = child_cpu_s() - cpu
    return {"bleu": metrics["eval_bleu"], "chrf": metrics["eval_chrf"], "wall_s": wall, "cpu_s": cpu, "dir": out}


def child_cpu_s() -> float:
    """CPU seconds (user + system) used so far by this process's finished children: the work of a run, whatever the
    other jobs on a shared machine did to its wall time."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def translate(run_dir: Path, sources: list[str]) -> list[str]:
    """Greedy translations by a finished run, as its evaluation generated them (for the bootstrap)."""
    import torch
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(run_dir)
    model = AutoModelForSeq2SeqLM.from_pretrained(run_dir).eval()
    out = []
    with torch.inference_mode():
        for start in range(0, len(sources), 64):
            batch = tokenizer(
                sources[start : start + 64], truncation=True, max_length=MAX_TOKENS, padding=True, return_tensors="pt"
            )
            ids = model.generate(**batch, max_length=MAX_TOKENS + 1, num_beams=1)
            out += [t.strip() for t in tokenizer.batch_decode(ids, skip_special_tokens=True)]
    return out


def bootstrap(hypotheses: dict[str, list[str]], references: list[str], samples: int = 300) -> dict[str, float]:
    """Standard errors of each system's corpus BLEU and of their difference, over resampled test rows (seeded)."""
    import numpy as np
    import sacrebleu

    rng = random.Random(0)
    names = list(hypotheses)
    draws: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(samples):
        rows = [rng.randrange(len(references)) for _ in references]
        refs = [[references[i] for i in rows]]
        for name in names:
            draws[name].append(sacrebleu.corpus_bleu([hypotheses[name][i] for i in rows], refs).score)
    errors = {name: float(np.std(values, ddof=1)) for name, values in draws.items()}
    errors["difference"] = float(np.std(np.subtract(draws[names[0]], draws[names[1]]), ddof=1))
    return errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=OPTIONS["rows"])
    parser.add_argument("--epochs", type=float, default=OPTIONS["epochs"])
    parser.add_argument("--lr", type=float, default=OPTIONS["lr"])
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    if not MULTI30K.is_dir():
        sys.exit(f"Multi30k not found at {MULTI30K}")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # on a shared CPU, spinning threads made steps 6x slower
    import sacrebleu

    test = pd.read_csv(MULTI30K / "test.csv")
    sources, references = list(test["source"]), list(test["target"])
    copy = {
        "bleu": sacrebleu.corpus_bleu(sources, [references]).score,
        "chrf": sacrebleu.corpus_chrf(sources, [references]).score,
    }
    results: dict[str, list[dict]] = {"plain Seq2SeqTrainer": [], "trainforge": []}
    with tempfile.TemporaryDirectory() as tmp:
        model = build_model(Path(tmp) / "model", args.rows)
        for i in range(args.repeats):
            results["plain Seq2SeqTrainer"].append(run_plain(model, args, Path(tmp) / f"plain{i}"))
            results["trainforge"].append(run_trainforge(model, args, Path(tmp) / f"tf{i}"))
        hypotheses = {name: translate(runs[0]["dir"], sources) for name, runs in results.items()}
        errors = bootstrap(hypotheses, references)
    print(
        f"Multi30k en->de, random T5 (128 wide, 2+2 layers, 2k unigram vocab), first {args.rows} train rows, "
        f"{args.epochs:g} epoch(s), test.csv (500 rows), greedy, CPU x{os.cpu_count()}"
    )
    print(f"{'runner':22} {'BLEU':>6} {'chrF':>6} {'wall s':>8} {'CPU s':>8}")
    print(f"{'copy the source':22} {copy['bleu']:6.2f} {copy['chrf']:6.2f} {'-':>8} {'-':>8}")
    best, cpu = {}, {}
    for name, runs in results.items():
        best[name] = min(r["wall_s"] for r in runs)
        cpu[name] = min(r["cpu_s"] for r in runs)
        for r in runs:
            print(f"{name:22} {r['bleu']:6.2f} {r['chrf']:6.2f} {r['wall_s']:8.1f} {r['cpu_s']:8.1f}")
    ratio = best["trainforge"] / best["plain Seq2SeqTrainer"]
    cpu_ratio = cpu["trainforge"] / cpu["plain Seq2SeqTrainer"]
    gap = results["trainforge"][0]["bleu"] - results["plain Seq2SeqTrainer"][0]["bleu"]
    print(
        f"BLEU gap (trainforge - plain): {gap:+.2f}; bootstrap standard error of BLEU: plain "
        f"{errors['plain Seq2SeqTrainer']:.2f}, trainforge {errors['trainforge']:.2f}, of the paired difference "
        f"{errors['difference']:.2f}; wall-time ratio (best of each): {ratio:.3f}; CPU-time ratio: {cpu_ratio:.3f}"
    )


if __name__ == "__main__":
    main()
