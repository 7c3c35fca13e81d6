"""A short CPU check of ``vlm`` on real captions: a tiny random LLaVA on ../shared/data/captions_coco.

    HF_HUB_OFFLINE=1 python benchmarks/vlm_coco_captions.py [--epochs 2] [--train-rows 640] [--lr 5e-3]

No pretrained vision-language weights install offline, so the model is the example's tiny random LLaVA
(``examples/make_vlm_data.build_tiny_llava``: 2-layer CLIP tower on 32-pixel images, 2-layer 32-wide Llama) with a
1,000-piece byte-level BPE tokenizer trained on the training captions. It trains on the COCO train captions (5 per
image, 128 images) and is evaluated on the 155 test captions (31 other images) before training
(``training.eval_on_start``) and after each epoch. Prints the evaluation losses, ROUGE-L/chrF of the greedy captions
of the first 32 test rows, and the wall and CPU times. Such a model learns the captions' language, not to see:
the check is that the loss on held-out images' captions falls, not a captioning score.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COCO = ROOT.parent / "shared" / "data" / "captions_coco"


def main() -> None:
    """Build the model, write the splits, train once and print the numbers."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=float, default=2)
    parser.add_argument("--train-rows", type=int, default=640)
    parser.add_argument("--lr", type=float, default=5e-3)
    args = parser.parse_args()
    if not COCO.is_dir():
        sys.exit(f"{COCO} is not here")
    spec = importlib.util.spec_from_file_location("make_vlm_data", ROOT / "examples" / "make_vlm_data.py")
    assert spec is not None and spec.loader is not None
    make = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make)

    import trainforge

    records = [json.loads(line) for line in (COCO / "metadata.jsonl").read_text().splitlines()]
    splits = {
        "train": [r for r in records if r["split"] == "train"][: args.train_rows],
        "validation": [r for r in records if r["split"] == "test"],
    }
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        for name, rows in splits.items():
            lines = [json.dumps({"image": str(COCO / r["file_name"]), "caption": r["caption"]}) for r in rows]
            (work / f"{name}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
        model = make.build_tiny_llava(work / "model", [r["caption"] for r in splits["train"]], vocab_size=1000)
        config = {
            "task": "vlm",
            "model": {"name": model},
            "data": {"source": str(work), "eval_split": "validation", "columns": {"answer": "caption"}},
            "training": {
                "num_train_epochs": args.epochs,
                "learning_rate": args.lr,
                "per_device_train_batch_size": 16,
                "eval_on_start": True,
                "warmup_ratio": 0.05,
            },
            "params": {"eval_generate_rows": 32, "max_new_tokens": 24},
            "output": {"dir": str(work / "run"), "report_to": ["none"], "save_checkpoints": False},
        }
        start, cpu = time.time(), _cpu()
        result = trainforge.train(config)
        wall, cpu = time.time() - start, _cpu() - cpu
        events = [json.loads(line) for line in (work / "run" / "events.jsonl").read_text().splitlines()]
    evals = [(e["step"], e["metrics"]) for e in events if e["event"] == "eval"]
    print(f"train rows {len(splits['train'])}, eval rows {len(splits['validation'])}, epochs {args.epochs}")
    for step, metrics in evals:
        scores = f"rougeL {metrics['rougeL']:.1f}  chrf {metrics['chrf']:.1f}"
        print(f"step {step:4d}: eval_loss {metrics['loss']:.3f}  {scores}")
    first, last = evals[0][1]["loss"], result.metrics["eval_loss"]
    print(f"eval loss {first:.3f} -> {last:.3f} ({'falls' if last < first else 'DOES NOT FALL'})")
    print(f"wall {wall:.0f} s, cpu {cpu:.0f} s")


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


if __name__ == "__main__":
    main()
