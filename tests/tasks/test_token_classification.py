"""token_classification end to end on a tiny BERT: training, plain-transformers reload, predict, data formats."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pandas as pd
import pytest
import yaml
from safetensors.numpy import load_file

import trainforge
from conftest import NEGATIVE, NEUTRAL, POSITIVE, SHARED_DATA, build_tiny_bert
from trainforge.cli.main import main
from trainforge.config.loading import load_config
from trainforge.data.conll import read_conll
from trainforge.errors import DataError
from trainforge.tasks.token_classification import IGNORED, first_subtoken_labels
from trainforge.training.driver import check
from trainforge.training.events import read_events

# Entities the tiny tokenizer splits into several sub-tokens ("greatson" -> great ##son): a person is two words
# (B-PER I-PER), a place one (B-LOC); the other words are outside any entity.
PERSON_FIRST = [word + "son" for word in POSITIVE[:5]]
PERSON_LAST = [word + "ly" for word in POSITIVE[5:]]
PLACES = [word + "ton" for word in NEGATIVE]


def make_ner_rows(rows: int, seed: int = 0) -> list[dict]:
    """Sentences of 3-6 neutral words and punctuation with one or two entities inserted: learnable in a few steps."""
    rng = random.Random(seed)
    out = []
    for _ in range(rows):
        words = rng.sample([*NEUTRAL, ",", "."], rng.randint(3, 6))
        tags = ["O"] * len(words)
        for kind in rng.sample(["PER", "LOC"], rng.randint(1, 2)):
            at = rng.randint(0, len(words))
            if kind == "PER":
                words[at:at], tags[at:at] = [rng.choice(PERSON_FIRST), rng.choice(PERSON_LAST)], ["B-PER", "I-PER"]
            else:
                words[at:at], tags[at:at] = [rng.choice(PLACES)], ["B-LOC"]
        out.append({"tokens": words, "tags": tags})
    return out


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def write_conll(path: Path, rows: list[dict], docstart: bool = False) -> Path:
    blocks = ["-DOCSTART- O\n"] if docstart else []
    blocks += ["".join(f"{w} {t}\n" for w, t in zip(r["tokens"], r["tags"], strict=True)) for r in rows]
    path.write_text("\n".join(blocks), encoding="utf-8")
    return path


def config_for(model: str, source: Path, out: Path, **sections) -> dict:
    config = {
        "task": "token_classification",
        "model": {"name": model},
        "data": {"source": str(source), "eval_fraction": 0.2},
        "training": {
            "num_train_epochs": 3,
            "learning_rate": 1e-2,
            "per_device_train_batch_size": 16,
            "logging_steps": 1,
        },
        "params": {"max_length": 32},
        "output": {"dir": str(out), "report_to": ["none"]},
    }
    for section, values in sections.items():
        config[section] = {**config.get(section, {}), **values}
    return config


# ------------------------------------------------------------------------------------------------ one run


@pytest.fixture(scope="module")
def ner(tiny_bert, tmp_path_factory):
    """One run on JSONL train/valid/test files, shared by the tests that inspect what it left behind."""
    folder = tmp_path_factory.mktemp("ner")
    write_jsonl(folder / "train.jsonl", make_ner_rows(160))
    write_jsonl(folder / "valid.jsonl", make_ner_rows(40, seed=1))
    write_conll(folder / "test.conll", make_ner_rows(30, seed=2))  # another format in the same folder: read too
    splits = {"eval_split": "valid", "test_split": "test", "eval_fraction": None}
    config = config_for(tiny_bert, folder, folder / "run", data=splits)
    return trainforge.train(config)


def test_loss_is_finite_and_falls(ner):
    losses = [e["loss"] for e in read_events(ner.output_dir / "events.jsonl") if e["event"] == "step"]
    assert len(losses) >= 8 and all(math.isfinite(loss) for loss in losses)
    assert sum(losses[-4:]) / 4 < sum(losses[:4]) / 4 - 0.2, losses


def test_parameters_changed_and_head_has_one_output_per_tag(ner, tiny_bert):
    base = load_file(str(Path(tiny_bert) / "model.safetensors"))
    tuned = {k.removeprefix("bert."): v for k, v in load_file(str(ner.output_dir / "model.safetensors")).items()}
    encoder = [k for k in base if k.startswith("encoder.")]
    assert encoder and all(not (base[k] == tuned[k]).all() for k in encoder)
    assert tuned["classifier.weight"].shape == (4, 32)


def test_metrics_are_seqeval_scores_overall_and_per_type(ner):
    metrics = json.loads((ner.output_dir / "metrics.json").read_text())
    for key in ("eval_f1", "eval_precision", "eval_recall", "eval_accuracy", "eval_f1_strict", "eval_loss"):
        assert math.isfinite(metrics[key]), key
    assert {"eval_f1_PER", "eval_precision_LOC", "eval_recall_PER"} <= set(metrics)
    assert metrics["eval_f1"] >= 0.8 and metrics["eval_accuracy"] >= 0.9  # the words decide the tags
    # The test split, scored once with the kept model: the same seqeval scores under test_*.
    assert {"test_f1", "test_f1_strict", "test_accuracy", "test_f1_PER", "test_loss"} <= set(metrics)
    assert metrics["test_f1"] >= 0.8
    model_config = json.loads((ner.output_dir / "config.json").read_text())
    assert model_config["id2label"] == {"0": "O", "1": "B-LOC", "2": "B-PER", "3": "I-PER"}


def test_lora_trains_an_adapter_and_saves_a_plain_merged_model(tiny_bert, tmp_path):
    write_jsonl(tmp_path / "train.jsonl", make_ner_rows(160))
    lora = {"enabled": True, "r": 4, "alpha": 32, "dropout": 0.0}
    result = trainforge.train(config_for(tiny_bert, tmp_path / "train.jsonl", tmp_path / "run", peft=lora))
    adapter = json.loads((result.output_dir / "adapter" / "adapter_config.json").read_text())
    assert adapter["task_type"] == "TOKEN_CLS" and adapter["r"] == 4
    trained = load_file(str(result.output_dir / "adapter" / "adapter_model.safetensors"))
    assert any("classifier" in k for k in trained)  # the new head trains in full beside the adapter
    merged = load_file(str(result.output_dir / "model.safetensors"))
    assert not any("lora" in k for k in merged) and merged["classifier.weight"].shape == (4, 32)
    from transformers import pipeline

    tagger = pipeline("token-classification", model=str(result.output_dir), device="cpu")
    assert {e["entity"] for e in tagger("the story greatson wittyly")} <= {"O", "B-LOC", "B-PER", "I-PER"}


def test_reloads_with_plain_transformers(ner):
    import torch
    from transformers import AutoModelForTokenClassification, AutoTokenizer, pipeline

    tokenizer = AutoTokenizer.from_pretrained(ner.output_dir)
    model = AutoModelForTokenClassification.from_pretrained(ner.output_dir).eval()
    batch = tokenizer(
        [["the", "greatson", "wittyly", "was", "dullton"]], is_split_into_words=True, return_tensors="pt"
    )
    with torch.inference_mode():
        predicted = model(**batch).logits.argmax(-1)[0].tolist()
    first = [
        i
        for i, (w, p) in enumerate(zip(batch.word_ids(0), [None, *batch.word_ids(0)][:-1], strict=True))
        if w != p and w is not None
    ]
    assert [model.config.id2label[predicted[i]] for i in first] == ["O", "B-PER", "I-PER", "O", "B-LOC"]
    tagger = pipeline("token-classification", model=str(ner.output_dir), aggregation_strategy="first", device="cpu")
    text = "the story greatson wittyly was really dullton"
    found = [(e["entity_group"], text[e["start"] : e["end"]]) for e in tagger(text)]
    assert found == [("PER", "greatson wittyly"), ("LOC", "dullton")]


def test_predict_returns_entity_spans_and_highlights(ner):
    predictor = trainforge.load_predictor(ner.output_dir)
    text = "The plot lovelyson movingly was really borington, quite."
    out = predictor.predict(pd.DataFrame({"tokens": [text, ["a", "funson", "wittyly"]], "id": [1, 2]}))
    assert list(out.columns) == ["tokens", "id", "words", "predicted_tags", "entities", "highlighted"]
    first, second = out.to_dict(orient="records")
    assert first["words"][-4:] == ["borington", ",", "quite", "."] and len(first["predicted_tags"]) == len(
        first["words"]
    )
    assert [(e["type"], e["text"]) for e in first["entities"]] == [("PER", "lovelyson movingly"), ("LOC", "borington")]
    for entity in first["entities"]:
        assert text[entity["start"] : entity["end"]] == entity["text"] and 0 < entity["score"] <= 1
    assert first["highlighted"] == "The plot [lovelyson movingly](PER) was really [borington](LOC), quite."
    assert second["entities"][0] == pytest.approx(
        {"text": "funson wittyly", "type": "PER", "start": 2, "end": 16, "score": second["entities"][0]["score"]}
    )


@pytest.mark.parametrize("strategy", ["first", "average", "max"])
def test_predict_aggregation_strategies(ner, strategy):
    """Only first sub-tokens are trained, so "first" is the reliable one; the others must still decode consistently."""
    predictor = trainforge.load_predictor(ner.output_dir, [f"params.aggregation_strategy={strategy}"])
    text = "a greatson charmingly film is dullton"
    (row,) = predictor.predict(pd.DataFrame({"tokens": [text]})).to_dict(orient="records")
    assert len(row["predicted_tags"]) == 6 and set(row["predicted_tags"]) <= {"O", "B-LOC", "B-PER", "I-PER"}
    assert all(text[e["start"] : e["end"]] == e["text"] for e in row["entities"])
    if strategy == "first":
        assert row["predicted_tags"] == ["O", "B-PER", "I-PER", "O", "O", "B-LOC"]


def test_predict_long_input_tags_every_word(ner):
    words = ["the", "film", "greatson", "wittyly", "is", "dullton"] * 12  # 72 words, 100+ tokens: several windows
    out = trainforge.load_predictor(ner.output_dir).predict(pd.DataFrame({"tokens": [words]}))
    assert len(out["predicted_tags"][0]) == 72
    assert [e["type"] for e in out["entities"][0]] == ["PER", "LOC"] * 12


def test_predict_cli_and_bad_inputs(ner, tmp_path, capsys):
    write_conll(tmp_path / "new.conll", make_ner_rows(6, seed=3))
    code = main(
        ["predict", str(ner.output_dir), "--input", str(tmp_path / "new.conll"), "--output", str(tmp_path / "p.jsonl")]
    )
    assert code == 0, capsys.readouterr().err
    rows = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert len(rows) == 6 and all(r["predicted_tags"] == r["tags"] for r in rows[:3])
    predictor = trainforge.load_predictor(ner.output_dir)
    with pytest.raises(DataError, match="the input has no column 'tokens'.*found: text"):
        predictor.predict(pd.DataFrame({"text": ["a film"]}))
    with pytest.raises(DataError, match=r"holds no words in rows 2, 3 \(row 2 holds a blank string '  '\)"):
        predictor.predict(pd.DataFrame({"tokens": ["a film", "  ", []]}))


def test_app_playground_shows_highlighted_entities(ner, tmp_path):
    """The generic app asks for the tokens column and shows predict's columns: the highlighted text among them."""
    pytest.importorskip("fastapi")
    import shutil
    import time

    from fastapi.testclient import TestClient

    from trainforge.app.jobs import JobStore
    from trainforge.app.server import AppSettings, create_app

    store = JobStore(tmp_path / "ws")
    job = store.create(yaml.safe_load((ner.output_dir / "config.resolved.yaml").read_text()), "ner")
    shutil.rmtree(job.run_dir, ignore_errors=True)
    shutil.copytree(ner.output_dir, job.run_dir)
    store.update(job.id, status="succeeded", started=time.time(), finished=time.time(), returncode=0)
    with TestClient(create_app(AppSettings(tmp_path / "ws", poll_s=0.1)), base_url="http://127.0.0.1") as client:
        view = client.get(f"/api/runs/{job.id}").json()
        assert view["playground"]["kind"] == "form" and [i["column"] for i in view["playground"]["inputs"]] == [
            "tokens"
        ]
        body = {"inputs": {"tokens": "the story greatson wittyly was really dullton"}}
        (row,) = client.post(f"/api/runs/{job.id}/predict", json=body).json()["predictions"]
    assert row["highlighted"] == "the story [greatson wittyly](PER) was really [dullton](LOC)"
    assert "'type': 'PER'" in row["entities"] and "'start': 10" in row["entities"]


