"""validate checks what only the base model's config reveals, without loading its weights.

Each case would otherwise fail after the model loads (or train a useless model): a max length beyond absolute
position embeddings, LoRA target modules the model lacks or cannot adapt, continuous scores given as class labels.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import make_sentiment_frame
from trainforge.cli.main import main
from trainforge.config.loading import load_config
from trainforge.errors import ConfigError
from trainforge.models.config_checks import check_against_model_config
from trainforge.tasks import get_task

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tasks"))
from _llm_fixtures import conversations, llm_config, tiny_llama, write_jsonl  # noqa: E402, F401


@pytest.fixture()
def no_weights(monkeypatch):
    """Fail the test if any model's weights are loaded (every AutoModel* goes through this classmethod)."""
    from transformers import PreTrainedModel

    def refuse(cls, *args, **kwargs):
        raise AssertionError(f"validate loaded the weights of {cls.__name__}")

    monkeypatch.setattr(PreTrainedModel, "from_pretrained", classmethod(refuse))


def validate(capsys, tmp_path: Path, config: dict) -> tuple[int, str]:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    code = main(["validate", str(path)])
    out, err = capsys.readouterr()
    return code, out + err


def tc_config(model: str, source: Path, tmp_path: Path, **params) -> dict:
    return {
        "task": "text_classification",
        "model": {"name": model},
        "data": {"source": str(source), "columns": {"text": "review", "label": "sentiment"}, "eval_fraction": 0.25},
        "params": params,
        "output": {"dir": str(tmp_path / "run")},
    }


@pytest.fixture()
def long_reviews(tmp_path) -> Path:
    """Reviews far longer than the tiny BERT's 64 positions: training them at max_length 512 crashes."""
    frame = make_sentiment_frame(40)
    frame["review"] = frame["review"] + " the film" * 100
    path = tmp_path / "long.csv"
    frame.to_csv(path, index=False)
    return path


# ------------------------------------------------------------------------------------------------ max length


def test_max_length_beyond_absolute_positions_is_refused(capsys, tmp_path, tiny_bert, long_reviews, no_weights):
    code, output = validate(capsys, tmp_path, tc_config(tiny_bert, long_reviews, tmp_path, max_length=512))
    assert code == 2, output
    assert "params.max_length: 512 tokens" in output
    assert "absolute position embeddings for 64 tokens (max_position_embeddings: 64" in output
    assert "Set params.max_length to 64 or less" in output
    assert main(["validate", str(tmp_path / "config.yaml"), "params.max_length=64"]) == 0


def test_default_max_length_beyond_a_tiny_model_is_a_note(capsys, tmp_path, tiny_bert, long_reviews, no_weights):
    # The default (128) is not the user's choice; `trainforge init` writes it out, and its output must validate.
    code, output = validate(capsys, tmp_path, tc_config(tiny_bert, long_reviews, tmp_path))
    assert code == 0, output
    assert "params.max_length (default 128) is beyond the model's 64 positions" in output
    assert "inputs are cut at 64 tokens" in output  # training and predict cut them (tasks' effective_max_length)


def test_block_size_beyond_rotary_positions_is_a_note(capsys, tmp_path, tiny_llama, no_weights):  # noqa: F811
    data = write_jsonl(tmp_path / "chat.jsonl", [{"messages": c} for c in conversations(20)])
    config = llm_config("llm_sft", tiny_llama, data, tmp_path / "run", block_size=512)
    code, output = validate(capsys, tmp_path, config)
    assert code == 0, output
    assert "params.block_size 512 is beyond the 256 positions the model was trained on" in output
    assert "rotary" in output


def _config_only(folder: Path, model_config) -> str:
    """A model folder holding nothing but config.json: any attempt to load weights would fail."""
    folder.mkdir()
    model_config.save_pretrained(folder)
    return str(folder)


def test_block_size_beyond_gpt2_positions_is_refused(tmp_path):
    from transformers import GPT2Config

    model = _config_only(tmp_path / "gpt2", GPT2Config(n_positions=128, n_embd=32, n_layer=1, n_head=2))
    config = load_config(llm_config("llm_sft", model, tmp_path / "x.jsonl", tmp_path / "run", block_size=256))
    with pytest.raises(ConfigError) as info:
        check_against_model_config(config, get_task("llm_sft"))
    message = dict(info.value.problems)["params.block_size"]
    assert "absolute position embeddings for 128 tokens (n_positions: 128" in message


