"""Preference data in the shapes people bring (the reference's whole conversations beside a prompt, hh-rlhf pairs
with no prompt), identical pairs, and AutoTrain-format LLM configs that run unchanged."""

from __future__ import annotations

import json

import pytest
import yaml
from _llm_fixtures import conversations, llm_config, preference_rows, tiny_llama, write_jsonl  # noqa: F401

from trainforge.cli.main import main
from trainforge.errors import DataError


def _check(config):
    from trainforge.config.loading import load_config
    from trainforge.training.driver import check

    return check(load_config(config))


def cli(capsys, *argv) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    _, err = capsys.readouterr()
    return code, err


def reference_rows(rows: int, seed: int = 0) -> list[dict]:
    """The reference's DPO/ORPO shape: a prompt string, and chosen/rejected whole conversations repeating it."""
    out = []
    for i, pair in enumerate(preference_rows(rows, seed)):
        question = [{"role": "user", "content": pair["prompt"]}]
        if i % 3 == 0:
            question.insert(0, {"role": "system", "content": "answer briefly."})
        out.append(
            {
                "prompt": pair["prompt"],
                "chosen": question + [{"role": "assistant", "content": pair["chosen"]}],
                "rejected": question + [{"role": "assistant", "content": pair["rejected"]}],
            }
        )
    return out


def hh_rlhf_text(rows: int) -> list[dict]:
    """hh-rlhf's text shape: no prompt column; both answers continue the same "Human: ... Assistant:" text."""
    return [
        {
            "chosen": f"\n\nHuman: {p['prompt']}\n\nAssistant: {p['chosen']}",
            "rejected": f"\n\nHuman: {p['prompt']}\n\nAssistant: {p['rejected']}",
        }
        for p in preference_rows(rows)
    ]


# ------------------------------------------------------------------------------------------------ shapes


@pytest.mark.parametrize("task", ["llm_dpo", "llm_orpo"])
def test_reference_shape_prompt_beside_whole_conversations(task, tiny_llama, tmp_path):  # noqa: F811
    data = write_jsonl(tmp_path / "pairs.jsonl", reference_rows(20))
    checked = _check(llm_config(task, tiny_llama, data, tmp_path / "run"))
    assert checked.labels.facts["data_format"] == "conversational"
    assert any("whole conversations" in n and "prompt column is not used" in n for n in checked.notes)
    first = checked.labels.facts["encoded"]["train"].iloc[0]
    question = reference_rows(20)[int(checked.labels.facts["encoded"]["train"].index[0])]["prompt"]
    assert first["prompt"].count(question) == 1  # the prompt is not repeated inside the answers
    assert first["prompt"].endswith("<|im_start|>assistant\n")
    assert "<|im_start|>user" not in first["chosen"] and first["chosen"].endswith("<|im_end|>")


def test_hh_rlhf_conversations_without_prompt_column(tiny_llama, tmp_path):  # noqa: F811
    rows = []
    for pair in reference_rows(20):
        earlier = [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "hi."}]
        rows.append({"chosen": earlier + pair["chosen"][-2:], "rejected": earlier + pair["rejected"][-2:]})
    data = write_jsonl(tmp_path / "hh.jsonl", rows)
    checked = _check(llm_config("llm_dpo", tiny_llama, data, tmp_path / "run"))
    first = checked.labels.facts["encoded"]["train"].iloc[0]
    assert first["prompt"].count("<|im_start|>user") == 2 and "hi." in first["prompt"]
    assert first["chosen"].count("<|im_start|>") == 0


def test_hh_rlhf_text_without_prompt_column(tiny_llama, tmp_path):  # noqa: F811
    data = write_jsonl(tmp_path / "hh.jsonl", hh_rlhf_text(20))
    checked = _check(llm_config("llm_orpo", tiny_llama, data, tmp_path / "run", chat_template="none"))
    assert checked.labels.facts["data_format"] == "prompt_chosen_rejected"
    first = checked.labels.facts["encoded"]["train"].iloc[0]
    assert first["prompt"].startswith("\n\nHuman: what colour is the") and first["prompt"].endswith("Assistant:")
    assert first["chosen"].startswith(" the ") and "Human" not in first["chosen"]


def test_string_answers_repeating_the_prompt_are_cut(tiny_llama, tmp_path):  # noqa: F811
    rows = [
        {**p, "chosen": p["prompt"] + " " + p["chosen"], "rejected": p["prompt"] + " " + p["rejected"]}
        for p in preference_rows(20)
    ]
    data = write_jsonl(tmp_path / "s.jsonl", rows)
    checked = _check(llm_config("llm_dpo", tiny_llama, data, tmp_path / "run", chat_template="none"))
    first = checked.labels.facts["encoded"]["train"].iloc[0]
    assert first["chosen"].startswith(" the ") and "what colour" not in first["chosen"]


# ------------------------------------------------------------------------------------------------ identical pairs


def test_some_identical_pairs_are_named_and_dropped(tiny_llama, tmp_path):  # noqa: F811
    rows = preference_rows(20)
    for i in (2, 7, 11):
        rows[i]["rejected"] = rows[i]["chosen"]
    data = write_jsonl(tmp_path / "p.jsonl", rows)
    config = llm_config("llm_dpo", tiny_llama, data, tmp_path / "run")
    config["data"]["eval_fraction"] = None
    checked = _check(config)
    note = next(n for n in checked.notes if "chosen == rejected" in n)
    assert "3 of 20 pairs" in note and "rows 3, 8, 12" in note and "no preference signal" in note
    assert len(checked.labels.facts["encoded"]["train"]) == 17