def test_tags_are_learned_on_first_subtokens_only(tiny_bert):
    from transformers import AutoTokenizer

    encoded = AutoTokenizer.from_pretrained(tiny_bert)(["greatson", "the"], is_split_into_words=True)
    assert encoded.tokens() == ["[CLS]", "great", "##s", "##o", "##n", "the", "[SEP]"]
    assert first_subtoken_labels(encoded.word_ids(), [2, 0]) == [IGNORED, 2, IGNORED, IGNORED, IGNORED, 0, IGNORED]


# ------------------------------------------------------------------------------------------------ data formats


def checked_rows(config: dict) -> tuple[list, list, tuple]:
    """The training sentences as analysis read them (``facts["encoded"]``), and the tag set."""
    checked = check(load_config(config))
    sentences = checked.labels.facts["encoded"]["train"]
    assert sentences.index.equals(checked.splits.train.index)  # rows keep their numbers for messages
    return list(sentences["tokens"]), list(sentences["tags"]), checked.labels.names


@pytest.mark.parametrize("fmt", ["jsonl", "parquet", "csv", "conll", "txt"])
def test_data_formats_read_the_same_sentences(fmt, tiny_bert, tmp_path):
    rows = make_ner_rows(12, seed=4)
    path = tmp_path / f"train.{fmt}"
    if fmt == "jsonl":
        write_jsonl(path, rows)
    elif fmt == "parquet":
        pd.DataFrame(rows).to_parquet(path)
    elif fmt == "csv":  # list-valued cells: Python list text, as pandas (and the reference) write them
        pd.DataFrame({"words": [r["tokens"] for r in rows], "labels": [r["tags"] for r in rows]}).to_csv(
            path, index=False
        )
    else:
        write_conll(path, rows, docstart=True)
    columns = {"tokens": "words", "tags": "labels"} if fmt == "csv" else {}
    tokens, tags, names = checked_rows(
        config_for(tiny_bert, path, tmp_path / "run", data={"eval_fraction": 0, "columns": columns})
    )
    assert tokens == [r["tokens"] for r in rows] and tags == [r["tags"] for r in rows]
    assert names == ("O", "B-LOC", "B-PER", "I-PER")


