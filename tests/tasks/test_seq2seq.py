"""seq2seq end to end on tiny random T5 and BART models: training, generation metrics, reload, predict, data."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
import yaml
from safetensors.numpy import load_file

import trainforge
from conftest import make_translation_frame
from trainforge.cli.main import main
from trainforge.training.events import read_events

PREFIX = "translate: "
SCORES = ("rouge1", "rouge2", "rougeL", "rougeLsum", "bleu", "chrf")


def make_config(model: str, source: Path, out: Path, **sections) -> dict:
    """A fast seq2seq config: toy en -> de pairs, 16 tokens, batch 16, a high learning rate, a loss every step."""
    config = {
        "task": "seq2seq",
        "model": {"name": model},
        "data": {"source": str(source), "columns": {"text": "source", "target": "target"}, "eval_fraction": 0.25},
        "training": {
            "num_train_epochs": 6,
            "learning_rate": 1e-2,
            "per_device_train_batch_size": 16,
            "logging_steps": 1,
        },
        "params": {"max_length": 16, "max_target_length": 16, "task_prefix": PREFIX, "num_beams": 2},
        "output": {"dir": str(out), "report_to": ["none"]},
    }
    for section, values in sections.items():
        config[section] = {**config.get(section, {}), **values}
    return config


def step_losses(run_dir: Path) -> list[float]:
    return [e["loss"] for e in read_events(run_dir / "events.jsonl") if e["event"] == "step"]


@pytest.fixture(scope="module")
def t5_run(tiny_t5, tmp_path_factory):
    """One T5 run shared by the tests that inspect it, with every evaluation (generation) counted."""
    from transformers import Seq2SeqTrainer

    folder = tmp_path_factory.mktemp("t5")
    make_translation_frame(160).to_csv(folder / "pairs.csv", index=False)
    calls = []
    original = Seq2SeqTrainer.evaluate

    def counted(self, *args, **kwargs):
        calls.append(kwargs.get("metric_key_prefix", "eval"))
        return original(self, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Seq2SeqTrainer, "evaluate", counted)
        result = trainforge.train(make_config(tiny_t5, folder / "pairs.csv", folder / "run"))
    return result, calls


def test_loss_is_finite_and_falls(t5_run):
    result, _ = t5_run
    losses = step_losses(result.output_dir)
    assert len(losses) >= 24 and all(math.isfinite(loss) for loss in losses)
    assert sum(losses[-4:]) / 4 < sum(losses[:4]) / 4 - 0.5, losses


def test_parameters_changed(t5_run, tiny_t5):
    result, _ = t5_run
    base = load_file(str(Path(tiny_t5) / "model.safetensors"))
    tuned = load_file(str(result.output_dir / "model.safetensors"))
    shared = [k for k in base if k in tuned]
    assert len(shared) == len(base) > 20
    unchanged = [k for k in shared if (base[k] == tuned[k]).all()]
    assert not unchanged, unchanged


def test_generation_metrics_beat_copying_the_source(t5_run):
    result, calls = t5_run
    metrics = json.loads((result.output_dir / "metrics.json").read_text())
    assert metrics == pytest.approx(result.metrics)
    for name in SCORES:
        assert 0 <= metrics[f"eval_{name}"] <= 100, name
    assert 3 <= metrics["eval_gen_len"] <= 17  # 4 words + EOS, at most max_target_length + 1
    assert math.isfinite(metrics["eval_loss"]) and math.isfinite(metrics["train_loss"])
    started = read_events(result.output_dir / "events.jsonl")[0]
    copy = result.labels.facts["copy_source"]
    assert metrics["eval_chrf"] > copy["chrf"] + 10 and metrics["eval_bleu"] > copy["bleu"]
    assert not any("no better than copying" in note for note in started["notes"])
    # The final metrics are the logged evaluation of the kept checkpoint: generation ran once per epoch, no more.
    assert calls == ["eval"] * 6


def test_run_directory_and_model_card(t5_run):
    result, _ = t5_run
    run_dir = result.output_dir
    for name in ("config.json", "model.safetensors", "generation_config.json", "tokenizer.json", "README.md"):
        assert (run_dir / name).is_file(), name
    generation = json.loads((run_dir / "generation_config.json").read_text())
    assert generation["num_beams"] == 2 and generation["max_length"] == 17  # 16 new tokens after the start token
    card = (run_dir / "README.md").read_text()
    front = yaml.safe_load(card.split("---\n")[1])
    assert front["pipeline_tag"] == "text2text-generation"
    assert "AutoModelForSeq2SeqLM" in card and repr(PREFIX + "an example input") in card and "| bleu |" in card


def test_reloads_with_plain_transformers_and_predict_agrees(t5_run):
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    result, _ = t5_run
    sources = ["the red cat runs", "the big dog sleeps", "the small bird sings"]
    tokenizer = AutoTokenizer.from_pretrained(result.output_dir)
    model = AutoModelForSeq2SeqLM.from_pretrained(result.output_dir)
    batch = tokenizer([PREFIX + s for s in sources], return_tensors="pt", padding=True)
    plain = [t.strip() for t in tokenizer.batch_decode(model.generate(**batch), skip_special_tokens=True)]
    predictor = trainforge.load_predictor(result.output_dir)
    predicted = predictor.predict(pd.DataFrame({"source": sources, "id": [1, 2, 3]}))
    assert list(predicted.columns) == ["source", "id", "prediction"]
    assert list(predicted["prediction"]) == plain
    assert all(isinstance(text, str) and text for text in plain)
    assert plain[0].startswith("die")


def test_predict_cli(t5_run, tmp_path, capsys):
    result, _ = t5_run
    inputs = make_translation_frame(12, seed=7)
    inputs[["source"]].to_csv(tmp_path / "new.csv", index=False)
    code = main(
        ["predict", str(result.output_dir), "--input", str(tmp_path / "new.csv"), "--output", str(tmp_path / "p.csv")]
    )
    assert code == 0, capsys.readouterr().err
    predictions = pd.read_csv(tmp_path / "p.csv")
    assert list(predictions.columns) == ["source", "prediction"] and len(predictions) == 12
    # The toy language is learnable: most predicted words are the right ones.
    right = [
        sum(a == b for a, b in zip(p.split(), t.split(), strict=False)) / 4
        for p, t in zip(predictions["prediction"].fillna(""), inputs["target"], strict=True)
    ]
    assert sum(right) / len(right) >= 0.5, list(predictions["prediction"])


def test_predict_refuses_missing_column_and_empty_texts(t5_run, tmp_path, capsys):
    result, _ = t5_run
    pd.DataFrame({"text": ["the red cat runs"]}).to_csv(tmp_path / "a.csv", index=False)
    code = main(
        ["predict", str(result.output_dir), "--input", str(tmp_path / "a.csv"), "--output", str(tmp_path / "p.csv")]
    )
    assert code == 2 and "the input has no column 'source'" in capsys.readouterr().err
    (tmp_path / "b.csv").write_text('source\nthe red cat runs\n""\n', encoding="utf-8")
    code = main(
        ["predict", str(result.output_dir), "--input", str(tmp_path / "b.csv"), "--output", str(tmp_path / "p.csv")]
    )
    assert code == 2 and "the source column is empty in 1 row(s), first: rows 2" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------ BART, test split


def test_bart_test_split_is_scored_once_and_predict_reproduces_it(tiny_bart, tmp_path):
    """BART (absolute positions, decoding starts from </s>); ``data.test_split`` is reported as ``test_*``."""
    import sacrebleu

    folder = tmp_path / "data"
    folder.mkdir()
    for split, rows, seed in (("train", 96, 0), ("valid", 24, 1), ("test", 20, 2)):
        make_translation_frame(rows, seed).to_csv(folder / f"{split}.csv", index=False)
    config = make_config(
        tiny_bart,
        folder,
        tmp_path / "run",
        data={"eval_split": "valid", "test_split": "test", "eval_fraction": None},
        training={"num_train_epochs": 3},
        params={"max_length": 128, "num_beams": 1},  # the default length is beyond its 64 positions: cut
    )
    result = trainforge.train(config)
    metrics = json.loads((result.output_dir / "metrics.json").read_text())
    for name in (*SCORES, "gen_len", "loss"):
        assert math.isfinite(metrics[f"test_{name}"]) and math.isfinite(metrics[f"eval_{name}"]), name
    assert result.labels.facts["token_limits"] == {"source": 64, "target": 16, "new": 16}
    events = read_events(result.output_dir / "events.jsonl")
    assert [e["metrics"]["test_bleu"] for e in events if e["event"] == "test"] == [metrics["test_bleu"]]

    test = pd.read_csv(folder / "test.csv")
    predicted = trainforge.predict(result.output_dir, test[["source"]])
    hypotheses, references = list(predicted["prediction"].fillna("")), list(test["target"])
    assert metrics["test_bleu"] == pytest.approx(sacrebleu.corpus_bleu(hypotheses, [references]).score)
    assert metrics["test_chrf"] == pytest.approx(sacrebleu.corpus_chrf(hypotheses, [references]).score)


def test_lora_trains_an_adapter_and_saves_a_plain_merged_model(tiny_t5, tmp_path):
    from transformers import AutoModelForSeq2SeqLM

    make_translation_frame(96).to_csv(tmp_path / "pairs.csv", index=False)
    lora = {"enabled": True, "r": 4, "alpha": 16, "dropout": 0.0}
    config = make_config(
        tiny_t5, tmp_path / "pairs.csv", tmp_path / "run", peft=lora, training={"num_train_epochs": 4}
    )
    result = trainforge.train(config)
    run_dir = result.output_dir
    losses = step_losses(run_dir)
    assert all(math.isfinite(loss) for loss in losses) and sum(losses[-3:]) < sum(losses[:3]) - 0.3, losses
    adapter = json.loads((run_dir / "adapter" / "adapter_config.json").read_text())
    assert adapter["r"] == 4 and adapter["task_type"] == "SEQ_2_SEQ_LM"
    merged, base = load_file(str(run_dir / "model.safetensors")), load_file(str(Path(tiny_t5) / "model.safetensors"))
    assert not any("lora" in k for k in merged)  # a plain model: no peft needed to load it
    changed = {k for k in base if not (base[k] == merged[k]).all()}
    assert changed and all(
        k.endswith(("q.weight", "k.weight", "v.weight", "o.weight", "wi.weight", "wo.weight")) for k in changed
    )
    assert (base["shared.weight"] == merged["shared.weight"]).all()  # embeddings stay frozen
    model = AutoModelForSeq2SeqLM.from_pretrained(run_dir)
    assert type(model).__name__ == "T5ForConditionalGeneration"
    assert math.isfinite(result.metrics["eval_chrf"])


def test_loss_only_evaluation(tiny_t5, tmp_path):
    make_translation_frame(64).to_csv(tmp_path / "pairs.csv", index=False)
    config = make_config(
        tiny_t5,
        tmp_path / "pairs.csv",
        tmp_path / "run",
        training={"num_train_epochs": 1},
        params={"predict_with_generate": False},
    )
    result = trainforge.train(config)
    assert "eval_loss" in result.metrics and not any(f"eval_{name}" in result.metrics for name in SCORES)
    kept = [e for e in read_events(result.output_dir / "events.jsonl") if e["event"] == "best_checkpoint"]
    assert kept and kept[-1]["metric"] == "loss"


# ------------------------------------------------------------------------------------------------ data formats


def analysed(model: str, frame: pd.DataFrame, tmp_path: Path, **params):
    """The check phase on ``frame`` (JSONL): the run context (with the analysis) and the splits."""
    from trainforge.config.schema import parse_config
    from trainforge.training import driver

    frame.to_json(tmp_path / "pairs.jsonl", orient="records", lines=True, force_ascii=False)
    config = make_config(model, tmp_path / "pairs.jsonl", tmp_path / "run", params=params)
    config["data"]["eval_fraction"] = 0
    checked = driver.check(parse_config(config))
    return checked.ctx, checked.splits


def test_numbers_are_read_as_text(tiny_t5, tmp_path):
    from trainforge.tasks import get_task

    targets = [3, 4, 2.5, 6, 7, 8, 9, 10]  # JSON numbers: 3 stays 3, not 3.0
    frame = pd.DataFrame({"source": [f"three plus {i}" for i in range(8)], "target": targets}, dtype=object)
    ctx, splits = analysed(tiny_t5, frame, tmp_path)
    assert list(splits.train["target"][:3]) == [3, 4, 2.5]  # analysis never rewrites the splits
    prepared = get_task("seq2seq").prepare(ctx, splits)
    assert prepared.train["labels"][:3] == ctx.processor(text_target=["3", "4", "2.5"])["input_ids"]
    assert ctx.labels.facts["data_format"] == f"text -> target, at most 16 / 16 tokens, task prefix {PREFIX!r}"


def test_prepare_adds_prefix_ends_targets_with_eos_and_pads_labels(tiny_t5, tmp_path):
    from trainforge.tasks import get_task

    frame = make_translation_frame(8, seed=3)
    frame.loc[0, "target"] = " ".join(["die rote katze"] * 12)  # longer than 16 target tokens: cut
    ctx, splits = analysed(tiny_t5, frame, tmp_path)
    assert any("1 of 8 training targets are longer than 16 tokens" in n for n in ctx.labels.notes)
    prepared = get_task("seq2seq").prepare(ctx, splits)
    tokenizer = ctx.processor
    first = prepared.train[1]
    assert first["input_ids"] == tokenizer(PREFIX + frame["source"][1])["input_ids"]
    assert first["labels"][-1] == tokenizer.eos_token_id
    assert len(prepared.train[0]["labels"]) == 16 and prepared.train[0]["labels"][-1] == tokenizer.eos_token_id
    batch = prepared.collator([prepared.train[0], prepared.train[1]])
    assert batch["labels"].shape[1] == 16 and (batch["labels"][1] == -100).sum() == 16 - len(first["labels"])
    assert (batch["attention_mask"].sum(dim=1) == batch["input_ids"].ne(tokenizer.pad_token_id).sum(dim=1)).all()


# ------------------------------------------------------------------------------------------------ reference configs


REFERENCE_LOCAL_YML = """task: seq2seq
base_model: {model}
project_name: autotrain-seq2seq-local
log: tensorboard
backend: local

