"""extractive_qa end to end on a tiny BERT (SQuAD 1.1 and 2.0 shapes), its windows, post-processing and SQuAD scores.

The data: contexts of 20-40 filler words with one "positive" word, the answer; a third of the SQuAD 2.0 questions
have no positive word and so no answer. With ``max_length`` 32 and ``doc_stride`` 8 most contexts take 2-3 windows.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from safetensors.numpy import load_file

import trainforge
from conftest import NEUTRAL, POSITIVE, build_tiny_bert
from trainforge.cli.main import main
from trainforge.metrics.squad import (
    SquadScorer,
    best_answers,
    best_over_golds,
    f1,
    normalize_answer,
    tune_null_threshold,
)
from trainforge.training.events import read_events

# ------------------------------------------------------------------------------------------------ data


def qa_rows(count: int, seed: int, unanswerable_every: int = 0) -> list[dict]:
    """SQuAD-shaped rows whose answer is the one positive word of the context (none in every n-th row)."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        words = [rng.choice(NEUTRAL) for _ in range(rng.randint(20, 40))]
        answers: dict = {"text": [], "answer_start": []}
        if not (unanswerable_every and i % unanswerable_every == 0):
            answer, at = rng.choice(POSITIVE), rng.randrange(len(words) + 1)
            words.insert(at, answer)
            answers = {"text": [answer], "answer_start": [len(" ".join(words[:at])) + (1 if at else 0)]}
        context = " ".join(words)
        out.append({"id": f"q{seed}-{i}", "context": context, "question": "which word is good?", "answers": answers})
    return out


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def qa_config(model: str, source: Path, out: Path, **sections) -> dict:
    config = {
        "task": "extractive_qa",
        "model": {"name": model},
        "data": {"source": str(source), "eval_split": "valid"},
        "training": {
            "num_train_epochs": 4,
            "learning_rate": 1e-2,
            "per_device_train_batch_size": 16,
            "logging_steps": 1,
        },
        "params": {"max_length": 32, "doc_stride": 8},
        "output": {"dir": str(out), "report_to": ["none"]},
    }
    for section, values in sections.items():
        config[section] = {**config.get(section, {}), **values}
    return config


def step_losses(run_dir: Path) -> list[float]:
    return [e["loss"] for e in read_events(run_dir / "events.jsonl") if e["event"] == "step"]


def plain_answer(run_dir: Path, question: str, context: str) -> str:
    """The answer read with plain transformers (no trainforge): argmax start and end over one window."""
    import torch
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(run_dir)
    model = AutoModelForQuestionAnswering.from_pretrained(run_dir).eval()
    inputs = tokenizer(question, context, return_offsets_mapping=True, truncation="only_second", max_length=64)
    offsets, context_tokens = inputs.pop("offset_mapping"), np.array(inputs.sequence_ids()) == 1
    with torch.no_grad():
        out = model(**{k: torch.tensor([v]) for k, v in inputs.items()})
    start = int(np.where(context_tokens, out.start_logits[0].numpy(), -np.inf).argmax())
    end = int(np.where(context_tokens, out.end_logits[0].numpy(), -np.inf).argmax())
    return context[offsets[start][0] : offsets[end][1]]


# ------------------------------------------------------------------------------------------------ SQuAD scores


def test_official_normalisation():
    assert normalize_answer("The  Denver Broncos!") == "denver broncos"
    assert normalize_answer("an apple, a pear") == "apple pear"
    assert normalize_answer("U.S. Army") == "us army"
    assert normalize_answer("theatre") == "theatre"  # only whole words are articles


def test_f1_and_exact_against_golds():
    assert f1("the cat sat", "cat sat on the mat") == pytest.approx(2 * 1.0 * 0.5 / 1.5)
    assert best_over_golds("Denver Broncos", ["Broncos", "the Denver Broncos"]) == (1.0, 1.0)
    assert best_over_golds("Carolina", ["Denver Broncos"]) == (0.0, 0.0)
    # SQuAD 2.0: no gold answer means the right prediction is no answer.
    assert best_over_golds("", []) == (1.0, 1.0) and best_over_golds("Denver", []) == (0.0, 0.0)
    assert best_over_golds("", ["Denver"]) == (0.0, 0.0)


