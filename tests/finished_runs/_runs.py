"""Finished runs shared by the serve, export and evaluate tests: built once per session, never written into.

A tiny-BERT sentiment classifier (with its own eval file), a tiny-Llama SFT LoRA run (adapter only), a tabular
classifier, and a running uvicorn server helper for clients that need a real socket (the official ``openai`` package).
"""

from __future__ import annotations

import socket
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tasks"))
from _llm_fixtures import build_tiny_llama, conversations, llm_config, write_jsonl  # noqa: E402

import trainforge  # noqa: E402
from conftest import build_tiny_bert, make_sentiment_frame  # noqa: E402

_BUILT: dict[str, Path] = {}  # one build per session, whichever test module asks first


def _once(name: str, factory, build) -> Path:
    if name not in _BUILT:
        _BUILT[name] = build(factory.mktemp(name))
    return _BUILT[name]


def _text_run(folder: Path) -> Path:
    """4 epochs on 96 rows, evaluated on a separate 40-row file (reviews_eval.csv beside the run)."""
    bert = build_tiny_bert(folder / "bert")
    make_sentiment_frame(96).to_csv(folder / "reviews.csv", index=False)
    make_sentiment_frame(40, seed=7).to_csv(folder / "reviews_eval.csv", index=False)
    config = {
        "task": "text_classification",
        "model": {"name": bert},
        "data": {
            "source": str(folder / "reviews.csv"),
            "eval_split": str(folder / "reviews_eval.csv"),
            "columns": {"text": "review", "label": "sentiment"},
        },
        "training": {"num_train_epochs": 4, "learning_rate": 5e-3, "per_device_train_batch_size": 16},
        "params": {"max_length": 16},
        "output": {"dir": str(folder / "sentiment"), "report_to": ["none"], "save_checkpoints": False},
    }
    return trainforge.train(config).output_dir


def _chat_run(folder: Path) -> Path:
    """llm_sft with LoRA (the run folder holds the adapter, no merged/), 2 epochs on 48 conversations."""
    llama = build_tiny_llama(folder / "llama")
    data = write_jsonl(folder / "chat.jsonl", [{"messages": c} for c in conversations(48)])
    return trainforge.train(llm_config("llm_sft", llama, data, folder / "chat", peft=True)).output_dir


def _tabular_run(folder: Path) -> Path:
    """tabular_classification with one logistic regression (no search): churn from age and plan."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"age": rng.integers(18, 80, 120), "plan": rng.choice(["basic", "pro"], 120)})
    frame["churned"] = np.where((frame["age"] > 45) ^ (rng.random(120) < 0.1), "yes", "no")
    frame.iloc[:90].to_csv(folder / "churn.csv", index=False)
    frame.iloc[90:].to_csv(folder / "churn_eval.csv", index=False)
    config = {
        "task": "tabular_classification",
        "model": {"name": "logistic_regression"},
        "data": {"source": str(folder / "churn.csv"), "eval_split": str(folder / "churn_eval.csv")},
        "params": {"target_columns": ["churned"], "cv_folds": 2, "n_jobs": 1},
        "search": {"trials": 1},
        "output": {"dir": str(folder / "churn")},
    }
    return trainforge.train(config).output_dir


@pytest.fixture(scope="session")
def text_run(tmp_path_factory) -> Path:
    """A finished text_classification run on the tiny BERT; its eval file is ``text_run.parent / reviews_eval.csv``."""
    return _once("text-run", tmp_path_factory, _text_run)


@pytest.fixture(scope="session")
def chat_run(tmp_path_factory) -> Path:
    """A finished llm_sft LoRA run on the tiny Llama (ChatML template)."""
    return _once("chat-run", tmp_path_factory, _chat_run)


@contextmanager
def running_server(app):
    """``app`` under a real uvicorn server on a free loopback port, in a thread; yields its base URL."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@pytest.fixture(scope="session")
def tabular_run(tmp_path_factory) -> Path:
    """A finished tabular_classification run (logistic regression); its eval file is ``churn_eval.csv`` beside it."""
    return _once("tabular-run", tmp_path_factory, _tabular_run)