def test_roberta_reserves_the_positions_before_its_padding_index(tmp_path):
    from transformers import RobertaConfig

    small = RobertaConfig(
        vocab_size=50, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, max_position_embeddings=66
    )
    model = _config_only(tmp_path / "roberta", small)  # pad_token_id 1: positions start at 2, so 64 are usable
    raw = tc_config(model, tmp_path / "x.csv", tmp_path, max_length=64)
    assert check_against_model_config(load_config(raw), get_task("text_classification")) == []
    raw["params"]["max_length"] = 65
    with pytest.raises(ConfigError) as info:
        check_against_model_config(load_config(raw), get_task("text_classification"))
    assert (
        "for 64 tokens (max_position_embeddings: 66 in its config.json, of which the first 2 are reserved)"
        in (dict(info.value.problems)["params.max_length"])
    )


# ------------------------------------------------------------------------------------------------ LoRA targets


def _lora_config(tmp_path: Path, model: str, task: str, targets) -> dict:
    if task == "llm_sft":
        data = write_jsonl(tmp_path / "chat.jsonl", [{"messages": c} for c in conversations(20)])
    else:
        rows = [{"prompt": "what colour is the lime?", "chosen": "green.", "rejected": "red."}] * 20
        data = write_jsonl(tmp_path / "pairs.jsonl", rows)
    return llm_config(task, model, data, tmp_path / "run", peft=True, target_modules=targets)


@pytest.mark.parametrize(
    ("task", "targets", "fragment"),
    [
        ("llm_sft", "q_proj, v_prj", "'v_prj' names no module of the model"),
        ("llm_sft", ["q_proj", "mlp"], "'mlp' names LlamaMLP modules (e.g. model.layers.0.mlp), which LoRA cannot"),
        ("llm_sft", ["lm_head"], "'lm_head' is the model's output layer: TRL's SFTTrainer computes"),
        ("llm_dpo", ["lm_head"], "TRL's DPOTrainer computes log-probabilities from lm_head.weight directly"),
        ("llm_reward", ["q_proj", "lm_head"], "'lm_head' names no module of the model"),
    ],
)
def test_lora_target_modules_are_checked_against_the_model(
    capsys,
    tmp_path,
    tiny_llama,  # noqa: F811
    no_weights,
    task,
    targets,
    fragment,
):
    code, output = validate(capsys, tmp_path, _lora_config(tmp_path, tiny_llama, task, targets))
    assert code == 2, output
    assert "peft.target_modules" in output and fragment in output
    model_class = "LlamaForSequenceClassification" if task == "llm_reward" else "LlamaForCausalLM"
    assert f"LoRA can adapt these modules of {model_class}: embed_tokens, q_proj, k_proj, v_proj, o_proj" in output
    assert ("lm_head" in output.split("LoRA can adapt")[1]) is False  # never offered where it cannot be used


def test_lm_head_beside_other_targets_is_left_out_with_a_note(capsys, tmp_path, tiny_llama, no_weights):  # noqa: F811
    config = _lora_config(tmp_path, tiny_llama, "llm_sft", "q_proj, v_proj, lm_head")
    code, output = validate(capsys, tmp_path, config)
    assert code == 0, output
    assert "peft.target_modules: 'lm_head' left out, as it is the model's output layer" in output
    assert "LoRA adapts q_proj, v_proj" in output


def test_lm_head_is_left_out_of_the_trained_adapter(capsys, tmp_path, tiny_llama):  # noqa: F811
    config = _lora_config(tmp_path, tiny_llama, "llm_sft", ["q_proj", "lm_head"])
    config["training"].update(num_train_epochs=1, eval_strategy="no")
    config["data"]["eval_fraction"] = None
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["train", str(path)]) == 0, capsys.readouterr().err
    adapter = json.loads((tmp_path / "run" / "adapter_config.json").read_text())
    assert adapter["target_modules"] == ["q_proj"]


