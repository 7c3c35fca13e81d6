"""trainforge vs a plain transformers Trainer script on the CIFAR-10 subset, with a small ResNet from config (CPU).

    HF_HUB_OFFLINE=1 python benchmarks/image_classification.py [--epochs 6] [--repeats 1] [--threads 1]

No pretrained vision weights install offline, so both start from the same randomly initialised ResNet (4 stages of
32/64/128/256 channels, one basic block each, seed 0; 1.2M parameters) with a 32x32 image processor, saved once and
loaded by both. Both train on ../shared/data/cifar10/train (3,000 images, 10 classes) with the same settings
(batch 64, lr 2e-3, 10% warmup, linear decay, adamw_torch_fused, seed 42; augmentation: random resized crop 0.6-1,
flip, colour jitter) and score accuracy once on cifar10/test (1,000 images). Each run is its own process (imports
included in the wall time, CPU time of the process and its children measured); with --repeats > 1 they alternate.
Prints every run's accuracy, wall and CPU time, the medians, their ratio and the test set's standard error.
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

import yaml
from _harness import small_resnet, timed

ROOT = Path(__file__).resolve().parents[1]
CIFAR = ROOT.parent / "shared" / "data" / "cifar10"


def run_plain(model: str, args, out: Path, env: dict) -> dict:
    command = [
        sys.executable,
        str(ROOT / "benchmarks" / "image_classification_plain.py"),
        "--model",
        model,
        "--data",
        str(CIFAR),
        "--out",
        str(out),
        "--epochs",
        str(args.epochs),
    ]
    result, wall, cpu = timed(command, env)
    return {"accuracy": json.loads(result.stdout.strip().splitlines()[-1])["accuracy"], "wall_s": wall, "cpu_s": cpu}


def run_trainforge(model: str, args, out: Path, env: dict) -> dict:
    config = {
        "task": "image_classification",
        "model": {"name": model},
        "data": {"source": str(CIFAR), "eval_split": "test"},
        "training": {
            "num_train_epochs": args.epochs,
            "learning_rate": 2e-3,
            "per_device_train_batch_size": 64,
            "seed": 42,
            "eval_strategy": "no",  # scored once at the end, as the plain script does
        },
        "params": {"augment": True, "crop_scale": 0.6},
        "output": {"dir": str(out), "overwrite": True, "report_to": ["none"], "save_checkpoints": False},
    }
    path = out.parent / f"{out.name}.yaml"
    path.write_text(yaml.safe_dump(config))
    _, wall, cpu = timed([sys.executable, "-m", "trainforge", "train", str(path)], env)
    metrics = json.loads((out / "metrics.json").read_text())
    return {"accuracy": metrics["eval_accuracy"], "wall_s": wall, "cpu_s": cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=float, default=6)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1, help="torch threads of both sides (OMP_NUM_THREADS)")
    args = parser.parse_args()
    if not CIFAR.is_dir():
        sys.exit(f"the CIFAR-10 subset is not at {CIFAR}")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": str(args.threads)}
    results: dict[str, list[dict]] = {"plain Trainer": [], "trainforge": []}
    with tempfile.TemporaryDirectory() as tmp:
        env["TRAINFORGE_CACHE"] = str(Path(tmp) / "cache")
        model = small_resnet(Path(tmp) / "resnet-small", 32)
        for i in range(args.repeats):
            results["plain Trainer"].append(run_plain(model, args, Path(tmp) / f"plain{i}", env))
            print(f"plain Trainer run {i + 1}: {results['plain Trainer'][-1]}", flush=True)
            results["trainforge"].append(run_trainforge(model, args, Path(tmp) / f"tf{i}", env))
            print(f"trainforge run {i + 1}: {results['trainforge'][-1]}", flush=True)
    print(
        f"CIFAR-10 subset (3,000 train / 1,000 test images), ResNet from config, {args.epochs:g} epochs, batch 64, "
        f"CPU x{os.cpu_count()}, {args.threads} torch thread(s)"
    )
    print(f"{'runner':16} {'accuracy':>9} {'wall s':>8} {'CPU s':>8}")
    median = {}
    for name, runs in results.items():
        for r in runs:
            print(f"{name:16} {r['accuracy']:9.4f} {r['wall_s']:8.1f} {r['cpu_s']:8.1f}")
        median[name] = {k: statistics.median(r[k] for r in runs) for k in ("accuracy", "wall_s", "cpu_s")}
    tf, plain = median["trainforge"], median["plain Trainer"]
    error = (plain["accuracy"] * (1 - plain["accuracy"]) / 1000) ** 0.5 * 100
    print(
        f"medians: accuracy {tf['accuracy']:.4f} (trainforge) vs {plain['accuracy']:.4f} (plain), gap "
        f"{(tf['accuracy'] - plain['accuracy']) * 100:+.2f} points (test-set standard error {error:.2f} points); "
        f"wall {tf['wall_s']:.1f} s vs {plain['wall_s']:.1f} s, ratio {tf['wall_s'] / plain['wall_s']:.3f}; "
        f"CPU {tf['cpu_s']:.1f} s vs {plain['cpu_s']:.1f} s, ratio {tf['cpu_s'] / plain['cpu_s']:.3f}"
    )


if __name__ == "__main__":
    main()