def test_null_threshold_maximises_the_score():
    # Margins (null - best span) and scores: answering q0, q1 gains; answering q2 (unanswerable) loses.
    margins = np.array([-3.0, -1.0, 2.0, 4.0])
    answered = np.array([1.0, 1.0, 0.0, 0.5])
    unanswered = np.array([0.0, 0.0, 1.0, 0.0])
    threshold = tune_null_threshold(margins, answered, unanswered)
    assert -1.0 < threshold < 2.0 and threshold == pytest.approx(0.5)  # halfway between -1 and 2
    # Nothing worth answering: the threshold lies below every margin.
    assert tune_null_threshold(margins, np.zeros(4), np.ones(4)) < -3.0
    # A question with no valid span takes no part (infinite margin).
    assert tune_null_threshold(np.array([1.0, np.inf]), np.array([1.0, 0.0]), np.array([0.0, 1.0])) == 2.0


def test_best_answer_over_windows():
    context = "zero one two three four five"
    # Two windows of the same question: tokens 1..3 and 1..3 map to words; token 0 is [CLS], token 4 padding.
    offsets = [
        [None, [0, 4], [5, 8], [9, 12], None],
        [None, [9, 12], [13, 18], [19, 23], None],
    ]
    start = np.array([[0.0, 1.0, 0.0, 0.0, -100.0], [0.5, 0.0, 3.0, 0.0, -100.0]])
    end = np.array([[0.0, 0.0, 2.0, 0.0, -100.0], [0.5, 0.0, 0.0, 4.0, -100.0]])
    (answer,) = best_answers(start, end, offsets, [0, 0], [0, 0], [context], n_best=3, max_answer_length=5)
    assert (answer.text, answer.start, answer.end, answer.score) == ("three four", 13, 23, 7.0)
    assert answer.null_score == 0.0  # the lowest [CLS] score over the windows
    # An answer may not be longer than max_answer_length tokens, nor end before it starts.
    (short,) = best_answers(start, end, offsets, [0, 0], [0, 0], [context], n_best=3, max_answer_length=1)
    assert short.text in {"four", "three", "one", "two", "zero"} and " " not in short.text
    # SQuAD 2.0 probabilities include the null answer.
    (v2,) = best_answers(start, end, offsets, [0, 0], [0, 0], [context], 3, 5, version_2=True)
    assert 0 < v2.null_probability < v2.probability < 1 and v2.null_margin == pytest.approx(-7.0)


def test_scorer_reports_the_breakdown_at_its_threshold():
    windows = {
        "example_index": [0, 1],
        "offset_mapping": [[None, [0, 3], [4, 7]], [None, [0, 3], [4, 7]]],
        "null_index": [0, 0],
        "context": ["red car", "big dog"],
        "gold": [["red"], []],
    }
    start = np.array([[0.0, 5.0, 0.0], [0.0, 5.0, 0.0]])
    end = np.array([[0.0, 5.0, 0.0], [4.0, 5.0, 0.0]])  # question 1 has a higher null score (4 vs 0)

    class Prediction:
        predictions = (start, end)

    scorer = SquadScorer(20, 30, version_2=True, fixed_threshold=None)
    scorer.windows = windows
    tuned = scorer(Prediction())
    assert tuned["f1"] == 100.0 and tuned["has_ans_f1"] == 100.0 and tuned["no_ans_f1"] == 100.0
    assert -10.0 < tuned["null_threshold"] < -6.0  # between the margins -10 and -6
    scorer.threshold = 0.0  # a threshold fixed elsewhere (the eval split's, for the test split) is applied as is
    fixed = scorer(Prediction())
    assert fixed["null_threshold"] == 0.0 and fixed["no_ans_exact_match"] == 0.0 and fixed["exact_match"] == 50.0


# ------------------------------------------------------------------------------------------------ windows