def test_all_linear_builds_no_model(tmp_path, tiny_llama, monkeypatch):  # noqa: F811
    # PEFT picks the linear layers itself (never the output layer): nothing to match, so no model is built.
    import transformers

    def refuse(*args, **kwargs):
        raise AssertionError("built a model to check 'all-linear'")

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_config", refuse)
    raw = llm_config("llm_sft", tiny_llama, tmp_path / "x.jsonl", tmp_path / "run", peft=True)
    raw["peft"]["target_modules"] = "all-linear"
    assert check_against_model_config(load_config(raw), get_task("llm_sft")) == []


# ------------------------------------------------------------------------------------------------ scores as labels


def _scores(tmp_path: Path, rows: int = 40) -> Path:
    frame = make_sentiment_frame(rows)
    path = tmp_path / "scores.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("eval_fraction", [0.25, None])
def test_continuous_scores_as_labels_suggest_regression(capsys, tmp_path, tiny_bert, no_weights, eval_fraction):
    config = tc_config(tiny_bert, _scores(tmp_path), tmp_path, max_length=32)
    config["data"].update(columns={"text": "review", "label": "score"}, eval_fraction=eval_fraction)
    code, output = validate(capsys, tmp_path, config)
    assert code == 2, output
    assert "the label column ('score') holds 40 different numbers in " in output
    assert "look like scores to predict, not classes" in output and "text_regression" in output
    assert "eval_fraction" not in output  # raising it cannot help


def test_numeric_classes_with_repeats_are_still_classes(capsys, tmp_path, tiny_bert):
    frame = make_sentiment_frame(40)
    frame["stars"] = [1 + i % 5 for i in range(40)]
    frame.to_csv(tmp_path / "stars.csv", index=False)
    config = tc_config(tiny_bert, tmp_path / "stars.csv", tmp_path, max_length=32)
    config["data"]["columns"]["label"] = "stars"
    code, output = validate(capsys, tmp_path, config)
    assert code == 0, output
    assert "5 label(s)" in output


def test_unique_codes_with_leading_zeros_are_not_scores():
    from trainforge.data.labels import continuous_scores

    assert continuous_scores(pd.Series([f"{i:03d}" for i in range(1, 30)])) is None
    assert continuous_scores(pd.Series([i / 7 for i in range(30)]), "the label column") is not None


# ------------------------------------------------------------------------------------------------ vocabulary


def _copy_model(tiny_bert: str, folder: Path) -> Path:
    import shutil

    shutil.copytree(tiny_bert, folder)
    return folder


def test_a_tokenizer_larger_than_the_embeddings_is_refused(capsys, tmp_path, tiny_bert, sentiment_csv):
    """Training would die at the first batch holding a token id past the embedding matrix ('index out of range')."""
    from transformers import AutoConfig, BertModel

    folder = _copy_model(tiny_bert, tmp_path / "mismatched")
    config = AutoConfig.from_pretrained(folder)
    tokens = config.vocab_size
    config.vocab_size = tokens - 20
    BertModel(config).save_pretrained(folder)  # the weights of a smaller vocabulary, beside the original tokenizer
    for command in ("validate", "train"):
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump(tc_config(str(folder), sentiment_csv, tmp_path)))
        code = main([command, str(path)])
        output = "".join(capsys.readouterr())
        assert code == 2, output
        assert f"has {tokens} tokens but the model's embeddings have {tokens - 20} rows" in output
        assert "index out of range" in output and "Traceback" not in output
    assert not (tmp_path / "run").exists()  # train stopped before the run directory was made


def test_a_tokenizer_without_pad_or_eos_is_refused(capsys, tmp_path, tiny_bert, sentiment_csv, no_weights):
    folder = _copy_model(tiny_bert, tmp_path / "no-pad")
    special = json.loads((folder / "tokenizer_config.json").read_text())
    special.pop("pad_token", None)
    (folder / "tokenizer_config.json").write_text(json.dumps(special))
    (folder / "special_tokens_map.json").unlink(missing_ok=True)
    from transformers import AutoTokenizer

    assert AutoTokenizer.from_pretrained(folder).pad_token is None  # the fixture really lost its pad token
    code, output = validate(capsys, tmp_path, tc_config(str(folder), sentiment_csv, tmp_path))
    assert code == 2, output
    assert "neither a pad token nor an EOS token to pad with" in output
