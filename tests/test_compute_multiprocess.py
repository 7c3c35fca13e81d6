"""Two CPU processes end to end (DDP over gloo; FSDP2), launched by `trainforge train` through accelerate.

Each two-process run is compared with a one-process run of the same global batch and seed: the losses of every
step agree within 1e-4, the run has one `run_started` event and one model, and its directory has the layout of
the one-process run. The tiny BERT here has dropout off: with dropout, each process draws its own masks for its
half of the batch (every process is seeded alike, so rank 1 repeats rank 0's masks), which differ from the masks one
process draws for the whole batch; that moved the first step's loss by 2e-4 and the last by 2e-3 (see CHANGELOG).
The tiny Llama has no dropout.

Every command runs in its own process group with a timeout, so a stuck rendezvous fails the test instead of
hanging it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import trainforge
from conftest import make_sentiment_frame
from trainforge.training.events import read_events

sys.path.insert(0, str(Path(__file__).parent / "tasks"))
from _llm_fixtures import build_tiny_llama, conversations, write_jsonl  # noqa: E402

SRC = Path(__file__).resolve().parents[1] / "src"
TIMEOUT_S = 240


def trainforge_cli(*argv: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    """``python -m trainforge ARGV`` in a new process group, killed whole after TIMEOUT_S."""
    environment = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    environment.update(OMP_NUM_THREADS="1", **(env or {}))
    process = subprocess.Popen(
        [sys.executable, "-m", "trainforge", *argv],
        cwd=cwd,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        out, _ = process.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, _ = process.communicate()
        pytest.fail(f"trainforge {' '.join(argv)} did not finish in {TIMEOUT_S} s:\n{out[-3000:]}")
    return subprocess.CompletedProcess(process.args, process.returncode, out, "")


def step_losses(run_dir: Path) -> list[float]:
    return [e["loss"] for e in read_events(run_dir / "events.jsonl") if e["event"] == "step"]


def layout(run_dir: Path) -> list[str]:
    """The run directory's files (TensorBoard's event file named by its writer, so counted, not named)."""
    names = sorted(str(p.relative_to(run_dir)) for p in run_dir.rglob("*") if "tensorboard" not in p.parts)
    board = run_dir / "tensorboard"
    return names + ([f"tensorboard: {len(list(board.iterdir()))} file(s)"] if board.is_dir() else [])


def assert_same_run(one: Path, two: Path) -> None:
    """Same losses (1e-4), same final metrics, one run_started, one model, the same files."""
    losses_one, losses_two = step_losses(one), step_losses(two)
    assert len(losses_one) == len(losses_two) >= 4
    assert max(abs(a - b) for a, b in zip(losses_one, losses_two, strict=True)) < 1e-4, (losses_one, losses_two)
    metrics_one = json.loads((one / "metrics.json").read_text())
    metrics_two = json.loads((two / "metrics.json").read_text())
    assert abs(metrics_one["train_loss"] - metrics_two["train_loss"]) < 1e-4
    # The eval loss is a mean of per-batch means: one process averages each 16-row batch, two average their 8-row
    # halves, which weights an LLM's tokens differently (measured: 7.7e-5 on the tiny Llama; 0 on the BERT).
    assert abs(metrics_one["eval_loss"] - metrics_two["eval_loss"]) < 5e-4
    events = read_events(two / "events.jsonl")
    assert [e["event"] for e in events].count("run_started") == 1
    assert [e["event"] for e in events].count("run_finished") == 1
    assert len(list(two.rglob("*.safetensors"))) == 1
    assert layout(one) == layout(two)


@pytest.fixture(scope="module")
def bert_setup(tiny_bert, tmp_path_factory) -> tuple[Path, dict]:
    """The tiny BERT without dropout, 128 rows (96 train: 6 batches of 16), and a config file."""
    folder = tmp_path_factory.mktemp("compute-bert")
    model = folder / "bert"
    shutil.copytree(tiny_bert, model)
    settings = json.loads((model / "config.json").read_text())
    settings.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    (model / "config.json").write_text(json.dumps(settings))
    make_sentiment_frame(128).to_csv(folder / "reviews.csv", index=False)
    config = {
        "task": "text_classification",
        "model": {"name": str(model)},
        "data": {
            "source": str(folder / "reviews.csv"),
            "columns": {"text": "review", "label": "sentiment"},
            "eval_fraction": 0.25,
        },
        "training": {
            "num_train_epochs": 2,
            "learning_rate": 1e-3,
            "per_device_train_batch_size": 16,
            "logging_steps": 1,
            "warmup_ratio": 0.0,
        },
        "params": {"max_length": 32},
        "output": {"dir": str(folder / "one"), "report_to": ["tensorboard"]},
    }
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    trainforge.train(config)
    return folder, config


def test_two_processes_train_the_bert_run_of_one(bert_setup):
    folder, _ = bert_setup
    result = trainforge_cli(
        "train",
        "config.yaml",
        "compute.num_processes=2",
        "training.per_device_train_batch_size=8",  # the same global batch: 2 x 8
        f"output.dir={folder / 'two'}",
        cwd=folder,
    )
    assert result.returncode == 0, result.stdout[-4000:]
    assert result.stdout.count("done: ") == 1  # the launching process reports; the workers do not
    assert_same_run(folder / "one", folder / "two")
    from transformers import pipeline

    classify = pipeline("text-classification", model=str(folder / "two"))
    assert classify("a witty and moving film")[0]["label"] in ("positive", "negative")


@pytest.fixture(scope="module")
def llama_setup(tmp_path_factory) -> tuple[Path, dict]:
    folder = tmp_path_factory.mktemp("compute-llama")
    model = build_tiny_llama(folder / "llama")
    write_jsonl(folder / "chat.jsonl", [{"messages": c} for c in conversations(80)])
    config = {
        "task": "llm_sft",
        "model": {"name": model},
        "data": {"source": str(folder / "chat.jsonl"), "eval_fraction": 0.2},
        "training": {
            "num_train_epochs": 2,
            "learning_rate": 5e-3,
            "per_device_train_batch_size": 8,
            "logging_steps": 1,
            "warmup_ratio": 0.0,
        },
        "params": {"block_size": 64},
        "output": {"dir": str(folder / "one"), "report_to": ["none"], "save_checkpoints": False},
    }
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    trainforge.train(config)
    return folder, config


def test_two_processes_train_the_llama_run_of_one(llama_setup):
    folder, _ = llama_setup
    result = trainforge_cli(
        "train",
        "config.yaml",
        "compute.num_processes=2",
        "training.per_device_train_batch_size=4",
        f"output.dir={folder / 'ddp'}",
        cwd=folder,
    )
    assert result.returncode == 0, result.stdout[-4000:]
    assert_same_run(folder / "one", folder / "ddp")
    losses = step_losses(folder / "ddp")
    assert losses[-1] < losses[0] - 0.5  # it learns


def test_fsdp_on_two_cpu_processes_saves_the_ddp_model(llama_setup):
    """FSDP2 (full shard, full state dict on save) on gloo: the same losses, and a plain model in the run folder."""
    folder, _ = llama_setup
    result = trainforge_cli(
        "train",
        "config.yaml",
        "compute.num_processes=2",
        "compute.strategy=fsdp",
        "training.per_device_train_batch_size=4",
        f"output.dir={folder / 'fsdp'}",
        cwd=folder,
    )
    assert result.returncode == 0, result.stdout[-4000:]
    assert_same_run(folder / "one", folder / "fsdp")
    from safetensors.numpy import load_file
    from transformers import AutoModelForCausalLM

    one, sharded = (
        load_file(str(folder / "one" / "model.safetensors")),
        load_file(str(folder / "fsdp" / "model.safetensors")),
    )
    assert one.keys() == sharded.keys()
    assert max(float(abs(one[k] - sharded[k]).max()) for k in one) < 1e-4
    assert AutoModelForCausalLM.from_pretrained(folder / "fsdp").num_parameters() > 0


@pytest.mark.slow  # 72 s here: the job's own Python start-up before the launch's
def test_slurm_job_with_submitits_local_executor(bert_setup):
    """The SLURM path on this machine: submission, the node's task, its two processes, state and logs in slurm/."""
    folder, _ = bert_setup
    run_dir = folder / "slurm-run"
    result = trainforge_cli(
        "train",
        "config.yaml",
        "compute.launcher=slurm",
        "compute.num_processes=2",
        "compute.slurm_wait=true",
        "training.per_device_train_batch_size=8",
        f"output.dir={run_dir}",
        cwd=folder,
        env={"TRAINFORGE_SLURM_CLUSTER": "local"},
    )
    assert result.returncode == 0, result.stdout[-4000:]
    assert "submitted 1 SLURM job(s)" in result.stdout and result.stdout.count("done: ") == 1
    events = [e["event"] for e in read_events(run_dir / "events.jsonl")]
    assert events[0] == "job_submitted" and events.count("run_started") == 1 and events[-1] == "run_finished"
    submission = json.loads((run_dir / "slurm" / "submission.json").read_text())
    assert submission["state"] == "completed" and len(submission["job_ids"]) == 1
    (state,) = (run_dir / "slurm" / "state").iterdir()
    assert json.loads(state.read_text())["state"] == "completed"
    assert list((run_dir / "slurm").glob("*_log.out"))
    one = folder / "one"
    assert max(abs(a - b) for a, b in zip(step_losses(one), step_losses(run_dir), strict=True)) < 1e-4
    assert layout(one) == [name for name in layout(run_dir) if not name.startswith("slurm")]
