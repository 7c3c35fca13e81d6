"""Robust config handling: non-finite numbers and seeds, diverging runs, AutoTrain configs with overrides and
the reference's lenient spots. Every bad input is an exit code 2 / ConfigError naming the dotted key."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml

from trainforge.cli.main import main
from trainforge.config.loading import load_config
from trainforge.errors import ConfigError
from trainforge.tasks import get_task, task_names


def problems(raw: dict, overrides=()) -> dict[str, str]:
    with pytest.raises(ConfigError) as info:
        load_config(raw, overrides)
    return dict(info.value.problems)


def cli(capsys, *argv) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    _, err = capsys.readouterr()
    return code, err


@pytest.fixture()
def raw() -> dict:
    return {
        "task": "text_classification",
        "model": {"name": "org/model"},
        "data": {"source": "train.csv", "columns": {"text": "review", "label": "sentiment"}},
    }


# ------------------------------------------------------------------------------------------------ non-finite numbers


def _float_fields(model) -> list[str]:
    """Every field of ``model`` that accepts a float (also through ``float | None``)."""
    out = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        members = getattr(annotation, "__args__", (annotation,))
        if float in members:
            out.append(name)
    return out


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
@pytest.mark.parametrize("key", ["learning_rate", "num_train_epochs", "weight_decay", "max_grad_norm", "warmup_ratio"])
def test_non_finite_training_numbers_name_the_key(raw, key, value):
    raw["training"] = {key: value}
    assert "finite number" in problems(raw)[f"training.{key}"]


def test_every_float_field_of_every_section_rejects_non_finite(raw):
    from trainforge.config.sections import DataSection, TrainingSection

    raw["training"] = dict.fromkeys(_float_fields(TrainingSection), math.inf)
    raw["data"].update(dict.fromkeys(_float_fields(DataSection), math.nan))
    found = problems(raw)
    for key in _float_fields(TrainingSection):
        assert "finite number" in found[f"training.{key}"], key
    for key in _float_fields(DataSection):
        assert "finite number" in found[f"data.{key}"], key


@pytest.mark.parametrize("task", [t for t in task_names() if _float_fields(get_task(t).params)])
def test_every_float_param_of_every_task_rejects_non_finite(task):
    fields = _float_fields(get_task(task).params)
    raw = {"task": task, "model": {"name": "org/model"}, "data": {"source": "train.csv"}}
    raw["params"] = dict.fromkeys(fields, math.inf)
    found = problems(raw)
    for key in fields:
        assert "finite number" in found[f"params.{key}"], key


def test_yaml_inf_in_a_file_exits_2_naming_the_key(capsys, tmp_path, raw):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(raw) + "training: {learning_rate: .inf}\n")
    code, err = cli(capsys, "validate", path)
    assert code == 2 and "training.learning_rate" in err and "finite" in err and "Traceback" not in err
    code, err = cli(capsys, "validate", path, "training.learning_rate=.nan")
    assert code == 2 and "training.learning_rate" in err


@pytest.mark.parametrize("seed", [-1, 2**32, 10**20])
def test_seed_out_of_numpy_range_names_training_seed(raw, seed):
    raw["training"] = {"seed": seed}
    assert "training.seed" in problems(raw)


@pytest.mark.parametrize("seed", [0, 2**32 - 1])
def test_seed_bounds_are_accepted(raw, seed):
    raw["training"] = {"seed": seed}
    assert load_config(raw).training.seed == seed


def test_negative_seed_cli_exits_2(capsys, tmp_path, raw):
    raw["training"] = {"seed": -1}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(raw))
    code, err = cli(capsys, "validate", path)
    assert code == 2 and "training.seed" in err and "greater than or equal to 0" in err


# ------------------------------------------------------------------------------------------------ diverging runs


class _State:
    global_step, max_steps, is_world_process_zero = 7, 10, True


class _Args:
    learning_rate = 3.0
    logging_nan_inf_filter = True


@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_guard_fails_on_a_non_finite_logged_loss(value):
    from trainforge.training.callbacks import NonFiniteLossGuard, TrainingDivergedError

    guard, args = NonFiniteLossGuard(), _Args()
    guard.on_train_begin(args, _State(), None)
    assert args.logging_nan_inf_filter is False  # NaN steps must reach the logs, not be averaged away
    guard.on_log(args, _State(), None, logs={"loss": 0.5, "learning_rate": 1.0})
    with pytest.raises(TrainingDivergedError, match=r"loss is (nan|inf) at step 7 .*learning_rate \(now 3\)"):
        guard.on_log(args, _State(), None, logs={"loss": value})


def test_guard_checks_trained_weights_before_an_evaluation():
    import torch
    from transformers import TrainerControl

    from trainforge.training.callbacks import NonFiniteLossGuard, TrainingDivergedError

    model = torch.nn.Linear(2, 2)
    control = TrainerControl(should_evaluate=True)
    NonFiniteLossGuard().on_step_end(_Args(), _State(), control, model=model)
    with torch.no_grad():
        model.bias[0] = math.nan
    with pytest.raises(TrainingDivergedError, match="weight bias is NaN/inf after step 7"):
        NonFiniteLossGuard().on_step_end(_Args(), _State(), control, model=model)
    model.bias.requires_grad_(False)  # a frozen weight is not checked (it cannot have been trained to NaN)
    NonFiniteLossGuard().on_epoch_end(_Args(), _State(), control, model=model)


def test_diverging_run_fails_and_is_never_done(capsys, tmp_path, base_config):
    base_config["training"].update(learning_rate=1e30, num_train_epochs=1, logging_steps=2)
    base_config["data"]["eval_fraction"] = 0
    base_config["output"]["report_to"] = ["none"]
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(base_config))
    code, err = cli(capsys, "train", path)
    assert code == 1, err
    assert "training diverged" in err and "learning_rate" in err and "Traceback" not in err
    run_dir = Path(base_config["output"]["dir"])
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    assert events[-1]["event"] == "run_failed" and "training diverged" in events[-1]["error"]
    assert not any(e["event"] == "run_finished" for e in events)
    assert not (run_dir / "model.safetensors").exists()


# ------------------------------------------------------------------------------------------------ AutoTrain configs


def reference_llm(**params) -> dict:
    """An llm-sft config in the reference's shape (the sft-autotrain-legacy-param case's keys)."""
    return {
        "task": "llm-sft",
        "base_model": "org/model",
        "project_name": "runs/ref",
        "log": "tensorboard",
        "backend": "local",
        "data": {
            "path": "data",
            "train_split": "train",
            "valid_split": "valid",
            "chat_template": None,
            "column_mapping": {"text_column": "text"},
        },
        "params": {"block_size": 64, "epochs": 1, "batch_size": 4, "lr": 3e-5, "peft": True, **params},
        "hub": {"username": "me", "token": None, "push_to_hub": False},
    }


def test_trainforge_overrides_apply_to_an_autotrain_config(capsys):
    overrides = [
        "training.max_steps=1",
        "training.learning_rate=0.001",
        "params.completion_only_loss=false",
        "data.max_train_rows=5",
        "hub.private=false",
        "model.trust_remote_code=true",
        "output.overwrite=true",
    ]
    config = load_config(reference_llm(), overrides)
    assert config.training.max_steps == 1
    assert config.training.learning_rate == pytest.approx(1e-3)
    assert config.params.completion_only_loss is False
    assert config.data.max_train_rows == 5 and config.data.eval_split == "valid"
    assert config.hub.private is False and config.model.trust_remote_code is True and config.output.overwrite
    err = capsys.readouterr().err
    assert "training.learning_rate 0.001 replaces 3e-05 (from params.lr)" in err


def test_reference_overrides_and_training_names_under_params(capsys):
    config = load_config(reference_llm(), ["params.epochs=2", "params.max_steps=3", "base_model=org/other"])
    assert config.training.num_train_epochs == 2 and config.training.max_steps == 3
    assert config.model.name == "org/other"
    assert "params.max_steps is read as training.max_steps" in capsys.readouterr().err


def test_an_eval_policy_override_replaces_the_translated_one():
    config = load_config(reference_llm(), ["data.eval_fraction=0.3"])
    assert (config.data.eval_fraction, config.data.eval_split) == (0.3, None)


@pytest.mark.parametrize(
    ("override", "key", "fragment"),
    [
        ("trainig.max_steps=1", "trainig", "did you mean 'training'?"),
        ("projet_name=x", "projet_name", "did you mean 'project_name'?"),
        ("training.max_step=1", "training.max_step", "did you mean 'max_steps'?"),
        ("params.lrr=0.1", "params.lrr", "did you mean 'lr'?"),
        ("params.max_stepz=1", "params.max_stepz", "did you mean 'max_steps'?"),
        ("data.valid_spilt=dev", "data.valid_spilt", "did you mean 'valid_split'?"),
        ("hub.push_to_hb=true", "hub.push_to_hb", "did you mean 'push_to_hub'?"),
        ("data.column_mapping.text_colum=t", "data.column_mapping.text_colum", "did you mean 'text_column'?"),
        ("training.learning_rate=.inf", "training.learning_rate", "finite number"),
    ],
)
def test_every_autotrain_override_applies_or_is_an_error(override, key, fragment):
    assert fragment in problems(reference_llm(), [override])[key]


def test_unknown_top_level_key_in_an_autotrain_file_exits_2(capsys, tmp_path):
    path = tmp_path / "ref.yml"
    path.write_text(yaml.safe_dump({**reference_llm(), "hubb": {"push_to_hub": False}}))
    code, err = cli(capsys, "validate", path)
    assert code == 2 and "hubb: unknown key; did you mean 'hub'?" in err and "Traceback" not in err


def test_reference_parameter_we_do_not_use_is_a_note(capsys):
    config = load_config(reference_llm(dpo_beta=0.2, save_strategy="steps"))
    assert config.task == "llm_sft"
    err = capsys.readouterr().err
    assert "params.dpo_beta: a reference parameter trainforge does not use for llm_sft" in err
    assert "params.save_strategy: an older reference parameter; ignored" in err


@pytest.mark.parametrize(
    ("old", "value", "check"),
    [
        ("evaluation_strategy", "no", lambda c: c.training.eval_strategy == "no"),
        ("evaluation_strategy", "epoch", lambda c: c.training.eval_strategy == "epoch"),
        ("use_peft", False, lambda c: c.peft.enabled is False),
        ("train_batch_size", 3, lambda c: c.training.per_device_train_batch_size == 3),
        ("fp16", False, lambda c: c.training.precision == "fp32"),
        ("use_int4", False, lambda c: c.peft.quantization is None),
    ],
)
def test_older_reference_names_are_read_with_a_note(capsys, old, value, check):
    config = load_config(reference_llm(**{old: value}))
    assert check(config)
    assert f"params.{old}" in capsys.readouterr().err


def test_lora_options_without_peft_are_ignored_like_the_reference(capsys):
    raw = reference_llm(merge_adapter=True, peft=False)
    config = load_config(raw)
    assert config.peft.enabled is False and config.peft.merge_adapter is False
    assert "merge_adapter without peft" in capsys.readouterr().err
    # In trainforge's own shape the same combination stays an error: there it is a contradiction, not a port.
    raw = {"task": "llm_sft", "model": {"name": "org/m"}, "data": {"source": "d.jsonl"}}
    assert "merge_adapter needs peft" in problems({**raw, "peft": {"merge_adapter": True}})["peft"]
    # The older spelling under params is moved to peft: (run folders written before the section existed load).
    assert "merge_adapter needs peft" in problems({**raw, "params": {"merge_adapter": True}})["peft"]


def test_unsloth_falls_back_with_a_note(capsys):
    config = load_config(reference_llm(unsloth=True))
    assert config.task == "llm_sft"
    assert "without unsloth" in capsys.readouterr().err


def test_reference_params_that_stand_for_top_level_settings():
    raw = reference_llm(model="org/from-params", data_path="elsewhere", text_column="messages", valid_split=None)
    config = load_config(raw)
    assert config.model.name == "org/from-params" and config.data.source == "elsewhere"
    assert config.data.columns == {"text": "messages"} and config.data.eval_fraction == 0.2


@pytest.mark.parametrize(
    ("task", "fragments"),
    [
        ("llm-sfft", ["unknown task 'llm-sfft'", "did you mean 'llm-sft'?", "supported tasks: ", "llm-dpo"]),
        ("vlm:segmentation", ["not supported yet", "supported tasks: ", "text-classification", "llm-orpo"]),
        ("image-clasification", ["did you mean 'image-classification'?", "llm-sft"]),  # supported since issue 11
        ("vlm:captionning", ["did you mean 'vlm:captioning'?"]),  # supported since issue 11
    ],
)
def test_reference_task_misspelled_or_not_supported(task, fragments, monkeypatch):
    from trainforge.config import autotrain

    # Every task the reference registers is read now; vlm:segmentation (listed in a comment of the reference's VLM
    # params) stands for one it may add.
    monkeypatch.setattr(autotrain, "REFERENCE_TASKS", (*autotrain.REFERENCE_TASKS, "vlm:segmentation"))
    message = problems({**reference_llm(), "task": task})["task"]
    for fragment in fragments:
        assert fragment in message


def test_llm_task_takes_its_trainer_from_params():
    assert load_config({**reference_llm(trainer="sft"), "task": "llm"}).task == "llm_sft"
    assert load_config({**reference_llm(), "task": "llm"}).task == "llm_generic"
    assert "sft, dpo, orpo, reward" in problems({**reference_llm(trainer="ppo"), "task": "llm"})["params.trainer"]


def test_autotrain_override_trains_the_steps_it_says(capsys, tmp_path, tiny_bert, sentiment_csv):
    reference = {
        "task": "text_classification",
        "base_model": tiny_bert,
        "project_name": str(tmp_path / "run"),
        "log": "none",
        "backend": "local",
        "data": {
            "path": str(sentiment_csv),
            "train_split": "train",
            "valid_split": None,
            "column_mapping": {"text_column": "review", "target_column": "sentiment"},
        },
        "params": {"max_seq_length": 32, "epochs": 3, "batch_size": 8, "lr": 5e-3},
    }
    path = tmp_path / "ref.yml"
    path.write_text(yaml.safe_dump(reference))
    code, err = cli(capsys, "train", path, "training.max_steps=2", "training.eval_strategy=no")
    assert code == 0, err
    events = [json.loads(line) for line in (tmp_path / "run" / "events.jsonl").read_text().splitlines()]
    assert [e["max_steps"] for e in events if e["event"] == "train_started"] == [2]
    assert max(e["step"] for e in events if e["event"] == "step") == 2


# ---------------------------------------------------------------------------------------------- a section as one value


@pytest.mark.parametrize(
    "override, key, written, shape",
    [
        ("training=5", "training", "not a number", "training: {num_train_epochs: ...}"),
        ("model=bert-base-uncased", "model", "not text", "model: {name: ...}"),
        ("data.columns=review", "data.columns", "not text", "columns: {KEY: VALUE, ...}"),
        ("search=[1, 2]", "search", "not a list", "search: {trials: ...}"),
        ("params=true", "params", "not true/false", "params: {max_length: ..."),
        (
            "search.space={training.learning_rate: 0.001}",
            "search.space.training.learning_rate",
            "not a number",
            "training.learning_rate: {loguniform: ...} (its keys: loguniform, uniform, int, choice)",
        ),
    ],
)
def test_a_section_written_as_one_value_says_what_to_write(raw, override, key, written, shape):
    # Was "Input should be a valid dictionary or instance of TrainingSection": a class name, no shape to write.
    message = problems(raw, [override])[key]
    assert written in message and shape in message, message
    assert "instance of" not in message and "Section" not in message and "Dimension" not in message


@pytest.mark.parametrize("autotrain_section", ["params", "data", "hub"])
def test_an_autotrain_section_written_as_one_value_says_what_to_write(autotrain_section):
    config = {"task": "text_classification", "base_model": "org/model", "data": {"path": "d"}, autotrain_section: 3}
    message = problems(config)[autotrain_section]
    assert "not a number" in message and f"{autotrain_section}: {{KEY: VALUE, ...}}" in message


def test_a_section_holding_an_environment_secret_is_refused_without_echoing_it(raw, monkeypatch):
    monkeypatch.setenv("MY_HUB_TOKEN", "hf_notARealSecret12345")
    message = problems(raw, ["hub=${MY_HUB_TOKEN}"])["hub"]
    assert "not text" in message and "hf_notARealSecret12345" not in message


@pytest.mark.parametrize("folder", ["", "   "])
def test_an_empty_output_dir_is_refused(raw, folder):
    """An empty output.dir is the current folder: the run would be mixed into whatever the command ran in."""
    raw["output"] = {"dir": folder}
    assert "output.dir" in problems(raw)


def test_a_bad_override_is_named_as_one(tmp_path, capsys):
    """The message says the config came with overrides (the bad value may be on the command line, not in the file)."""
    path = tmp_path / "base.yaml"
    path.write_text(yaml.safe_dump({"task": "text_classification", "model": {"name": "m"}, "data": {"source": "d"}}))
    with pytest.raises(ConfigError) as refused:
        load_config(path, ["training.learning_rate=abc"])
    assert "base.yaml with 1 override" in str(refused.value) and "training.learning_rate" in str(refused.value)
