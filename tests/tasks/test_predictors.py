"""Predictors: a finished run loaded once and called many times answers like one-shot ``predict``.

Covers the contract (``TaskSpec.load_predictor``, specs that name only ``predict``), text classification (the same
frames as ``trainforge.predict``, one model load, threads), run directories holding only what earlier versions wrote,
tabular, and text generation (``chat`` twice on one load, the CLI's ``chat`` loading once per session).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import shutil
import threading
from pathlib import Path

import pandas as pd
import pytest
from _llm_fixtures import conversations, llm_config, tiny_llama, write_jsonl  # noqa: F401

import trainforge
from conftest import count_loads, make_sentiment_frame
from trainforge.tasks import get_task, list_tasks
from trainforge.tasks.spec import ChatPredictor, Predictor, predict_once

# What a text-classification run directory held before predictors existed: enough to predict.
OLD_RUN_FILES = ("config.resolved.yaml", "metrics.json", "config.json", "model.safetensors", "tokenizer.json")


def fingerprint(folder: Path) -> dict[str, str]:
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


@pytest.fixture(scope="module")
def text_run(tiny_bert, tmp_path_factory) -> Path:
    """A finished binary text_classification run (1 epoch on the tiny BERT)."""
    folder = tmp_path_factory.mktemp("predictor-text")
    make_sentiment_frame(64).to_csv(folder / "reviews.csv", index=False)
    config = {
        "task": "text_classification",
        "model": {"name": tiny_bert},
        "data": {"source": str(folder / "reviews.csv"), "columns": {"text": "review", "label": "sentiment"}},
        "training": {"num_train_epochs": 1, "learning_rate": 5e-3, "per_device_train_batch_size": 16},
        "params": {"max_length": 16},
        "output": {"dir": str(folder / "run"), "report_to": ["none"], "save_checkpoints": False},
    }
    return trainforge.train(config).output_dir


# ------------------------------------------------------------------------------------------------ the contract


def test_every_task_has_a_predictor_loader():
    assert "load_predictor" in trainforge.__all__ and trainforge.load_predictor is trainforge.sdk.load_predictor
    for spec in list_tasks():
        assert callable(spec.load_predictor), spec.name


def test_a_spec_with_only_predict_still_predicts(text_run):
    """A spec written before predictors (``predict`` alone) gets a predictor that calls it, once per call."""
    calls = []

    def old_predict(run_dir, frame, config):
        calls.append(run_dir)
        return frame.assign(prediction="x")

    spec = dataclasses.replace(get_task("text_classification"), predict=old_predict, load_predictor=None)
    config = trainforge.load_config(text_run / "config.resolved.yaml")
    predictor = spec.load_predictor(text_run, config)
    assert isinstance(predictor, Predictor) and not calls  # nothing runs until asked
    assert list(predictor.predict(pd.DataFrame({"review": ["a", "b"]}))["prediction"]) == ["x", "x"]
    assert calls == [text_run]


def test_predict_once_carries_its_loader_through_variants():
    class Echo:
        def __init__(self, run_dir, config):
            self.run_dir = run_dir

        def predict(self, frame):
            return frame.assign(run=str(self.run_dir))

    class Other(Echo):
        def predict(self, frame):
            return frame.assign(run="other")

    base = dataclasses.replace(get_task("llm_sft"), predict=predict_once(Echo), load_predictor=None)
    assert isinstance(base.load_predictor(Path("r"), None), Echo)
    assert base.predict(Path("r"), pd.DataFrame({"a": [1]}), None)["run"].tolist() == ["r"]
    variant = dataclasses.replace(base, predict=predict_once(Other))  # the derived loader follows the new predict
    assert isinstance(variant.load_predictor(Path("r"), None), Other)


# ------------------------------------------------------------------------------------------------ text classification


def test_loaded_once_called_many_times_like_sdk_predict(text_run, monkeypatch):
    from transformers import AutoModelForSequenceClassification

    loads = count_loads(monkeypatch, AutoModelForSequenceClassification)
    before = fingerprint(text_run)
    predictor = trainforge.load_predictor(text_run)
    assert isinstance(predictor, Predictor) and not isinstance(predictor, ChatPredictor)
    frames = [make_sentiment_frame(rows, seed=seed)[["review"]] for rows, seed in ((5, 1), (1, 2), (70, 3))]
    answers = [predictor.predict(frame) for frame in frames] + [predictor.predict(frames[0])]
    assert len(loads) == 1  # one load, four calls
    for frame, answer in zip(frames, answers, strict=False):
        assert list(answer.columns) == ["review", "prediction", "prob_negative", "prob_positive"]
        pd.testing.assert_frame_equal(answer, trainforge.predict(text_run, frame))
    pd.testing.assert_frame_equal(answers[3], answers[0])
    assert len(loads) == 1 + len(frames)  # trainforge.predict loads on each call
    assert fingerprint(text_run) == before  # loading and predicting write nothing into the run


def test_one_predictor_serves_threads(text_run):
    predictor = trainforge.load_predictor(text_run)
    frames = [make_sentiment_frame(9, seed=seed)[["review"]] for seed in range(6)]
    expected = [predictor.predict(frame) for frame in frames]
    results: list = [None] * len(frames)
    start = threading.Barrier(len(frames))

    def work(i: int) -> None:
        start.wait()
        results[i] = predictor.predict(frames[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(frames))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for got, want in zip(results, expected, strict=True):
        pd.testing.assert_frame_equal(got, want)


def test_predictor_refuses_bad_inputs_and_overrides_apply(text_run, capsys):
    from trainforge.errors import DataError

    predictor = trainforge.load_predictor(text_run)
    with pytest.raises(DataError, match="no column 'review'"):
        predictor.predict(pd.DataFrame({"text": ["good"]}))
    with pytest.raises(DataError, match="empty in 1 row"):
        predictor.predict(pd.DataFrame({"review": ["good", ""]}))
    assert len(predictor.predict(pd.DataFrame({"review": ["good"]}))) == 1  # still usable after a refusal
    trainforge.load_predictor(text_run, ["params.max_length=512"])
    assert "params.max_length 512 is beyond the model's 64 positions" in capsys.readouterr().err


def test_an_old_run_directory_still_predicts(text_run, tmp_path):
    """Only the files earlier versions wrote (no README, events, thresholds or anything new): same predictions."""
    old = tmp_path / "old-run"
    old.mkdir()
    for name in OLD_RUN_FILES + ("tokenizer_config.json",):
        shutil.copy2(text_run / name, old / name)
    frame = make_sentiment_frame(12, seed=5)[["review"]]
    before = fingerprint(old)
    pd.testing.assert_frame_equal(trainforge.load_predictor(old).predict(frame), trainforge.predict(text_run, frame))
    pd.testing.assert_frame_equal(trainforge.predict(old, frame), trainforge.predict(text_run, frame))
    assert fingerprint(old) == before


# ------------------------------------------------------------------------------------------------ tabular


def test_tabular_predictor_loads_once(tmp_path, monkeypatch):
    pytest.importorskip("xgboost")
    pytest.importorskip("lightgbm")
    pytest.importorskip("optuna")
    import joblib
    from test_tabular import NOT_FEATURES, config, mixed_frame, others

    result = trainforge.train(
        config(tmp_path, "tabular_classification", ["churned"], others("churned"), families=["logistic_regression"])
    )
    loads = []
    original = joblib.load
    monkeypatch.setattr(joblib, "load", lambda *a, **k: loads.append(a) or original(*a, **k))
    predictor = trainforge.load_predictor(result.output_dir)
    frames = [mixed_frame(rows, seed=seed).drop(columns=NOT_FEATURES) for rows, seed in ((6, 3), (1, 4))]
    answers = [predictor.predict(frame) for frame in frames]
    assert len(loads) == 1
    for frame, answer in zip(frames, answers, strict=True):
        assert {"prediction", "prob_no", "prob_yes"} <= set(answer.columns)
        pd.testing.assert_frame_equal(answer, trainforge.predict(result.output_dir, frame))


# ------------------------------------------------------------------------------------------------ text generation


@pytest.fixture(scope="module")
def chat_run(tiny_llama, tmp_path_factory) -> Path:  # noqa: F811
    """A finished llm_sft run (chat template, 1 epoch, full fine-tune), greedy and short answers."""
    pytest.importorskip("trl")
    folder = tmp_path_factory.mktemp("predictor-llm")
    data = write_jsonl(folder / "chat.jsonl", [{"messages": c} for c in conversations(24)])
    config = llm_config("llm_sft", tiny_llama, data, folder / "run", max_new_tokens=6)
    config["training"]["num_train_epochs"] = 1
    return trainforge.train(config).output_dir


def test_generation_predictor_chats_twice_on_one_load(chat_run, monkeypatch):
    from transformers import AutoModelForCausalLM

    loads = count_loads(monkeypatch, AutoModelForCausalLM)
    predictor = trainforge.load_predictor(chat_run)
    assert isinstance(predictor, ChatPredictor)
    first = [{"role": "user", "content": "what colour is the lime?"}]
    reply = predictor.chat(first)
    second = first + [{"role": "assistant", "content": reply}, {"role": "user", "content": "and the plum?"}]
    assert isinstance(reply, str) and isinstance(predictor.chat(second), str)
    assert predictor.chat(first) == reply  # greedy (temperature 0): the same answer again
    assert len(predictor.chat(first, max_new_tokens=1).split()) <= 1
    frame = pd.DataFrame({"prompt": ["what colour is the kiwi?", "hi"]})
    answer = predictor.predict(frame)
    assert len(loads) == 1
    pd.testing.assert_frame_equal(answer, trainforge.predict(chat_run, frame))


def test_cli_chat_loads_once_per_session(chat_run, monkeypatch):
    from transformers import AutoModelForCausalLM

    from trainforge.tasks.llm._inference import chat

    loads = count_loads(monkeypatch, AutoModelForCausalLM)
    lines, out = io.StringIO("what colour is the lime?\nand the plum?\n"), io.StringIO()
    assert chat(chat_run, None, "answer briefly.", {}, lines, out) == 0
    assert len(out.getvalue().splitlines()) == 2 and len(loads) == 1
