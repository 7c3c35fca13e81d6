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