def test_windows_label_the_answer_tokens(tiny_bert):
    from transformers import AutoTokenizer

    from trainforge.data.qa_windows import encode_windows

    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    frame = pd.DataFrame(qa_rows(12, seed=3, unanswerable_every=4))
    windows = encode_windows(tokenizer, frame, max_length=32, stride=8, evaluation=True)
    assert len(windows["input_ids"]) > len(frame)  # long contexts take several windows
    assert max(len(ids) for ids in windows["input_ids"]) <= 32
    labelled = 0
    for i, example in enumerate(windows["example_index"]):
        start, end = windows["start_positions"][i], windows["end_positions"][i]
        answer = frame["answers"][example]
        if start == windows["null_index"][i]:
            assert end == start
            continue
        offsets = windows["offset_mapping"][i]
        assert frame["context"][example][offsets[start][0] : offsets[end][1]] == answer["text"][0]
        labelled += 1
    # Every answerable question has at least one window holding its answer.
    answerable = {i for i, a in enumerate(frame["answers"]) if a["text"]}
    holding = {windows["example_index"][i] for i in range(len(windows["example_index"]))}
    assert labelled >= len(answerable) and answerable <= holding


# ------------------------------------------------------------------------------------------------ SQuAD 1.1


@pytest.fixture(scope="module")
def v1_run(tiny_bert, tmp_path_factory):
    folder = tmp_path_factory.mktemp("qa-v1")
    write_jsonl(folder / "data" / "train.jsonl", qa_rows(120, seed=0))
    write_jsonl(folder / "data" / "valid.jsonl", qa_rows(40, seed=1))
    return trainforge.train(qa_config(tiny_bert, folder / "data", folder / "run"))


def test_v1_loss_is_finite_and_falls(v1_run):
    losses = step_losses(v1_run.output_dir)
    assert len(losses) >= 8 and all(math.isfinite(x) for x in losses)
    assert sum(losses[-4:]) / 4 < sum(losses[:4]) / 4 - 0.5, losses


def test_v1_parameters_changed(v1_run, tiny_bert):
    base = load_file(str(Path(tiny_bert) / "model.safetensors"))
    tuned = {k.removeprefix("bert."): v for k, v in load_file(str(v1_run.output_dir / "model.safetensors")).items()}
    encoder = [k for k in base if k.startswith("encoder.")]
    assert encoder and all(not np.array_equal(base[k], tuned[k]) for k in encoder)
    assert tuned["qa_outputs.weight"].shape == (2, 32)


def test_v1_metrics_and_run_directory(v1_run):
    metrics = json.loads((v1_run.output_dir / "metrics.json").read_text())
    assert metrics == pytest.approx(v1_run.metrics)
    assert {"eval_exact_match", "eval_f1", "eval_loss", "train_loss"} <= set(metrics)
    assert not any(k.startswith(("eval_has_ans", "eval_no_ans", "eval_null")) for k in metrics)  # SQuAD 1.1
    assert metrics["eval_f1"] >= 80.0  # the positive word is the answer: learnable in a few steps
    settings = json.loads((v1_run.output_dir / "question_answering.json").read_text())
    assert settings["version_2"] is False
    evals = [e for e in read_events(v1_run.output_dir / "events.jsonl") if e["event"] == "eval"]
    assert len(evals) == 4 and all("f1" in e["metrics"] for e in evals)  # once per epoch; the last one is reused
    card = (v1_run.output_dir / "README.md").read_text()
    front = yaml.safe_load(card.split("---\n")[1])
    assert front["pipeline_tag"] == "question-answering" and "AutoModelForQuestionAnswering" in card


def test_v1_reloads_with_plain_transformers(v1_run):
    rows = qa_rows(10, seed=7)
    answers = [plain_answer(v1_run.output_dir, r["question"], r["context"]) for r in rows]
    assert sum(a == r["answers"]["text"][0] for a, r in zip(answers, rows, strict=True)) >= 8


def test_v1_predictor_answers_with_offsets(v1_run):
    rows = qa_rows(20, seed=5)
    frame = pd.DataFrame({"id": [r["id"] for r in rows], "question": [r["question"] for r in rows]})
    frame["context"] = [r["context"] for r in rows]
    predictor = trainforge.load_predictor(v1_run.output_dir)
    out = predictor.predict(frame)
    assert list(out.columns) == ["id", "question", "context", "answer", "answer_start", "answer_end", "score"]
    for _, row in out.iterrows():
        assert row["context"][row["answer_start"] : row["answer_end"]] == row["answer"]
        assert 0.0 < row["score"] <= 1.0
    truth = [r["answers"]["text"][0] for r in rows]
    assert (out["answer"] == truth).mean() >= 0.8


