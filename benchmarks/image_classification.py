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
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CIFAR = ROOT.parent / "shared" / "data" / "cifar10"


def build_model(folder: Path) -> str:
    """The shared starting point: a small ResNet initialised from its config (seed 0) and a 32x32 processor."""
    import torch
    from transformers import ResNetConfig, ResNetModel, ViTImageProcessor

    config = ResNetConfig(embedding_size=32, hidden_sizes=[32, 64, 128, 256], depths=[1, 1, 1, 1], layer_type="basic")
    torch.manual_seed(0)
    ResNetModel(config).save_pretrained(folder)
    # ImageNet mean/std, plain resize to 32x32 (the CIFAR images' own size).
    ViTImageProcessor(
        size={"height": 32, "width": 32}, image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225]
    ).save_pretrained(folder)
    return str(folder)


def timed(command: list[str], env: dict) -> tuple[subprocess.CompletedProcess, float, float]:
    """Run ``command``; (result, wall seconds, CPU seconds of the child and its descendants)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if result.returncode:
        sys.exit(f"{' '.join(command[:3])} failed:\n{result.stderr[-3000:]}")
    return result, wall, cpu


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
        model = build_model(Path(tmp) / "resnet-small")
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