@pytest.mark.parametrize("shape", ["strings", "conversations"])
def test_all_identical_pairs_are_refused(capsys, shape, tiny_llama, tmp_path):  # noqa: F811
    rows = preference_rows(10) if shape == "strings" else reference_rows(10)
    rows = [{**r, "rejected": r["chosen"]} for r in rows]
    data = write_jsonl(tmp_path / "p.jsonl", rows)
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(llm_config("llm_dpo", tiny_llama, data, tmp_path / "run")))
    code, err = cli(capsys, "validate", path)
    assert code == 2, err
    assert "chosen and rejected are the same in every pair" in err and "p.jsonl" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("rows", "fragment"),
    [
        (
            [
                {
                    "chosen": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}],
                    "rejected": [{"role": "user", "content": "c"}, {"role": "assistant", "content": "d"}],
                }
            ],
            "share no turn",
        ),
        (
            [
                {
                    "chosen": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}],
                    "rejected": [{"role": "user", "content": "a"}],
                }
            ],
            "no answer after the turns chosen and rejected share",
        ),
        (
            [
                {
                    "chosen": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}],
                    "rejected": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}],
                }
            ],
            "must start with an assistant turn",
        ),
        ([{"chosen": "the apple is red.", "rejected": "the apple is green."}], "a prompt column is needed"),
    ],
)
def test_pairs_fitting_no_shape_name_row_and_column(rows, fragment, tiny_llama, tmp_path):  # noqa: F811
    data = write_jsonl(tmp_path / "bad.jsonl", rows * 5)
    with pytest.raises(DataError, match="row 1") as info:
        _check(llm_config("llm_dpo", tiny_llama, data, tmp_path / "run"))
    assert fragment in str(info.value) and "bad.jsonl" in str(info.value)


# ---------------------------------------------------------------------------------------------- AutoTrain, end to end


def reference_config(task: str, model: str, tmp_path, params: dict, columns: dict, chat_template=None) -> dict:
    return {
        "task": task,
        "base_model": model,
        "project_name": str(tmp_path / "run"),
        "log": "tensorboard",
        "backend": "local",
        "data": {
            "path": str(tmp_path / "data"),
            "train_split": "train",
            "valid_split": None,
            "chat_template": chat_template,
            "column_mapping": columns,
        },
        "params": {"block_size": 64, "epochs": 1, "batch_size": 4, "lr": 1e-3, **params},
        "hub": {"username": "${HF_USERNAME:-}", "token": "${HF_TOKEN:-}", "push_to_hub": False},
    }


@pytest.mark.parametrize("task", ["llm-dpo", "llm-orpo"])
def test_autotrain_preference_config_on_reference_data_trains(capsys, task, tiny_llama, tmp_path):  # noqa: F811
    (tmp_path / "data").mkdir()
    write_jsonl(tmp_path / "data" / "train.jsonl", reference_rows(16))
    columns = {"text_column": "chosen", "rejected_text_column": "rejected", "prompt_text_column": "prompt"}
    params = {"peft": True, "lora_r": 4, "max_prompt_length": 32, "quantization": None, "target_modules": "all-linear"}
    path = tmp_path / "ref.yml"
    path.write_text(yaml.safe_dump(reference_config(task, tiny_llama, tmp_path, params, columns, "chatml")))
    code, err = cli(capsys, "train", path, "training.max_steps=2")
    assert code == 0, err
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["train_loss"] > 0
    events = [json.loads(line) for line in (tmp_path / "run" / "events.jsonl").read_text().splitlines()]
    assert max(e["step"] for e in events if e["event"] == "step") == 2


def test_autotrain_sft_config_with_older_and_lenient_params_trains(capsys, tiny_llama, tmp_path):  # noqa: F811
    (tmp_path / "data").mkdir()
    for split, rows in (("train", 24), ("valid", 6)):
        write_jsonl(tmp_path / "data" / f"{split}.jsonl", [{"messages": c} for c in conversations(rows, seed=rows)])
    params = {
        "evaluation_strategy": "epoch",  # the reference's older name of eval_strategy
        "merge_adapter": True,  # without peft: the reference trains fully and ignores it
        "unsloth": True,  # not installed: the reference falls back
        "model_max_length": 64,
        "logging_steps": -1,
    }
    config = reference_config("llm-sft", tiny_llama, tmp_path, params, {"text_column": "messages"}, "tokenizer")
    config["data"]["valid_split"] = "valid"
    path = tmp_path / "ref.yml"
    path.write_text(yaml.safe_dump(config))
    code, err = cli(capsys, "train", path)
    assert code == 0, err
    for fragment in ("evaluation_strategy", "merge_adapter without peft", "without unsloth"):
        assert fragment in err
    run_dir = tmp_path / "run"
    assert (run_dir / "model.safetensors").is_file() and not (run_dir / "merged").exists()
    assert "eval_loss" in json.loads((run_dir / "metrics.json").read_text())
