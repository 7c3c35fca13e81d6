"""``trainforge estimate``: counts equal the real model's, the arithmetic, every task family, the CLI, fit and errors.

Tiny models only (tests/conftest.py, tests/tasks/_llm_fixtures.py); the benchmark against real training is
benchmarks/estimate.py.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

import trainforge.sdk as sdk
from conftest import NEGATIVE, NEUTRAL, POSITIVE, make_sentiment_frame, make_translation_frame
from tasks._llm_fixtures import conversations, llm_config, preference_rows, tiny_llama, write_jsonl  # noqa: F401
from tasks._vlm_fixtures import shapes, tiny_vlm  # noqa: F401
from trainforge.cli.main import main
from trainforge.estimate import memory as mem
from trainforge.estimate.layers import architecture
from trainforge.estimate.model import base_model, counts, with_lora
from trainforge.training.driver import check

# ------------------------------------------------------------------------------------------------ configs


def text_config(model: str, folder: Path, **sections) -> dict:
    path = folder / "reviews.csv"
    make_sentiment_frame(120).to_csv(path, index=False)
    config = {
        "task": "text_classification",
        "model": {"name": model},
        "data": {"source": str(path), "columns": {"text": "review", "label": "sentiment"}},
        "training": {"per_device_train_batch_size": 8},
        "params": {"max_length": 32},
        "output": {"dir": str(folder / "run"), "report_to": ["none"]},
    }
    for section, values in sections.items():
        config[section] = {**config.get(section, {}), **values}
    return config


def token_config(model: str, folder: Path) -> dict:
    rng = random.Random(0)
    rows = []
    for _ in range(60):
        words = rng.sample(NEUTRAL, 4) + [rng.choice(POSITIVE)]
        rng.shuffle(words)
        rows.append({"tokens": words, "tags": ["B-POS" if w in POSITIVE else "O" for w in words]})
    path = write_jsonl(folder / "ner.jsonl", rows)
    return {"task": "token_classification", "model": {"name": model}, "data": {"source": str(path)}}


def qa_config(model: str, folder: Path) -> dict:
    rng = random.Random(0)
    rows = []
    for i in range(60):
        words = rng.sample(NEUTRAL, 8)
        answer, at = rng.choice(POSITIVE), rng.randrange(9)
        words.insert(at, answer)
        start = len(" ".join(words[:at])) + (1 if at else 0)
        rows.append(
            {
                "id": str(i),
                "context": " ".join(words),
                "question": "which word is good?",
                "answers": {"text": [answer], "answer_start": [start]},
            }
        )
    path = write_jsonl(folder / "qa.jsonl", rows)
    params = {"max_length": 32, "doc_stride": 8}
    return {"task": "extractive_qa", "model": {"name": model}, "data": {"source": str(path)}, "params": params}


def st_config(model: str, folder: Path) -> dict:
    rng = random.Random(0)
    frame = pd.DataFrame(
        {
            "anchor": [" ".join(rng.sample(NEUTRAL, 3) + rng.sample(POSITIVE, 2)) for _ in range(60)],
            "positive": [" ".join(rng.sample(NEUTRAL, 4) + rng.sample(POSITIVE, 2)) for _ in range(60)],
            "negative": [" ".join(rng.sample(NEUTRAL, 2) + rng.sample(NEGATIVE, 2)) for _ in range(60)],
        }
    )
    path = folder / "triplets.csv"
    frame.to_csv(path, index=False)
    return {"task": "sentence_transformers_triplet", "model": {"name": model}, "data": {"source": str(path)}}


def seq2seq_config(model: str, folder: Path) -> dict:
    path = folder / "pairs.csv"
    make_translation_frame(60).to_csv(path, index=False)
    return {
        "task": "seq2seq",
        "model": {"name": model},
        "data": {"source": str(path), "columns": {"text": "source", "target": "target"}},
    }


def with_output(config: dict, folder: Path) -> dict:
    config.setdefault("output", {})["dir"] = str(folder / "run")
    config.setdefault("training", {}).setdefault("per_device_train_batch_size", 8)
    return config


def write(config: dict, folder: Path) -> Path:
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


# ------------------------------------------------------------------------------------------------ counts


def test_counts_equal_the_real_models_num_parameters(tiny_bert, tmp_path):
    config = sdk.load_config(text_config(tiny_bert, tmp_path))
    checked = check(config)
    meta = base_model(checked.ctx)
    assert {p.device.type for p in meta.parameters()} == {"meta"}  # no weights were read
    real = checked.spec.build_model(checked.ctx)
    numbers = counts(meta)
    assert numbers.total == real.num_parameters()
    assert numbers.trainable == real.num_parameters(only_trainable=True)


def test_lora_count_equals_pefts_on_the_real_model(tiny_llama, tmp_path):  # noqa: F811
    from peft import get_peft_model

    from trainforge.models.peft import lora_config
    from trainforge.tasks.llm._models import without_output_layer
    from trainforge.tasks.llm._tokenizer import added_token_ids

    source = write_jsonl(tmp_path / "chat.jsonl", [{"messages": c} for c in conversations(40)])
    raw = llm_config("llm_sft", tiny_llama, source, tmp_path / "run", peft={"enabled": True, "r": 4})
    checked = check(sdk.load_config(raw))
    estimated = counts(with_lora(checked.ctx, base_model(checked.ctx)))
    real = checked.spec.build_model(checked.ctx)
    peft_config = without_output_layer(
        lora_config(checked.ctx.config, "CAUSAL_LM", added_token_ids(checked.ctx)), real
    )
    trainable, total = get_peft_model(real, peft_config).get_nb_trainable_parameters()  # print_trainable_parameters
    assert (estimated.trainable, estimated.total) == (trainable, total)
    assert 0 < estimated.trainable < estimated.total


# ------------------------------------------------------------------------------------------------ arithmetic


def test_optimizer_bytes_per_optimizer():
    model = torch.nn.Sequential(torch.nn.Linear(10, 20), torch.nn.LayerNorm(20))
    model[1].weight.requires_grad_(False)
    trainable = 10 * 20 + 20 + 20  # the linear's weight and bias, the norm's bias
    assert mem.optimizer_bytes(model, "adamw_torch") == 2 * 4 * trainable  # two fp32 moments
    assert mem.optimizer_bytes(model, "adamw_torch_fused") == 2 * 4 * trainable
    assert mem.optimizer_bytes(model, "sgd") == 0
    assert mem.optimizer_bytes(model, "adagrad") == mem.optimizer_bytes(model, "rmsprop") == 4 * trainable
    # Adafactor: the (20, 10) matrix keeps 20 row + 10 column statistics; vectors keep a full second moment.
    assert mem.optimizer_bytes(model, "adafactor") == 4 * ((20 + 10) + 20 + 20)


def test_weight_and_gradient_bytes_and_4bit_weights():
    model = torch.nn.Sequential(torch.nn.Embedding(100, 16), torch.nn.Linear(16, 16, bias=False))
    model[0].weight.requires_grad_(False)
    weights, gradients = mem.parameter_bytes(model, None)
    assert (weights, gradients) == (4 * (1600 + 256), 4 * 256)
    quantized, _ = mem.parameter_bytes(model, "int4")
    assert quantized == 4 * 1600 + int(256 * mem.NF4_BYTES)  # only the Linear weight is stored in 4 bits


def test_korthikanti_layer_at_16_bit():
    """A GPT layer (eager attention, dropout, trainable weights) at 16-bit is Korthikanti's s*b*h*(34 + 5*a*s/h)."""
    from trainforge.estimate.layers import AttentionCore, Block, Stack

    s, b, h, a = 128, 4, 256, 8
    # Per token: LayerNorm inputs 2h, QKV/output/MLP-in inputs 3h, MLP-out input 4h, GeLU input 4h; attention Q,K,V 3h;
    # two hidden dropout masks (Korthikanti's 1-byte masks: ``mask`` bytes 1 under CUDA).
    block = Block(h, own=2 * h + 3 * h + 4 * h + 4 * h, other=0, masks=2 * h, other_masks=0,
                  attentions=(AttentionCore(a, h, cross=False, dropout=0.1),))  # fmt: skip
    arch = mem.Architecture((Stack("layers", 1, "single", block),), h, 0, 0, 0, False)
    got = mem.activation_bytes(arch, [mem.Pass(1, {"single": s})], b, mem.Precision(2, 1, True), "eager", None, False)
    assert got == s * b * h * 34 + 5 * a * s * s * b