data:
  path: {data}
  train_split: train
  valid_split: test
  column_mapping:
    text_column: text
    target_column: target


params:
  max_seq_length: 512
  epochs: 3
  batch_size: 4
  lr: 2e-5
  optimizer: adamw_torch
  scheduler: linear
  gradient_accumulation: 1
  mixed_precision: none

hub:
  username: ${{HF_USERNAME}}
  token: ${{HF_TOKEN}}
  push_to_hub: false
"""


def test_reference_example_config_trains_unchanged(tiny_t5, tmp_path, monkeypatch, capsys):
    """The reference's configs/seq2seq/local.yml, only base_model, data.path and push_to_hub changed."""
    for name in ("HF_USERNAME", "HF_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    data = tmp_path / "data"
    data.mkdir()
    for split, rows, seed in (("train", 32, 0), ("test", 12, 1)):
        make_translation_frame(rows, seed).rename(columns={"source": "text"}).to_csv(
            data / f"{split}.csv", index=False
        )
    (tmp_path / "local.yml").write_text(REFERENCE_LOCAL_YML.format(model=tiny_t5, data=data), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert main(["train", "local.yml"]) == 0, capsys.readouterr().err
    run_dir = tmp_path / "autotrain-seq2seq-local"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert {f"eval_{name}" for name in (*SCORES, "gen_len")} <= set(metrics)
    resolved = yaml.safe_load((run_dir / "config.resolved.yaml").read_text())
    assert resolved["params"]["max_length"] == 512 and resolved["training"]["learning_rate"] == 2e-5
    assert resolved["data"]["columns"] == {"text": "text", "target": "target"}
    assert (run_dir / "tensorboard").is_dir()


def test_reference_lora_params_map_to_the_peft_section(tiny_t5, tmp_path, capsys):
    from trainforge.config.loading import load_config

    raw = {
        "task": "seq2seq",
        "base_model": tiny_t5,
        "project_name": str(tmp_path / "run"),
        "data": {"path": str(tmp_path), "column_mapping": {"text_column": "en", "target_column": "de"}},
        "params": {"peft": True, "lora_r": 8, "lora_alpha": 16, "target_modules": "q,v", "max_target_length": 32},
        "hub": {"push_to_hub": False},
    }
    config = load_config(raw)
    assert config.peft.enabled and config.peft.r == 8 and config.peft.alpha == 16
    assert config.peft.target_modules == ["q", "v"]
    assert config.params.max_target_length == 32 and config.data.columns == {"text": "en", "target": "de"}
    assert "as an AutoTrain config for task seq2seq" in capsys.readouterr().err