def test_v1_predict_cli(v1_run, tmp_path, capsys):
    rows = qa_rows(6, seed=9)
    pd.DataFrame([{"question": r["question"], "context": r["context"]} for r in rows]).to_csv(tmp_path / "q.csv")
    code = main(
        ["predict", str(v1_run.output_dir), "--input", str(tmp_path / "q.csv"), "--output", str(tmp_path / "a.csv")]
    )
    assert code == 0, capsys.readouterr().err
    out = pd.read_csv(tmp_path / "a.csv")
    assert {"answer", "answer_start", "answer_end", "score"} <= set(out.columns) and len(out) == 6


def test_predict_names_a_missing_column(v1_run):
    from trainforge.errors import DataError

    predictor = trainforge.load_predictor(v1_run.output_dir)
    with pytest.raises(DataError, match=r"no column 'context' \(the run's context column\); found: question, passage"):
        predictor.predict(pd.DataFrame({"question": ["which word is good?"], "passage": ["a lovely film"]}))


def test_predict_refuses_a_question_too_long_for_the_windows(v1_run, tmp_path, capsys):
    frame = pd.DataFrame({"question": ["good " * 40, "which word is good?"], "context": ["a lovely film"] * 2})
    frame.to_csv(tmp_path / "q.csv", index=False)
    code = main(
        ["predict", str(v1_run.output_dir), "--input", str(tmp_path / "q.csv"), "--output", str(tmp_path / "a.csv")]
    )
    err = capsys.readouterr().err
    assert code == 2 and "the input: 1 question(s) leave no room for the context" in err and "rows 1" in err


def test_lora_trains_adapter_and_span_head_and_saves_a_plain_model(tiny_bert, tmp_path):
    write_jsonl(tmp_path / "data" / "train.jsonl", qa_rows(120, seed=0))
    write_jsonl(tmp_path / "data" / "valid.jsonl", qa_rows(40, seed=1))
    lora = {"enabled": True, "r": 4, "alpha": 32, "dropout": 0.0}
    result = trainforge.train(qa_config(tiny_bert, tmp_path / "data", tmp_path / "run", peft=lora))
    run_dir = result.output_dir
    losses = step_losses(run_dir)
    assert all(math.isfinite(x) for x in losses) and sum(losses[-4:]) < sum(losses[:4]) - 1.0, losses
    adapter = json.loads((run_dir / "adapter" / "adapter_config.json").read_text())
    assert adapter["task_type"] == "QUESTION_ANS"
    trained = load_file(str(run_dir / "adapter" / "adapter_model.safetensors"))
    assert any("lora_B" in k and np.abs(v).sum() > 0 for k, v in trained.items())
    assert any("qa_outputs" in k for k in trained)  # the new span head trains in full beside the adapter
    merged = load_file(str(run_dir / "model.safetensors"))
    assert not any("lora" in k for k in merged)  # plain transformers loads it
    row = qa_rows(1, seed=3)[0]
    assert isinstance(plain_answer(run_dir, row["question"], row["context"]), str)
    assert result.metrics["eval_f1"] > 0


# ------------------------------------------------------------------------------------------------ SQuAD 2.0


@pytest.fixture(scope="module")
def v2_run(tiny_bert, tmp_path_factory):
    """A SQuAD 2.0 run with a test split, which the driver scores once with the kept model."""
    folder = tmp_path_factory.mktemp("qa-v2")
    for name, count, seed in (("train", 150, 0), ("valid", 45, 1), ("test", 45, 2)):
        write_jsonl(folder / "data" / f"{name}.jsonl", qa_rows(count, seed=seed, unanswerable_every=3))
    config = qa_config(
        tiny_bert, folder / "data", folder / "run", data={"test_split": "test"}, training={"num_train_epochs": 5}
    )
    return trainforge.train(config)