def test_conll_reader_names_malformed_lines(tmp_path):
    (tmp_path / "a.conll").write_text("EU B-ORG\nrejects O\n\n-DOCSTART- O\n\nPeter B-PER\nBlackburn\n")
    with pytest.raises(DataError, match=r"a.conll: line 7 \('Blackburn'\) holds one field"):
        read_conll(tmp_path / "a.conll")
    (tmp_path / "b.conll").write_text("EU NNP B-ORG\nrejects VBZ O\nGerman B-MISC\n")
    with pytest.raises(DataError, match=r"b.conll: line 3 \('German B-MISC'\) holds 2 fields, but line 1 holds 3"):
        read_conll(tmp_path / "b.conll")
    (tmp_path / "c.conll").write_bytes(b"EU B-ORG\ncaf\xe9 O\n")
    with pytest.raises(DataError, match=r"c.conll: line 2 is not UTF-8 text \(byte 0xe9\)"):
        read_conll(tmp_path / "c.conll")
    (tmp_path / "d.conll").write_text("-DOCSTART- O\n\n\n")
    with pytest.raises(DataError, match="holds no sentence"):
        read_conll(tmp_path / "d.conll")
    (tmp_path / "e.conll").write_text("\ufeffEU NNP B-NP B-ORG\nrejects VBZ B-VP O\n\n\nPeter NNP B-NP B-PER")
    frame = read_conll(tmp_path / "e.conll")
    assert frame.to_dict("list") == {"tokens": [["EU", "rejects"], ["Peter"]], "tags": [["B-ORG", "O"], ["B-PER"]]}
    assert len(read_conll(tmp_path / "e.conll", max_rows=1)) == 1


