"""The task contract after core v2: one run context, the processor loaded once, variants derived, not copied."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest

import trainforge
from conftest import count_loads

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _llm_fixtures import conversations, llm_config, preference_rows, tiny_llama, write_jsonl  # noqa: E402, F401


@pytest.mark.parametrize("task", ["llm_sft", "llm_dpo"])
def test_an_llm_run_loads_its_tokenizer_once_and_sets_its_template_once(tiny_llama, tmp_path, monkeypatch, task):  # noqa: F811
    pytest.importorskip("trl")
    from transformers import AutoTokenizer

    from trainforge.tasks.llm import _tokenizer

    setups = []
    original_setup = _tokenizer.configure_tokenizer

    def counting_setup(*args, **kwargs):
        setups.append(1)
        return original_setup(*args, **kwargs)

    loads = count_loads(monkeypatch, AutoTokenizer)
    monkeypatch.setattr(_tokenizer, "configure_tokenizer", counting_setup)
    rows = [{"messages": c} for c in conversations(20)] if task == "llm_sft" else preference_rows(20)
    data = write_jsonl(tmp_path / "data.jsonl", rows)
    config = llm_config(task, tiny_llama, data, tmp_path / "run")
    config["training"]["num_train_epochs"] = 1
    trainforge.train(config)
    assert len(loads) == 1, loads
    assert len(setups) == 1


def test_variants_are_derived_from_their_base_spec():
    from trainforge.tasks import get_task
    from trainforge.tasks.llm._base import LLM_SPEC
    from trainforge.tasks.llm._preference import PREFERENCE_SPEC

    classification, regression = get_task("text_classification"), get_task("text_regression")
    assert regression.prepare is classification.prepare and regression.build_model is classification.build_model
    for name in ("llm_dpo", "llm_orpo", "llm_reward"):
        spec = get_task(name)
        assert spec.analyze is PREFERENCE_SPEC.analyze and spec.load_processor is LLM_SPEC.load_processor
    for name in ("llm_sft", "llm_generic", "llm_dpo", "llm_orpo"):
        assert get_task(name).build_model is LLM_SPEC.build_model
    # Every registered spec fills the one trainer slot or uses the default Trainer; none carries a second one.
    assert "native_trainer" not in {f.name for f in dataclasses.fields(type(classification))}


def test_columns_declare_role_and_kind_and_predict_inputs_follow_them():
    from trainforge.tasks import get_task, list_tasks

    for spec in list_tasks():
        assert all(c.role in ("input", "target", "weight", "id", "features") for c in spec.columns), spec.name
        assert spec.playground in ("form", "chat", "table")
    classification = get_task("text_classification")
    assert [(c.name, c.role, c.kind) for c in classification.columns] == [
        ("text", "input", "text"),
        ("label", "target", "label"),
        ("sample_weight", "weight", "number"),
    ]
    assert [c.name for c in classification.inputs_to_predict()] == ["text"]
    # A reward model is trained on pairs but scores one prompt + completion: the playground must ask for those.
    assert [c.name for c in get_task("llm_reward").inputs_to_predict()] == ["prompt", "completion"]
    assert get_task("llm_sft").playground == "chat" and get_task("tabular_classification").playground == "table"
