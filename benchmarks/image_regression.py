"""trainforge vs a plain transformers Trainer script on the BCCD cell-count regression set, ResNet from config (CPU).

    HF_HUB_OFFLINE=1 python benchmarks/image_regression.py [--epochs 20] [--repeats 1] [--threads 1]

Both start from the same randomly initialised ResNet (as benchmarks/image_classification.py; no pretrained vision
weights install offline) with a 96x96 image processor, train a one-output head with MSE on
../shared/data/regression_bccd_counts/train.csv (205 blood-smear photos, 640x480, cell_count 1-30) with the same
settings (batch 16, lr 2e-3, 10% warmup, linear decay, adamw_torch_fused, seed 42; no augmentation: with
trainforge's default flips and colour jitter this from-scratch ResNet fits the 205 photos no better than the mean in
20 epochs, RMSE 4.6 vs 4.3) and score RMSE once on test.csv (72 photos). Also printed: the RMSE of
always predicting the training mean. Each run is its own process (wall and CPU time measured).
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from _harness import small_resnet, timed

ROOT = Path(__file__).resolve().parents[1]
COUNTS = ROOT.parent / "shared" / "data" / "regression_bccd_counts"


def run_plain(model: str, args, out: Path, env: dict) -> dict:
    command = [sys.executable, str(ROOT / "benchmarks" / "image_regression_plain.py"), "--model", model]
    command += ["--data", str(COUNTS), "--out", str(out), "--epochs", str(args.epochs)]
    result, wall, cpu = timed(command, env)
    return {"rmse": json.loads(result.stdout.strip().splitlines()[-1])["rmse"], "wall_s": wall, "cpu_s": cpu}


def run_trainforge(model: str, args, out: Path, env: dict) -> dict:
    config = {
        "task": "image_regression",
        "model": {"name": model},
        "data": {"source": str(COUNTS), "eval_split": "test", "columns": {"target": "cell_count"}},
        "training": {
            "num_train_epochs": args.epochs,
            "learning_rate": 2e-3,
            "per_device_train_batch_size": 16,
            "seed": 42,
            "eval_strategy": "no",  # scored once at the end, as the plain script does
        },
        "params": {"augment": False},
        "output": {"dir": str(out), "overwrite": True, "report_to": ["none"], "save_checkpoints": False},
    }
    path = out.parent / f"{out.name}.yaml"
    path.write_text(yaml.safe_dump(config))
    _, wall, cpu = timed([sys.executable, "-m", "trainforge", "train", str(path)], env)
    metrics = json.loads((out / "metrics.json").read_text())
    return {"rmse": metrics["eval_rmse"], "wall_s": wall, "cpu_s": cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=float, default=20)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1, help="torch threads of both sides (OMP_NUM_THREADS)")
    args = parser.parse_args()
    if not COUNTS.is_dir():
        sys.exit(f"the count regression set is not at {COUNTS}")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": str(args.threads)}
    results: dict[str, list[dict]] = {"plain Trainer": [], "trainforge": []}
    with tempfile.TemporaryDirectory() as tmp:
        env["TRAINFORGE_CACHE"] = str(Path(tmp) / "cache")
        model = small_resnet(Path(tmp) / "resnet-small", 96)
        for i in range(args.repeats):
            results["plain Trainer"].append(run_plain(model, args, Path(tmp) / f"plain{i}", env))
            print(f"plain Trainer run {i + 1}: {results['plain Trainer'][-1]}", flush=True)
            results["trainforge"].append(run_trainforge(model, args, Path(tmp) / f"tf{i}", env))
            print(f"trainforge run {i + 1}: {results['trainforge'][-1]}", flush=True)
    train, test = pd.read_csv(COUNTS / "train.csv"), pd.read_csv(COUNTS / "test.csv")
    mean_rmse = float(np.sqrt(((test["cell_count"] - train["cell_count"].mean()) ** 2).mean()))
    print(
        f"BCCD cell counts (205 train / 72 test photos), ResNet from config at 96x96, {args.epochs:g} epochs, "
        f"batch 16, no augmentation, CPU x{os.cpu_count()}, {args.threads} torch thread(s)"
    )
    print(f"{'runner':16} {'test RMSE':>9} {'wall s':>8} {'CPU s':>8}")
    median = {}
    for name, runs in results.items():
        for r in runs:
            print(f"{name:16} {r['rmse']:9.3f} {r['wall_s']:8.1f} {r['cpu_s']:8.1f}")
        median[name] = {k: statistics.median(r[k] for r in runs) for k in ("rmse", "wall_s", "cpu_s")}
    tf, plain = median["trainforge"], median["plain Trainer"]
    print(
        f"medians: RMSE {tf['rmse']:.3f} (trainforge) vs {plain['rmse']:.3f} (plain) vs {mean_rmse:.3f} (predicting "
        f"the training mean); wall {tf['wall_s']:.1f} s vs {plain['wall_s']:.1f} s, ratio "
        f"{tf['wall_s'] / plain['wall_s']:.3f}; CPU {tf['cpu_s']:.1f} s vs {plain['cpu_s']:.1f} s, ratio "
        f"{tf['cpu_s'] / plain['cpu_s']:.3f}"
    )


if __name__ == "__main__":
    main()