def test_v2_metrics_break_down_has_and_no_answer(v2_run):
    result = v2_run
    assert result.labels.facts["version_2"] is True
    metrics = result.metrics
    for key in ("eval_has_ans_exact_match", "eval_has_ans_f1", "eval_no_ans_exact_match", "eval_no_ans_f1"):
        assert 0.0 <= metrics[key] <= 100.0, key
    assert metrics["eval_f1"] >= 70.0
    assert math.isfinite(metrics["eval_null_threshold"])


def test_v2_threshold_stored_and_reused_for_the_test_split(v2_run):
    result = v2_run
    test = result.metrics
    settings = json.loads((result.output_dir / "question_answering.json").read_text())
    assert settings["version_2"] is True and settings["null_threshold_source"].startswith("tuned on the evaluation")
    assert settings["null_threshold"] == pytest.approx(result.metrics["eval_null_threshold"])
    # The test split is scored at the threshold tuned on the eval split, never tuned on itself.
    assert test["test_null_threshold"] == pytest.approx(settings["null_threshold"])
    assert {"test_f1", "test_exact_match", "test_has_ans_f1", "test_no_ans_f1", "test_loss"} <= set(test)


def test_v2_predictor_gives_no_answer(v2_run):
    result = v2_run
    rows = qa_rows(30, seed=11, unanswerable_every=3)
    frame = pd.DataFrame([{"question": r["question"], "context": r["context"]} for r in rows])
    out = trainforge.load_predictor(result.output_dir).predict(frame)
    empty = out["answer"] == ""
    assert out["answer_start"][empty].isna().all() and out["answer_end"][empty].isna().all()
    truth = ["" if not r["answers"]["text"] else r["answers"]["text"][0] for r in rows]
    assert (out["answer"] == truth).mean() >= 0.7
    assert empty.sum() >= 5 and ((out["score"] >= 0) & (out["score"] <= 1)).all()


# -------------------------------------------------------------------------------------------- the reference config


REFERENCE_CONFIG = """
task: extractive-qa
base_model: {model}
project_name: {out}
log: tensorboard
backend: local

data:
  path: {data}
  train_split: train
  valid_split: valid
  column_mapping:
    text_column: context
    question_column: question
    answer_column: answers

params:
  max_seq_length: 512
  max_doc_stride: 128
  epochs: 3
  batch_size: 4
  lr: 2e-5
  optimizer: adamw_torch
  scheduler: linear
  gradient_accumulation: 1
  mixed_precision: fp16

hub:
  username: ${{HF_USERNAME}}
  token: ${{HF_TOKEN}}
  push_to_hub: false
"""


def test_reference_config_runs_unchanged(tmp_path, monkeypatch, capsys):
    """configs/extractive_question_answering/local_dataset.yml of the reference, only model/data/push changed.

    Its data folder holds train.csv and valid.csv with answers written as the reference reads them (a Python dict
    in each CSV cell); 512 tokens need a model with 512 positions.
    """
    monkeypatch.delenv("HF_USERNAME", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    model = build_tiny_bert(tmp_path / "bert512", max_positions=512)
    for name, count, seed in (("train", 24, 0), ("valid", 8, 1)):
        frame = pd.DataFrame(qa_rows(count, seed))
        frame["answers"] = frame["answers"].map(str)
        (tmp_path / "data").mkdir(exist_ok=True)
        frame.to_csv(tmp_path / "data" / f"{name}.csv", index=False)
    path = tmp_path / "local_dataset.yml"
    path.write_text(REFERENCE_CONFIG.format(model=model, out=tmp_path / "autotrain-qa", data=tmp_path / "data"))
    assert main(["train", str(path)]) == 0, capsys.readouterr().err
    run_dir = tmp_path / "autotrain-qa"
    config = trainforge.load_config(run_dir / "config.resolved.yaml")
    assert config.task == "extractive_qa" and (config.params.max_length, config.params.doc_stride) == (512, 128)
    assert config.training.learning_rate == pytest.approx(2e-5) and config.training.num_train_epochs == 3
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert {"eval_exact_match", "eval_f1"} <= set(metrics)
