"""The shared ``peft:`` section: LoRA for any transformers task, refused by name where a task trains no adapter.

A text_classification run with LoRA trains only the adapter and the new head, and its run folder holds the merged
model (plain ``pipeline`` loads it) with the adapter in ``adapter/``.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from safetensors.numpy import load_file
from test_text_classification import make_config, step_losses, weights

import trainforge
from conftest import make_sentiment_frame
from trainforge.config.loading import load_config
from trainforge.errors import ConfigError


def problems(raw: dict) -> dict[str, str]:
    with pytest.raises(ConfigError) as info:
        load_config(raw)
    return dict(info.value.problems)


def test_lora_text_classification_trains_adapter_and_saves_a_plain_merged_model(tiny_bert, tmp_path):
    make_sentiment_frame(160).to_csv(tmp_path / "reviews.csv", index=False)
    lora = {"enabled": True, "r": 4, "alpha": 32, "dropout": 0.0}
    config = make_config(tiny_bert, tmp_path / "reviews.csv", tmp_path / "run", peft=lora)
    config["training"].update(learning_rate=1e-2, num_train_epochs=6, early_stopping_patience=None)
    result = trainforge.train(config)
    run_dir = result.output_dir
    # Only the adapter and the head train (embeddings frozen at random values): a slower, noisier descent than a
    # full fine-tune's, so the check compares the first and last quarters of the run.
    losses = step_losses(run_dir)
    quarter = len(losses) // 4
    assert all(math.isfinite(v) for v in losses)
    assert sum(losses[-quarter:]) / quarter < sum(losses[:quarter]) / quarter - 0.02, losses

    adapter = json.loads((run_dir / "adapter" / "adapter_config.json").read_text())
    assert adapter["r"] == 4 and adapter["task_type"] == "SEQ_CLS"
    trained = load_file(str(run_dir / "adapter" / "adapter_model.safetensors"))
    lora_b = [v for k, v in trained.items() if "lora_B" in k]
    assert lora_b and any(np.abs(v).sum() > 0 for v in lora_b)  # B starts at zero: non-zero means it trained
    assert any("classifier" in k for k in trained)  # the new head trains in full beside the adapter

    merged, base = weights(run_dir), weights(tiny_bert)
    assert not any("lora" in k for k in merged)  # a plain model: no peft needed to load it
    changed = [k for k in base if k in merged and not np.allclose(base[k], merged[k])]
    assert changed and all("attention" in k or "dense" in k for k in changed)  # the adapted linear layers only
    assert all(np.array_equal(base[k], merged[k]) for k in base if "embeddings" in k)  # frozen

    from transformers import pipeline

    classify = pipeline("text-classification", model=str(run_dir))
    assert classify("a lovely witty film")[0]["label"] in {"positive", "negative"}
    assert result.metrics["eval_accuracy"] >= 0.5


def test_a_task_without_lora_refuses_the_peft_section_by_name():
    raw = {
        "task": "tabular_classification",
        "model": {"name": "auto"},
        "data": {"source": "t.csv"},
        "params": {"target_columns": ["y"]},
        "peft": {"enabled": True, "r": 8},
    }
    found = problems(raw)
    assert set(found) == {"peft.enabled", "peft.r"}
    assert "does not apply to task tabular_classification (it trains no LoRA adapter)" in found["peft.enabled"]


@pytest.mark.parametrize("field", ["merge_adapter", "quantization"])
def test_llm_only_peft_fields_are_refused_for_other_tasks(field):
    value = {"merge_adapter": True, "quantization": "int4"}[field]
    raw = {
        "task": "text_classification",
        "model": {"name": "org/m"},
        "data": {"source": "d.csv"},
        "peft": {"enabled": True, field: value},
    }
    message = problems(raw)[f"peft.{field}"]
    assert "does not apply to task text_classification" in message and "adapter/" in message


def test_peft_true_is_the_switch_and_older_params_names_move_to_peft(capsys):
    raw = {"task": "llm_sft", "model": {"name": "org/m"}, "data": {"source": "d.jsonl"}}
    assert load_config({**raw, "peft": True}).peft.enabled is True
    config = load_config({**raw, "params": {"peft": True, "lora_r": 8, "target_modules": "q_proj,v_proj"}})
    assert config.peft.enabled and config.peft.r == 8 and config.peft.target_modules == ["q_proj", "v_proj"]
    err = capsys.readouterr().err
    assert "params.lora_r is read as peft.r" in err and "params.peft is read as peft.enabled" in err


def test_init_template_has_a_peft_section_only_where_it_applies():
    from trainforge.config.template import render_template
    from trainforge.tasks import get_task

    assert "\npeft:\n" in render_template(get_task("llm_sft"))
    assert (
        "merge_adapter"
        not in render_template(get_task("text_classification")).split("\npeft:\n")[1].split("\noutput:")[0]
    )
    assert "\npeft:" not in render_template(get_task("tabular_classification"))


def test_an_older_name_and_the_peft_section_disagreeing_is_an_error():
    raw = {"task": "llm_sft", "model": {"name": "org/m"}, "data": {"source": "d.jsonl"}}
    found = problems({**raw, "peft": {"r": 4}, "params": {"lora_r": 8}})
    assert "sets peft.r too, which the config sets to 4" in found["params.lora_r"]
    found = problems({**raw, "peft": {"enabled": False}, "params": {"peft": True}})
    assert "sets peft.enabled too" in found["params.peft"]
