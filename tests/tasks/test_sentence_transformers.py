"""The five sentence-transformers tasks end to end on a tiny BERT, their data formats and the reference's configs.

Each run trains from a plain BERT folder (sentence-transformers adds mean pooling), evaluates before the first step
and after every epoch, and leaves a folder that plain ``SentenceTransformer(run_dir)`` loads.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import pytest
import yaml
from safetensors.numpy import load_file

import trainforge
from conftest import NEGATIVE, NEUTRAL, POSITIVE
from trainforge.errors import ConfigError, DataError
from trainforge.training.events import read_events


class Setup(NamedTuple):
    """How the tests train one task: its columns over ``st_frame``, learning rate, epochs and best metric."""

    columns: dict[str, str]
    lr: float
    best: str
    epochs: int = 3


TASKS = {
    "sentence_transformers_pair": Setup({"anchor": "a", "positive": "pos"}, 1e-2, "eval_cosine_ndcg@10"),
    # The softmax head must compare both sentences (|u - v|): it takes a few more epochs.
    "sentence_transformers_pair_class": Setup({"sentence1": "a", "sentence2": "b"}, 1e-2, "eval_accuracy", 6),
    "sentence_transformers_pair_score": Setup({"sentence1": "a", "sentence2": "b"}, 5e-3, "eval_spearman_cosine"),
    "sentence_transformers_triplet": Setup(
        {"anchor": "a", "positive": "pos", "negative": "neg"}, 5e-3, "eval_cosine_accuracy"
    ),
    "sentence_transformers_qa": Setup({"query": "a", "answer": "pos"}, 1e-2, "eval_cosine_ndcg@10"),
}


def st_frame(rows: int = 128, seed: int = 0) -> pd.DataFrame:
    """Sentences whose two sentiment words decide what matches: learnable by a tiny model in a few steps.

    Columns: ``a`` (anchor), ``pos`` (same sentiment words, other filler), ``neg`` (the other sentiment), ``b``
    (``pos`` or ``neg`` in turn), ``score`` (0-5: about 4.5 for a match, 0.5 otherwise) and ``label``.
    """
    rng = random.Random(seed)

    def sentence(words: list[str]) -> str:
        chosen = rng.sample(NEUTRAL, 3) + list(words)
        rng.shuffle(chosen)
        return " ".join(chosen)

    records = []
    for i in range(rows):
        mine, other = (POSITIVE, NEGATIVE) if i % 2 == 0 else (NEGATIVE, POSITIVE)
        key = rng.sample(mine, 2)
        anchor, positive, negative = sentence(key), sentence(key), sentence(rng.sample(other, 2))
        match = i % 4 < 2
        records.append(
            {
                "a": anchor,
                "pos": positive,
                "neg": negative,
                "b": positive if match else negative,
                "score": round(4 + rng.random(), 2) if match else round(rng.random(), 2),
                "label": "match" if match else "mismatch",
            }
        )
    return pd.DataFrame(records)


def st_config(task: str, model: str, source: Path, out: Path, **sections) -> dict:
    """3 epochs at batch 16 on the tiny model, evaluated before the first step and after each epoch."""
    setup = TASKS[task]
    config = {
        "task": task,
        "model": {"name": model},
        "data": {"source": str(source), "columns": setup.columns, "eval_fraction": 0.25},
        "training": {
            "num_train_epochs": setup.epochs,
            "learning_rate": setup.lr,
            "per_device_train_batch_size": 16,
            "logging_steps": 1,
            "eval_on_start": True,
            "early_stopping_patience": None,  # a slow start must not end the run: these tests measure learning
        },
        "output": {"dir": str(out), "report_to": ["none"]},
    }
    for section, values in sections.items():
        config[section] = {**config.get(section, {}), **values}
    return config


@pytest.fixture(scope="module", params=list(TASKS))
def run(request, tiny_bert, tmp_path_factory):
    """One finished run per task (96 training rows), shared by the tests that read what it left."""
    task = request.param
    folder = tmp_path_factory.mktemp(task)
    st_frame().to_csv(folder / "rows.csv", index=False)
    config = st_config(task, tiny_bert, folder / "rows.csv", folder / "run")
    return task, trainforge.train(config)


def step_losses(run_dir: Path) -> list[float]:
    return [e["loss"] for e in read_events(run_dir / "events.jsonl") if e["event"] == "step"]


# ------------------------------------------------------------------------------------------------ end to end


def test_loss_is_finite_and_falls(run):
    task, result = run
    losses = step_losses(result.output_dir)
    assert len(losses) == 6 * TASKS[task].epochs and all(math.isfinite(loss) for loss in losses)
    first, last = np.mean(losses[:4]), np.mean(losses[-4:])
    assert last < first - 0.05, f"loss did not fall: {losses}"


def test_evaluator_metric_improves_and_picks_the_checkpoint(run):
    task, result = run
    best = TASKS[task].best
    evals = [e["metrics"] for e in read_events(result.output_dir / "events.jsonl") if e["event"] == "eval"]
    start = evals[0]  # eval_on_start: the base model
    assert math.isfinite(result.metrics[best]) and "eval_loss" not in result.metrics  # evaluators only
    assert result.metrics[best] > start[best.removeprefix("eval_")], (start, result.metrics)
    assert json.loads((result.output_dir / "metrics.json").read_text())[best] == pytest.approx(result.metrics[best])
    kept = [e for e in read_events(result.output_dir / "events.jsonl") if e["event"] == "best_checkpoint"]
    assert kept and kept[-1]["metric"] == best.removeprefix("eval_")


def test_parameters_changed(run, tiny_bert):
    _, result = run
    base, tuned = (
        load_file(str(Path(tiny_bert) / "model.safetensors")),
        load_file(str(result.output_dir / "model.safetensors")),
    )
    encoder = [k for k in base if k.startswith("encoder.")]
    assert encoder and set(encoder) <= set(tuned)
    assert all(not np.array_equal(base[k], tuned[k]) for k in encoder)


def test_reloads_with_plain_sentence_transformers(run):
    from sentence_transformers import SentenceTransformer

    task, result = run
    model = SentenceTransformer(str(result.output_dir))
    assert [type(m).__name__ for m in model] == ["Transformer", "Pooling"]  # mean pooling added to the plain BERT
    frame = st_frame(8, seed=9)
    anchors, positives, negatives = (model.encode(list(frame[c])) for c in ("a", "pos", "neg"))
    assert np.isfinite(anchors).all()
    match = model.similarity_pairwise(anchors, positives).mean()
    mismatch = model.similarity_pairwise(anchors, negatives).mean()
    assert match > mismatch, (task, float(match), float(mismatch))


def test_predict_scores_pairs_and_embeds_texts(run):
    from sentence_transformers import SentenceTransformer

    task, result = run
    columns = TASKS[task].columns
    first, second = list(columns.values())[:2]
    frame = st_frame(6, seed=3)
    predictor = trainforge.load_predictor(result.output_dir)
    scored = predictor.predict(frame[[first, second]])
    assert list(scored.columns) == [first, second, "similarity"]
    model = SentenceTransformer(str(result.output_dir))
    expected = model.similarity_pairwise(model.encode(list(frame[first])), model.encode(list(frame[second])))
    assert np.allclose(scored["similarity"], expected.numpy(), atol=1e-5)
    embedded = predictor.predict(frame[[first]])
    assert list(embedded.columns) == [first, "embedding"] and len(embedded["embedding"][0]) == 32


@pytest.mark.parametrize("run", ["sentence_transformers_qa"], indirect=True)
def test_serve_embeds_texts(run, tmp_path):
    """The predictor is an EmbeddingPredictor: ``trainforge serve`` answers /v1/embeddings with the model's vectors."""
    from fastapi.testclient import TestClient
    from sentence_transformers import SentenceTransformer

    from trainforge.serve import ServeSettings, create_app
    from trainforge.tasks.spec import EmbeddingPredictor

    _, result = run
    assert isinstance(trainforge.load_predictor(result.output_dir), EmbeddingPredictor)
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "retrieval").symlink_to(result.output_dir)
    texts = ["a lovely witty film", "a dull boring plot"]
    with TestClient(create_app(ServeSettings(tmp_path / "runs")), base_url="http://127.0.0.1") as client:
        answer = client.post("/v1/embeddings", json={"model": "retrieval", "input": texts})
        refused = client.post("/v1/embeddings", json={"model": "retrieval", "input": ["fine", " "]})
    assert answer.status_code == 200, answer.text
    vectors = [d["embedding"] for d in answer.json()["data"]]
    expected = SentenceTransformer(str(result.output_dir)).encode(texts)
    assert np.allclose(vectors, expected, atol=1e-5) and answer.json()["usage"]["prompt_tokens"] > 0
    assert refused.status_code in (400, 422) and "empty" in refused.text