def test_tags_only_in_eval_are_named_and_ids_read_with_label_names(tiny_bert, tmp_path):
    rows = make_ner_rows(10)
    write_jsonl(tmp_path / "train.jsonl", rows)
    write_jsonl(tmp_path / "valid.jsonl", [{"tokens": ["a", "wittyton"], "tags": ["O", "B-ORG"]}])
    config = config_for(tiny_bert, tmp_path, tmp_path / "run", data={"eval_split": "valid", "eval_fraction": None})
    report = trainforge.validate(config)
    assert report.labels == ("O", "B-LOC", "B-ORG", "B-PER", "I-PER")
    assert any("tags ['B-ORG'] never occur in training" in note and "cannot learn" in note for note in report.notes)
    names = ["O", "B-PER", "I-PER", "B-LOC"]
    ids = [{"tokens": r["tokens"], "tags": [names.index(t) for t in r["tags"]]} for r in rows]
    write_jsonl(tmp_path / "ids.jsonl", ids)
    config = config_for(tiny_bert, tmp_path / "ids.jsonl", tmp_path / "run", data={"eval_fraction": 0})
    with pytest.raises(DataError, match="the tags are integer ids .* name them with params.label_names"):
        trainforge.validate(config)
    report = trainforge.validate({**config, "params": {"label_names": names}})
    assert report.labels == tuple(names) and report.facts["scheme"] == "IOB2"


