"""LLM data shapes, chat-template handling (EOS, masks, built-ins) and bad inputs with their messages."""

from __future__ import annotations

import json

import pytest
from _llm_fixtures import conversations, llm_config, preference_rows, tiny_llama, tiny_llama_plain, write_jsonl  # noqa: F401

from trainforge.cli.main import main
from trainforge.sdk import validate


def _check(config):
    from trainforge.config.loading import load_config
    from trainforge.training.driver import check

    return check(load_config(config))


CONV = conversations(20)
SHAPES = {
    "messages_list": ({"messages": CONV[0]}, "messages"),
    "messages_json": ({"messages": json.dumps(CONV[0])}, "messages"),
    "text_column_messages": ({"text": json.dumps(CONV[0])}, "messages"),
    "prompt_completion": ({"prompt": "what colour is the apple?", "completion": "red."}, "prompt_completion"),
    "alpaca": ({"instruction": "name the colour", "input": "apple", "output": "red."}, "alpaca"),
    "text": ({"text": "the apple is red."}, "text"),
}


@pytest.mark.parametrize("shape", list(SHAPES))
def test_formats_detected_and_encoded(shape, tiny_llama, tmp_path):  # noqa: F811
    row, expected = SHAPES[shape]
    data = write_jsonl(tmp_path / "d.jsonl", [row] * 10)
    checked = _check(llm_config("llm_sft", tiny_llama, data, tmp_path / "run"))
    assert checked.labels.facts["data_format"] == expected
    assert any(n.startswith("example") for n in checked.notes)
    frame = checked.labels.facts["encoded"]["train"]
    ids, labels = frame["input_ids"].iloc[0], frame["labels"].iloc[0]
    assert len(ids) == len(labels) and any(label != -100 for label in labels)
    if expected != "text":
        assert labels[0] == -100  # the prompt is masked


def test_eos_closes_every_assistant_turn_and_prompt_is_masked(tiny_llama, tmp_path):  # noqa: F811
    from transformers import AutoTokenizer

    turns = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello."},
        {"role": "user", "content": "what colour is the lime?"},
        {"role": "assistant", "content": "green."},
    ]
    data = write_jsonl(tmp_path / "d.jsonl", [{"messages": turns}] * 10)
    frame = _check(llm_config("llm_sft", tiny_llama, data, tmp_path / "run")).labels.facts["encoded"]["train"]
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    ids, labels = frame["input_ids"].iloc[0], frame["labels"].iloc[0]
    eos = tokenizer.convert_tokens_to_ids("<|im_end|>")
    trained = [t for t, label in zip(ids, labels, strict=True) if label != -100]
    assert trained.count(eos) == 2 and trained[-1] == eos  # both assistant turns end with a trained EOS
    text = tokenizer.decode(trained)
    assert "hello." in text and "green." in text and "hi" not in text and "lime" not in text


def test_completion_only_loss_off_trains_every_token(tiny_llama, tmp_path):  # noqa: F811
    data = write_jsonl(tmp_path / "d.jsonl", [{"messages": CONV[0]}] * 10)
    frame = _check(llm_config("llm_sft", tiny_llama, data, tmp_path / "run", completion_only_loss=False)).labels.facts[
        "encoded"
    ]["train"]
    assert frame["input_ids"].iloc[0] == frame["labels"].iloc[0]


def test_builtin_template_on_tokenizer_without_one(tiny_llama_plain, tmp_path):  # noqa: F811
    from trainforge.config.loading import load_config
    from trainforge.tasks.llm._models import build_causal_lm
    from trainforge.tasks.llm._tokenizer import tokenizer_for

    data = write_jsonl(tmp_path / "d.jsonl", [{"messages": CONV[0]}] * 10)
    for requested in (None, "zephyr", "llama3"):
        extra = {} if requested is None else {"chat_template": requested}
        config = load_config(llm_config("llm_sft", tiny_llama_plain, data, tmp_path / "run", **extra))
        checked = _check(config)
        name = requested or "chatml"
        assert any(f"built-in {name}" in n for n in checked.notes)
        tokenizer, _ = tokenizer_for(config, "messages")
        ids, labels = (
            checked.labels.facts["encoded"]["train"]["input_ids"].iloc[0],
            checked.labels.facts["encoded"]["train"]["labels"].iloc[0],
        )
        assert [t for t, label in zip(ids, labels, strict=True) if label != -100][-1] == tokenizer.eos_token_id
        model = build_causal_lm(checked.ctx)  # the run's one tokenizer, set up by the analysis
        assert model.get_input_embeddings().num_embeddings >= len(tokenizer) > 300 - 1