def test_model_card_keeps_sentence_transformers_content(run):
    task, result = run
    text = (result.output_dir / "README.md").read_text()
    front = yaml.safe_load(text.split("---\n")[1])
    assert front["library_name"] == "sentence-transformers" and front["pipeline_tag"] == "sentence-similarity"
    assert {"trainforge", task, "sentence-transformers", "generated_from_trainer"} <= set(front["tags"])
    assert front["widget"]  # sentence-transformers' own metadata, kept
    scores = {m["type"]: m["value"] for m in front["model-index"][0]["results"][0]["metrics"]}
    best = TASKS[task].best
    assert scores[best.removeprefix("eval_")] == pytest.approx(result.metrics[best])
    assert f"for **{task}**" in text and "## Evaluation" in text  # ours
    # sentence-transformers' card, nested under ours: one title, no section name twice at one level
    assert "\n## SentenceTransformer" in text
    assert "#### Training Hyperparameters" in text
    body = text.split("\n---\n", 1)[1].split("```")[::2]  # the text between code blocks
    outline = [line for part in body for line in part.splitlines() if line.startswith("#")]
    assert sum(line.startswith("# ") for line in outline) == 1 and outline.count("## Evaluation") == 1
    assert "Reproduce with `trainforge train" in text


def test_run_directory_is_a_sentence_transformers_folder(run):
    _, result = run
    for name in ("modules.json", "config_sentence_transformers.json", "sentence_bert_config.json", "tokenizer.json"):
        assert (result.output_dir / name).is_file(), name
    assert (result.output_dir / "1_Pooling" / "config.json").is_file()