def test_plain_and_iobes_tags(tiny_bert, tmp_path):
    plain = [{"tokens": r["tokens"], "tags": [t.split("-")[-1] for t in r["tags"]]} for r in make_ner_rows(10)]
    write_jsonl(tmp_path / "plain.jsonl", plain)
    report = trainforge.validate(config_for(tiny_bert, tmp_path / "plain.jsonl", tmp_path / "run"))
    assert report.labels == ("O", "LOC", "PER") and report.facts["scheme"] == "IO"
    write_jsonl(tmp_path / "iobes.jsonl", [{"tokens": ["a", "b", "c"], "tags": ["B-X", "E-X", "S-Y"]}] * 4)
    assert (
        trainforge.validate(config_for(tiny_bert, tmp_path / "iobes.jsonl", tmp_path / "run")).facts["scheme"]
        == "IOBES"
    )


@pytest.mark.skipif(not (SHARED_DATA / "conll2003").is_dir(), reason="../shared/data/conll2003 is not here")
def test_conll2003_reads_natively(tiny_bert, tmp_path):
    config = config_for(
        tiny_bert, SHARED_DATA / "conll2003", tmp_path / "run", data={"eval_split": "test", "eval_fraction": None}
    )
    report = trainforge.validate(config)
    assert (report.train_rows, report.eval_rows) == (14041, 3453)  # the test file's 230 -DOCSTART- lines dropped
    assert report.labels == ("O", "B-LOC", "I-LOC", "B-MISC", "I-MISC", "B-ORG", "I-ORG", "B-PER", "I-PER")


# ------------------------------------------------------------------------------------------------ reference config