def test_plain_prompt_completion_without_template_appends_eos(tiny_llama_plain, tmp_path):  # noqa: F811
    data = write_jsonl(tmp_path / "d.jsonl", [{"prompt": "apple: ", "completion": "red"}] * 10)
    checked = _check(llm_config("llm_sft", tiny_llama_plain, data, tmp_path / "run"))
    ids, labels = (
        checked.labels.facts["encoded"]["train"]["input_ids"].iloc[0],
        checked.labels.facts["encoded"]["train"]["labels"].iloc[0],
    )
    assert labels[0] == -100 and labels[-1] == ids[-1] and any("plain text" in n for n in checked.notes)


def test_truncation_counted_or_dropped(tiny_llama, tmp_path):  # noqa: F811
    long = [{"role": "user", "content": "apple " * 5}, {"role": "assistant", "content": "red " * 60}]
    data = write_jsonl(tmp_path / "d.jsonl", [{"messages": long}] * 3 + [{"messages": CONV[0]}] * 7)
    notes = _check(llm_config("llm_sft", tiny_llama, data, tmp_path / "r1", block_size=32)).notes
    assert any("longer than block_size 32 were truncated" in n for n in notes)
    checked = _check(llm_config("llm_sft", tiny_llama, data, tmp_path / "r2", block_size=32, truncation="drop"))
    assert any("were dropped" in n for n in checked.notes)
    assert all(len(ids) <= 32 for ids in checked.labels.facts["encoded"]["train"]["input_ids"])


def test_preference_shapes(tiny_llama, tmp_path):  # noqa: F811
    full = [
        {"chosen": CONV[i][-2:], "rejected": [CONV[i][-2], {"role": "assistant", "content": "no idea."}]}
        for i in range(10)
    ]
    data = write_jsonl(tmp_path / "conv.jsonl", full)
    checked = _check(llm_config("llm_dpo", tiny_llama, data, tmp_path / "r1"))
    assert checked.labels.facts["data_format"] == "conversational"
    first = checked.labels.facts["encoded"]["train"].iloc[0]
    assert first["prompt"].endswith("<|im_start|>assistant\n") and first["chosen"].endswith("<|im_end|>")
    strings = write_jsonl(tmp_path / "s.jsonl", preference_rows(10))
    assert _check(llm_config("llm_orpo", tiny_llama, strings, tmp_path / "r2")).labels.facts["data_format"] == (
        "prompt_chosen_rejected"
    )


def test_autotrain_llm_sft_config_runs_unchanged(tiny_llama, tmp_path, monkeypatch):  # noqa: F811
    import yaml

    folder = tmp_path / "data"
    folder.mkdir()
    write_jsonl(folder / "train.jsonl", [{"messages": c} for c in conversations(30)])
    reference = {
        "task": "llm-sft",
        "base_model": tiny_llama,
        "project_name": str(tmp_path / "autotrain-run"),
        "log": "tensorboard",
        "backend": "local",
        "data": {
            "path": str(folder),
            "train_split": "train",
            "valid_split": None,
            "chat_template": "tokenizer",
            "column_mapping": {"text_column": "messages"},
        },
        "params": {
            "block_size": 64,
            "model_max_length": 128,
            "epochs": 1,
            "batch_size": 8,
            "lr": 1e-3,
            "peft": True,
            "quantization": "int4",
            "target_modules": "all-linear",
            "padding": "right",
            "optimizer": "paged_adamw_8bit",
            "scheduler": "linear",
            "gradient_accumulation": 1,
            "mixed_precision": "bf16",
            "merge_adapter": True,
        },
        "hub": {"username": "${HF_USERNAME:-me}", "token": "${HF_TOKEN:-}", "push_to_hub": False},
    }
    path = tmp_path / "smollm2.yml"
    path.write_text(yaml.safe_dump(reference))
    import torch

    if torch.cuda.is_available():
        pytest.skip("on CUDA the int4 QLoRA path needs bitsandbytes")
    assert main(["train", str(path)]) == 0
    run_dir = tmp_path / "autotrain-run"
    assert (run_dir / "adapter_config.json").is_file() and (run_dir / "merged" / "config.json").is_file()
    assert json.loads((run_dir / "metrics.json").read_text())["eval_loss"] > 0