def test_cached_loss_matches_the_plain_loss(tiny_bert, tmp_path):
    """GradCache computes the same loss and gradients in mini-batches: both runs log the same losses.

    Without dropout, whose masks depend on how a batch is cut into mini-batches.
    """
    import shutil

    model = tmp_path / "no-dropout"
    shutil.copytree(tiny_bert, model)
    settings = json.loads((model / "config.json").read_text())
    settings.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    (model / "config.json").write_text(json.dumps(settings))
    st_frame().to_csv(tmp_path / "rows.csv", index=False)
    losses = []
    for name, params in (("plain", {}), ("cached", {"cached_mini_batch_size": 4})):
        config = st_config(
            "sentence_transformers_pair", str(model), tmp_path / "rows.csv", tmp_path / name, params=params,
            training={"max_steps": 3, "eval_on_start": False},
        )  # fmt: skip
        losses.append(step_losses(trainforge.train(config).output_dir))
    assert losses[1] == pytest.approx(losses[0], rel=1e-4)
    assert "loss:CachedMultipleNegativesRankingLoss" in (tmp_path / "cached" / "README.md").read_text()


def test_crashed_run_resumes_from_its_checkpoint(tiny_bert, tmp_path, monkeypatch, capsys):
    """Checkpoints are sentence-transformers folders; --resume continues from the last one with its evaluator."""
    from trainforge.cli.main import main
    from trainforge.training.callbacks import EventsCallback

    st_frame().to_csv(tmp_path / "rows.csv", index=False)
    training = {"max_steps": 6, "eval_strategy": "steps", "eval_steps": 2, "eval_on_start": False}
    config = st_config("sentence_transformers_triplet", tiny_bert, tmp_path / "rows.csv", tmp_path / "run",
                       training=training)  # fmt: skip
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(config))

    def crash(self, args, state, control, **kwargs):
        if state.global_step == 3:
            raise RuntimeError("simulated crash at step 3")

    monkeypatch.setattr(EventsCallback, "on_step_end", crash, raising=False)
    assert main(["train", str(tmp_path / "run.yaml")]) == 1
    assert (tmp_path / "run" / "checkpoints" / "checkpoint-2" / "modules.json").is_file()
    monkeypatch.undo()
    assert main(["train", str(tmp_path / "run.yaml"), "--resume"]) == 0, capsys.readouterr().err
    events = read_events(tmp_path / "run" / "events.jsonl")
    assert [e for e in events if e["event"] == "train_started"][-1]["start_step"] == 2
    assert [e["step"] for e in events if e["event"] == "step"][-4:] == [3, 4, 5, 6]
    assert {e["step"] for e in events if e["event"] == "eval"} >= {2, 4, 6}
    assert "eval_cosine_accuracy" in json.loads((tmp_path / "run" / "metrics.json").read_text())