REFERENCE = """\
task: token_classification
base_model: {model}
project_name: autotrain-bert-custom-finetuned
log: tensorboard
backend: local

data:
  path: data/ # this must be the path to the directory containing the train and valid files
  train_split: train # this must be either train.json
  valid_split: test # this must be either valid.json, can also be set to null
  column_mapping:
    tokens_column: tokens # this must be the name of the column containing the text
    tags_column: tags # this must be the name of the column containing the target

params:
  max_seq_length: 512
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
    """configs/token_classification/local_dataset.yml of the reference, only base_model and push_to_hub changed."""
    model = build_tiny_bert(tmp_path / "bert512", max_positions=512)
    (tmp_path / "data").mkdir()
    write_jsonl(tmp_path / "data" / "train.jsonl", make_ner_rows(24))
    write_jsonl(tmp_path / "data" / "test.jsonl", make_ner_rows(8, seed=1))
    (tmp_path / "config.yml").write_text(REFERENCE.format(model=model))
    for name in ("HF_USERNAME", "HF_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    assert main(["train", "config.yml"]) == 0, capsys.readouterr().err
    run = tmp_path / "autotrain-bert-custom-finetuned"
    resolved = yaml.safe_load((run / "config.resolved.yaml").read_text())
    assert resolved["params"]["max_length"] == 512 and resolved["data"]["columns"] == {
        "tokens": "tokens",
        "tags": "tags",
    }
    assert resolved["training"]["num_train_epochs"] == 3 and resolved["training"]["per_device_train_batch_size"] == 4
    metrics = json.loads((run / "metrics.json").read_text())
    assert math.isfinite(metrics["eval_f1"]) and math.isfinite(metrics["train_loss"])
    assert any(p.name.startswith("events.out.tfevents") for p in (run / "tensorboard").iterdir())


def test_prepare_labels_first_subtokens_and_names_truncated_sentences(tiny_bert, tmp_path, capsys):
    from trainforge.training import driver

    rows = [{"tokens": ["greatson", "the", "dullton", "film", "was", "a", "plot"], "tags": ["B-PER", *"OBOOOO"]}]
    rows[0]["tags"][2] = "B-LOC"
    write_jsonl(tmp_path / "train.jsonl", [*rows, {"tokens": ["a", "film"], "tags": ["O", "O"]}])
    config = config_for(tiny_bert, tmp_path / "train.jsonl", tmp_path / "run", data={"eval_fraction": 0})
    checked = driver.check(load_config({**config, "params": {"max_length": 8}}))
    prepared = driver.prepare(checked)
    assert "1 sentence(s) are longer than params.max_length (8 tokens), first: rows 1" in capsys.readouterr().err
    names = checked.labels.names  # O, B-LOC, B-PER
    first = prepared.train[0]
    assert len(first["input_ids"]) == 8  # [CLS] great ##s ##o ##n the dull ... [SEP]: cut at 8 tokens
    assert [names[i] if i != IGNORED else None for i in first["labels"]] == [
        None,
        "B-PER",
        None,
        None,
        None,
        "O",
        "B-LOC",
        None,
    ]
    assert prepared.eval is None and prepared.test is None


def test_byte_level_tokenizers_get_a_prefix_space(tmp_path):
    """Words given one by one must tokenise as in running text ("Ġfilm"), also after a plain reload of the run."""
    from types import SimpleNamespace

    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import AutoTokenizer, GPT2Config, PreTrainedTokenizerFast

    from trainforge.tasks.token_classification import load_tokenizer

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer, backend.decoder = pre_tokenizers.ByteLevel(add_prefix_space=False), decoders.ByteLevel()
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    backend.train_from_iterator(
        ["the film was fun"] * 20,
        trainers.BpeTrainer(vocab_size=300, special_tokens=["<pad>"], initial_alphabet=alphabet),
    )
    PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>").save_pretrained(tmp_path / "bpe")
    GPT2Config(vocab_size=backend.get_vocab_size(), n_layer=1, n_embd=8, n_head=1).save_pretrained(tmp_path / "bpe")

    def second_word(tokenizer) -> str:
        encoded = tokenizer(["the", "film"], is_split_into_words=True)
        return "".join(t for t, w in zip(encoded.tokens(), encoded.word_ids(), strict=True) if w == 1)

    assert second_word(AutoTokenizer.from_pretrained(tmp_path / "bpe")) == "film"  # as if glued to "the"
    model = SimpleNamespace(name=str(tmp_path / "bpe"), revision=None, trust_remote_code=False)
    tokenizer = load_tokenizer(SimpleNamespace(config=SimpleNamespace(model=model)))
    assert second_word(tokenizer) == "Ġfilm"
    tokenizer.save_pretrained(tmp_path / "run")
    assert second_word(AutoTokenizer.from_pretrained(tmp_path / "run")) == "Ġfilm"