BAD_INPUTS = [
    ("no_known_columns", "llm_sft", [{"question": "q", "answer": "a"}], {}, "no column fits a known LLM data shape"),
    (
        "broken_json_messages",
        "llm_sft",
        [{"messages": "[{'role': 'user', 'content': "}],
        {},
        "not a JSON list of turns",
    ),
    ("turn_without_role", "llm_sft", [{"messages": [{"content": "hi"}]}], {}, "with 'role' and 'content'"),
    ("unknown_role", "llm_sft", [{"messages": [{"role": "robot", "content": "hi"}]}], {}, "unknown role 'robot'"),
    ("no_assistant_turn", "llm_sft", [{"messages": [{"role": "user", "content": "hi"}]}], {}, "no assistant turn"),
    ("empty_text", "llm_sft", [{"text": ""}], {}, "column 'text' is empty"),
    ("non_string_completion", "llm_sft", [{"prompt": "p", "completion": 3}], {}, "must be a string"),
    (
        "messages_with_template_none",
        "llm_sft",
        [{"messages": CONV[0]}],
        {"chat_template": "none"},
        "choose tokenizer, chatml",
    ),
    (
        "preference_strings_without_prompt",
        "llm_dpo",
        [{"chosen": "a", "rejected": "b"}],
        {},
        "a prompt column is needed",
    ),
    ("preference_missing_rejected", "llm_dpo", [{"prompt": "p", "chosen": "a"}], {}, "no column 'rejected'"),
    (
        "conversations_not_sharing_prompt",
        "llm_orpo",
        [
            {
                "chosen": CONV[0][-2:],
                "rejected": [{"role": "user", "content": "other"}, {"role": "assistant", "content": "x"}],
            }
        ],
        {},
        "sharing every turn but the last",
    ),
    (
        "merge_without_peft",
        "llm_sft",
        [{"messages": CONV[0]}],
        {"peft": {"merge_adapter": True}},
        "merge_adapter needs peft",
    ),
    (
        "quantization_without_cuda",
        "llm_sft",
        [{"messages": CONV[0]}],
        {"peft": {"enabled": True, "quantization": "int4"}},
        "needs a CUDA GPU",
    ),
    ("unknown_template", "llm_sft", [{"messages": CONV[0]}], {"chat_template": "vicuna"}, "params.chat_template"),
    ("generic_shorter_than_block", "llm_generic", [{"text": "tiny"}], {"block_size": 1000}, "fewer than one block"),
]


@pytest.mark.parametrize("case", BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_inputs_exit_2_with_message(case, tiny_llama, tmp_path, capsys):  # noqa: F811
    import torch

    _, task, rows, params, message = case
    if "CUDA" in message and torch.cuda.is_available():
        pytest.skip("CUDA present")
    data = write_jsonl(tmp_path / "bad.jsonl", rows * 10)
    config = llm_config(task, tiny_llama, data, tmp_path / "run", **params)
    path = tmp_path / "c.json"
    path.write_text(json.dumps(config))
    code = main(["validate", str(path)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert message in err, err
    assert "Traceback" not in err


def test_validate_prints_format_and_example(tiny_llama, tmp_path, capsys):  # noqa: F811
    data = write_jsonl(tmp_path / "d.jsonl", [{"messages": c} for c in CONV])
    report = validate(llm_config("llm_sft", tiny_llama, data, tmp_path / "run"))
    text = report.summary()
    assert "data format messages" in text and "⟦the" in text