# ------------------------------------------------------------------------------------------------ test split


@pytest.mark.parametrize("task", ["sentence_transformers_pair_score", "sentence_transformers_qa"])
def test_test_split_is_scored_with_its_own_evaluator(task, tiny_bert, tmp_path):
    """``data.test_split`` is scored by an evaluator of the test rows, not by the eval split's evaluator."""
    folder = tmp_path / "data"
    folder.mkdir()
    frame = st_frame()
    frame.iloc[:96].to_csv(folder / "train.csv", index=False)
    frame.iloc[96:].to_csv(folder / "valid.csv", index=False)
    test = st_frame(24, seed=4)
    test["score"] = 5 - test["score"]  # reversed similarities: a Spearman of the opposite sign
    test["pos"] = test["neg"]  # answers that do not match their queries: a lower NDCG
    test.to_csv(folder / "test.csv", index=False)
    config = st_config(task, tiny_bert, folder, tmp_path / "run")
    config["data"].update(eval_split="valid", test_split="test", eval_fraction=None)
    result = trainforge.train(config)
    best = TASKS[task].best.removeprefix("eval_")
    metrics = json.loads((result.output_dir / "metrics.json").read_text())
    assert metrics[f"test_{best}"] < metrics[f"eval_{best}"] - 0.2, metrics
    assert "test_loss" not in metrics and not any(k.endswith("_runtime") for k in metrics if k.startswith("test_"))
    card = (result.output_dir / "README.md").read_text()
    assert "* Datasets: `eval` and `test`" in card  # sentence-transformers' own card lists the test evaluation too
    # ... and its eval column shows the kept checkpoint's scores (not the last evaluation's)
    assert f"{metrics[f'eval_{best}']:.4f}" in card and f"{metrics[f'test_{best}']:.4f}" in card


# ------------------------------------------------------------------------------------------------ data formats


def validate(task: str, frame: pd.DataFrame, tmp_path: Path, tiny_bert: str, name: str = "rows.csv", **sections):
    path = tmp_path / name
    if name.endswith(".jsonl"):
        frame.to_json(path, orient="records", lines=True)
    else:
        frame.to_csv(path, index=False)
    return trainforge.validate(st_config(task, tiny_bert, path, tmp_path / "run", **sections))


def test_scores_from_0_to_5_are_divided_by_5_with_a_note(tmp_path, tiny_bert):
    report = validate("sentence_transformers_pair_score", st_frame(), tmp_path, tiny_bert)
    assert report.facts["max_score"] == 5
    assert any("divided by 5 to 0-1" in note for note in report.notes)
    assert report.problem_type == "sentence_similarity"


def test_scores_from_0_to_1_are_kept(tmp_path, tiny_bert):
    frame = st_frame()
    frame["score"] = frame["score"] / 5
    report = validate("sentence_transformers_pair_score", frame, tmp_path, tiny_bert)
    assert report.facts["max_score"] == 1 and not any("divided" in note for note in report.notes)


def test_max_score_sets_another_scale(tmp_path, tiny_bert):
    frame = st_frame()
    frame["score"] = frame["score"] * 2  # 0-10 ratings
    with pytest.raises(DataError, match="scores above 5 .* set params.max_score"):
        validate("sentence_transformers_pair_score", frame, tmp_path, tiny_bert)
    report = validate("sentence_transformers_pair_score", frame, tmp_path, tiny_bert, params={"max_score": 10})
    assert report.facts["max_score"] == 10 and any("divided by 10" in note for note in report.notes)


def test_pair_class_labels_and_notes(tmp_path, tiny_bert):
    frame = st_frame()
    frame["label"] = np.where(frame["label"] == "match", 1, 0)
    report = validate("sentence_transformers_pair_class", frame, tmp_path, tiny_bert)
    assert report.labels == ("0", "1") and report.problem_type == "single_label_classification"
    assert any("mean pooling" in note for note in report.notes)  # the tiny BERT is a plain transformers model


def test_jsonl_data(tmp_path, tiny_bert):
    report = validate("sentence_transformers_triplet", st_frame(), tmp_path, tiny_bert, name="rows.jsonl")
    assert report.train_rows == 96 and report.eval_rows == 32