def test_formula_matches_what_autograd_saves(tiny_bert, tmp_path):
    """The formula's activations against the bytes autograd keeps for the backward pass of the real tiny BERT."""
    config = sdk.load_config(text_config(tiny_bert, tmp_path, training={"per_device_train_batch_size": 16}))
    checked = check(config)
    model = checked.spec.build_model(checked.ctx).train()
    batch, length = 16, 24
    ids = torch.randint(5, 100, (batch, length))
    kept: dict[int, int] = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        kept[storage.data_ptr()] = storage.nbytes()
        return tensor

    weights = {p.untyped_storage().data_ptr() for p in model.parameters()}
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=torch.zeros(batch, dtype=torch.long))
    saved = sum(n for ptr, n in kept.items() if ptr not in weights)
    arch = architecture(model)
    attention = model.config._attn_implementation
    formula = mem.activation_bytes(
        arch, [mem.Pass(1, {"single": length})], batch, mem.precision_of("fp32", False), attention, None, False
    )
    assert abs(formula - saved) / saved < 0.15, (formula, saved)


# ------------------------------------------------------------------------------------------------ every family


def test_estimate_measures_steps_on_the_tiny_bert(tiny_bert, tmp_path):
    result = sdk.estimate(text_config(tiny_bert, tmp_path))
    assert result.applies and result.fits
    assert result.total_params == result.trainable_params > 0
    memory = result.memory
    assert memory.weights == memory.gradients > 0 and memory.optimizer == 2 * memory.weights
    assert memory.activations > memory.activations_checkpointed > 0
    speed = result.speed
    assert speed is not None and speed.steps_timed >= 3 and speed.step_s > 0
    train_rows = len(check(sdk.load_config(text_config(tiny_bert, tmp_path))).splits.train)
    assert speed.steps_per_epoch == -(-train_rows // 8)  # ceil(rows / global batch)
    assert speed.epoch_s == pytest.approx(speed.steps_per_epoch * speed.step_s)
    assert not (tmp_path / "run").exists()  # the measured steps trained in a temporary folder
    assert result.sequence["text"]["peak"] <= 32  # capped by params.max_length


@pytest.mark.parametrize("family", ["token", "qa", "st", "seq2seq"])
def test_encoder_and_seq2seq_tasks(family, tiny_bert, tiny_t5, tmp_path):
    make = {"token": token_config, "qa": qa_config, "st": st_config, "seq2seq": seq2seq_config}[family]
    model = tiny_t5 if family == "seq2seq" else tiny_bert
    result = sdk.estimate(with_output(make(model, tmp_path), tmp_path), measure=False)
    assert result.applies and result.total_params > 0 and result.memory.activations > 0
    if family == "st":
        assert set(result.sequence) == {"anchor", "positive", "negative"}  # one encoder pass per text column
    if family == "seq2seq":
        assert set(result.sequence) == {"text encoder", "text decoder"}


@pytest.mark.parametrize("task", ["llm_sft", "llm_dpo", "llm_reward"])
def test_llm_tasks(task, tiny_llama, tmp_path):  # noqa: F811
    if task == "llm_sft":
        source = write_jsonl(tmp_path / "chat.jsonl", [{"messages": c} for c in conversations(40)])
    else:
        source = write_jsonl(tmp_path / "pairs.jsonl", preference_rows(40))
    full = sdk.estimate(llm_config(task, tiny_llama, source, tmp_path / "run"), measure=False)
    lora = sdk.estimate(
        llm_config(task, tiny_llama, source, tmp_path / "run", peft={"enabled": True, "r": 4}), measure=False
    )
    assert full.trainable_params == full.total_params and lora.trainable_params < lora.total_params
    assert lora.memory.optimizer < full.memory.optimizer
    if task == "llm_dpo":  # full fine-tuning keeps a frozen reference copy; LoRA disables the adapter instead
        assert full.memory.reference_model == full.memory.weights and lora.memory.reference_model == 0
    if task != "llm_sft":
        assert list(full.sequence) == ["pair"]  # chosen and rejected: one batch of both


def test_tabular_says_it_does_not_apply(tmp_path):
    frame = pd.DataFrame({"x": [i % 7 for i in range(50)], "y": [i % 2 for i in range(50)]})
    frame.to_csv(tmp_path / "t.csv", index=False)
    config = {
        "task": "tabular_classification",
        "data": {"source": str(tmp_path / "t.csv")},
        "params": {"target_columns": ["y"]},
        "output": {"dir": str(tmp_path / "run")},
    }
    result = sdk.estimate(config)
    assert not result.applies and result.data_bytes > 0 and result.memory is None
    assert "does not apply" in result.summary()


# ------------------------------------------------------------------------------------------------ fit


def test_a_run_that_does_not_fit_lists_settings_that_do(tiny_bert, tmp_path):
    config = text_config(tiny_bert, tmp_path, training={"per_device_train_batch_size": 8192})
    planned = sdk.estimate(config, measure=False)
    memory = planned.memory
    gap = memory.activations - memory.activations_checkpointed
    assert gap > 100 * 2**20  # the limit sits in the middle of it (this process's own memory moves a little)
    limit = planned.runtime_bytes + memory.peak_with_checkpointing + gap // 2
    result = sdk.estimate(config, memory_limit=limit)  # measure=True: skipped, it would not fit
    assert result.fits is False and result.speed is None
    assert any("speed not measured" in note for note in result.notes)
    fitting = {a.name: a for a in result.alternatives if a.fits}
    assert fitting["gradient checkpointing"].overrides == ["training.gradient_checkpointing=true"]
    smaller = fitting["smaller micro-batch"]
    batch, accumulation = (int(o.split("=")[1]) for o in smaller.overrides)
    assert batch < 8192 and batch * accumulation == 8192  # the global batch is kept
    assert result.largest_batch is not None and batch <= result.largest_batch < 8192
    assert "does NOT fit" in result.summary() and "settings that fit:" in result.summary()


def test_auto_find_batch_size_reports_the_largest_batch(tiny_bert, tmp_path):
    config = text_config(tiny_bert, tmp_path, training={"auto_find_batch_size": True})
    result = sdk.estimate(config, measure=False, memory_limit="64GiB")
    assert result.largest_batch and any("auto_find_batch_size" in n for n in result.notes)


# ------------------------------------------------------------------------------------------------ CLI


def test_cli_text_and_json(tiny_bert, tmp_path, capsys):
    path = write(text_config(tiny_bert, tmp_path), tmp_path)
    assert main(["estimate", str(path), "--no-measure"]) == 0
    text = capsys.readouterr().out
    assert "parameters:" in text and "activations" in text and "fits" in text
    assert main(["estimate", str(path), "training.per_device_train_batch_size=4", "--no-measure", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and report["batch_size"] == 4 and report["memory"]["peak_bytes"] > 0
    assert report["speed"] is None and report["fits"] is True


def test_cli_memory_limit_that_is_not_a_size(tiny_bert, tmp_path, capsys):
    path = write(text_config(tiny_bert, tmp_path), tmp_path)
    assert main(["estimate", str(path), "--memory-limit", "lots"]) == 2
    assert "--memory-limit" in capsys.readouterr().err


@pytest.mark.parametrize("limit", ["0", "0GiB", "0.4B"])
def test_cli_memory_limit_below_one_byte_is_refused(tiny_bert, tmp_path, capsys, limit):
    # A zero limit used to be planned for: "does NOT fit ... of 0.0 MiB available", exit 0.
    path = write(text_config(tiny_bert, tmp_path), tmp_path)
    assert main(["estimate", str(path), "--memory-limit", limit, "--no-measure"]) == 2
    err = capsys.readouterr().err
    assert "--memory-limit" in err and "above zero" in err


@pytest.mark.parametrize("limit", [0, -1, True, 2.5])
def test_sdk_memory_limit_that_is_not_a_positive_byte_count_is_refused_before_the_data_checks(tmp_path, limit):
    from trainforge.errors import ConfigError
    from trainforge.estimate.plan import estimate

    # The config is never looked at: the limit is checked first (no model, no data needed).
    with pytest.raises(ConfigError, match="--memory-limit"):
        estimate(object(), measure=False, memory_limit=limit)


def test_bad_config_exits_2_with_the_validate_message(tiny_bert, tmp_path, capsys):
    config = text_config(tiny_bert, tmp_path)
    config["data"]["columns"]["text"] = "no_such_column"
    path = write(config, tmp_path)
    assert main(["validate", str(path)]) == 2
    expected = capsys.readouterr().err
    assert main(["estimate", str(path)]) == 2
    assert capsys.readouterr().err == expected and "no_such_column" in expected
    assert main(["estimate", str(path), "--json"]) == 2
    assert json.loads(capsys.readouterr().out)["ok"] is False


# ------------------------------------------------------------------------------------------------ images


def image_folder(root: Path) -> Path:
    from PIL import Image

    for index, name in enumerate(["dark", "light"]):
        (root / name).mkdir(parents=True)
        for i in range(8):
            Image.new("RGB", (32, 32), (40 + 150 * index + i, 60, 90)).save(root / name / f"{i}.png")
    return root


@pytest.mark.parametrize("fixture", ["tiny_vit", "tiny_convnext"])
def test_image_models_are_traced_on_the_meta_device(fixture, request, tmp_path, monkeypatch):
    monkeypatch.setenv("TRAINFORGE_CACHE", str(tmp_path / "cache"))
    config = {
        "task": "image_classification",
        "model": {"name": request.getfixturevalue(fixture)},
        "data": {"source": str(image_folder(tmp_path / "images"))},
        "training": {"per_device_train_batch_size": 4},
        "output": {"dir": str(tmp_path / "run"), "report_to": ["none"]},
    }
    small = sdk.estimate(config, measure=False)
    config["training"]["per_device_train_batch_size"] = 8
    large = sdk.estimate(config, measure=False)
    assert small.total_params > 0 and small.memory.activations > 0
    assert large.memory.activations == pytest.approx(2 * small.memory.activations, rel=0.01)  # per example
    assert any(note.startswith("images: 3x") for note in small.notes)


def test_vision_language_model(tiny_vlm, shapes, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setenv("TRAINFORGE_CACHE", str(tmp_path / "cache"))
    config = {
        "task": "vlm",
        "model": {"name": tiny_vlm},
        "data": {"source": str(shapes), "eval_split": "validation"},
        "training": {"per_device_train_batch_size": 4},
        "output": {"dir": str(tmp_path / "run"), "report_to": ["none"]},
    }
    result = sdk.estimate(config, measure=False)
    assert result.applies and result.total_params > 0 and result.memory.activations > 0
    assert result.sequence["text"]["peak"] > 0  # the prompts the collator encodes, image tokens included


def test_several_processes_share_the_epoch(tiny_bert, tmp_path):
    one = sdk.estimate(text_config(tiny_bert, tmp_path), measure=False)
    config = text_config(tiny_bert, tmp_path, compute={"num_processes": 2})
    two = sdk.estimate(config)
    rows = len(check(sdk.load_config(config)).splits.train)
    assert two.speed.steps_per_epoch == -(-rows // 16)  # 8 per process x 2 processes
    assert two.memory.gradients == 2 * one.memory.gradients  # DDP's buckets
    assert any("2 training processes" in note for note in two.notes)