@pytest.mark.parametrize("run", ["sentence_transformers_pair_score"], indirect=True)
def test_predict_refuses_bad_inputs(run):
    _, result = run
    predictor = trainforge.load_predictor(result.output_dir)
    with pytest.raises(DataError, match="the input has no column 'a'"):
        predictor.predict(pd.DataFrame({"text": ["good film"]}))
    with pytest.raises(DataError, match="the b column is empty in 1 row"):
        predictor.predict(pd.DataFrame({"a": ["good film", "bad film"], "b": ["great film", " "]}))
    with pytest.raises(DataError, match="not text"):
        predictor.predict(pd.DataFrame({"a": [3.5]}))


# ------------------------------------------------------------------------------------------------ the reference


def reference_config(task: str, mapping: dict, params: dict | None = None) -> dict:
    return {
        "task": task,
        "base_model": "{bert}",
        "project_name": "{tmp}/run",
        "log": "none",
        "backend": "local",
        "data": {"path": "{tmp}/rows.csv", "train_split": "train", "valid_split": None, "column_mapping": mapping},
        "params": {"max_seq_length": 32, "epochs": 1, "batch_size": 8, "lr": 3e-5, **(params or {})},
    }


@pytest.mark.parametrize(
    ("task", "mapping", "ours", "columns"),
    [
        ("st:pair", {"sentence1_column": "a", "sentence2_column": "pos"}, "pair", {"anchor": "a", "positive": "pos"}),
        (
            "sentence-transformers:pair_class",
            {"sentence1_column": "a", "sentence2_column": "b", "target_column": "label"},
            "pair_class",
            {"sentence1": "a", "sentence2": "b", "label": "label"},
        ),
        (
            "st:pair_score",
            {"sentence1_column": "a", "sentence2_column": "b", "target_column": "score"},
            "pair_score",
            {"sentence1": "a", "sentence2": "b", "score": "score"},
        ),
        (
            "sentence-transformers:triplet",
            {"sentence1_column": "a", "sentence2_column": "pos", "sentence3_column": "neg"},
            "triplet",
            {"anchor": "a", "positive": "pos", "negative": "neg"},
        ),
        ("st:qa", {"sentence1_column": "a", "sentence2_column": "pos"}, "qa", {"query": "a", "answer": "pos"}),
    ],
)
def test_reference_configs_map_onto_the_five_tasks(task, mapping, ours, columns, tmp_path, tiny_bert):
    from trainforge.config.loading import load_config

    st_frame().to_csv(tmp_path / "rows.csv", index=False)
    raw = json.loads(json.dumps(reference_config(task, mapping, {"trainer": ours})).replace("{tmp}", str(tmp_path)))
    raw["base_model"] = tiny_bert
    config = load_config(raw)
    assert config.task == f"sentence_transformers_{ours}"
    assert config.data.columns == columns
    assert config.params.max_length == 32 and config.training.learning_rate == pytest.approx(3e-5)
    report = trainforge.validate(config)
    assert report.train_rows == 102  # the reference's 20% hold-out


def test_reference_trainer_param_contradicting_the_task(tmp_path, tiny_bert):
    from trainforge.config.loading import load_config

    raw = reference_config("st:pair", {"sentence1_column": "a", "sentence2_column": "pos"}, {"trainer": "triplet"})
    with pytest.raises(ConfigError, match="params.trainer: 'triplet' contradicts task st:pair"):
        load_config(json.loads(json.dumps(raw).replace("{tmp}", str(tmp_path)).replace("{bert}", tiny_bert)))


def test_the_five_tasks_are_one_spec_with_their_own_columns():
    from trainforge.tasks import get_task
    from trainforge.tasks.sentence_transformers import VARIANTS

    specs = [get_task(name) for name in VARIANTS]
    assert [s.name for s in specs] == list(TASKS)
    for field in ("analyze", "prepare", "build_model", "make_trainer", "load_predictor", "model_card", "check_config"):
        assert len({id(getattr(s, field)) for s in specs}) == 1, field
    assert [tuple(c.name for c in s.inputs_to_predict()) for s in specs] == [
        ("anchor", "positive"),
        ("sentence1", "sentence2"),
        ("sentence1", "sentence2"),
        ("anchor", "positive"),
        ("query", "answer"),
    ]  # the playground asks for two texts and compares them
    assert {s.library_name for s in specs} == {"sentence-transformers"} and specs[0].lora is None
