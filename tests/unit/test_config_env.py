"""Environment interpolation, strict YAML and Python-object configs: what is read, what is refused, and where."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

import trainforge
from conftest import make_sentiment_frame
from trainforge.cli.main import main
from trainforge.config.loading import dump_resolved, load_config
from trainforge.errors import ConfigError


@pytest.fixture()
def config(tmp_path, tiny_bert) -> dict:
    make_sentiment_frame(24).to_csv(tmp_path / "d.csv", index=False)
    return {
        "task": "text_classification",
        "model": {"name": tiny_bert},
        "data": {"source": str(tmp_path / "d.csv"), "columns": {"text": "review", "label": "sentiment"}},
        "output": {"dir": str(tmp_path / "run")},
    }


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def test_unset_hub_variables_are_absent_unless_the_run_pushes(config, monkeypatch, capsys):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HF_USERNAME", raising=False)
    loaded = load_config({**config, "hub": {"token": "${HF_TOKEN}", "push": False}})
    assert loaded.hub.token is None
    assert "hub.token (${HF_TOKEN}) unset; not needed" in capsys.readouterr().err
    with pytest.raises(ConfigError, match=r"hub.token: \$\{HF_TOKEN\} is not set, and the run pushes"):
        load_config({**config, "hub": {"token": "${HF_TOKEN}", "push": True, "repo_id": "me/m"}})
    with pytest.raises(ConfigError, match="data.source: environment variable NOPE_DIR is not set"):
        load_config({**config, "data": {**config["data"], "source": "${NOPE_DIR}/d.csv"}})


def _no_login(monkeypatch, tmp_path) -> None:
    from huggingface_hub import constants

    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "hf-home" / "token"))  # no saved login


def test_a_pushing_run_without_any_token_fails_at_validate(config, tmp_path, monkeypatch, capsys):
    from huggingface_hub import constants

    _no_login(monkeypatch, tmp_path)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)  # online: the missing token is the only problem
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    path = write(tmp_path, yaml.safe_dump({**config, "hub": {"push": True, "repo_id": "me/m"}}))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "hub.push: there is no Hub token to push with: export HF_TOKEN=" in err and "switched off" not in err
    assert not (tmp_path / "run").exists()  # refused before the run directory (or anything else) was made


def test_a_pushing_run_with_the_hub_offline_fails_at_validate(config, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_TOKEN", "hf_aTokenThatIsNeverPrinted123")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    path = write(tmp_path, yaml.safe_dump({**config, "hub": {"push": True, "repo_id": "me/m"}}))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "hub.push: the Hub is switched off here (HF_HUB_OFFLINE=1" in err and "no Hub token" not in err
    assert "hf_aTokenThatIsNeverPrinted123" not in err
    assert main(["train", str(path)]) == 2  # training refuses before it starts, with the same message
    assert "hub.push: the Hub is switched off here" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_a_token_written_into_a_config_is_ignored_with_a_note(config, tmp_path, monkeypatch, capsys):
    literal = "hf_LiteralTokenInAFile0123456789"
    monkeypatch.setenv("MY_HUB_TOKEN", "hf_FromTheEnvironment0123456789")
    loaded = load_config({**config, "hub": {"token": literal}})
    err = capsys.readouterr().err
    assert loaded.hub.token is None and literal not in err
    assert "note: hub.token holds a token written into the config, which trainforge does not read" in err
    # A dotted override (shell history) is read the same way.
    assert load_config(config, [f"hub.token={literal}"]).hub.token is None
    capsys.readouterr()
    load_config({**config, "hub": {"token": "${HF_TOKEN:-}"}})  # a reference with an empty default: no note
    assert "does not read" not in capsys.readouterr().err
    referenced = load_config({**config, "hub": {"token": "${MY_HUB_TOKEN}"}})
    assert referenced.hub.token.get_secret_value() == "hf_FromTheEnvironment0123456789"
    assert "hf_FromTheEnvironment" not in yaml.safe_dump(dump_resolved(referenced))


def test_overrides_are_interpolated_and_unset_ones_name_the_key(config, tmp_path, monkeypatch, capsys):
    path = write(tmp_path, yaml.safe_dump(config))
    monkeypatch.delenv("NOPE_X", raising=False)
    assert main(["validate", str(path), "data.eval_fraction=${NOPE_X}"]) == 2
    err = capsys.readouterr().err
    assert "data.eval_fraction: environment variable NOPE_X is not set" in err and "events.jsonl" not in err
    monkeypatch.setenv("FRACTION", "0.5")
    assert load_config(str(path), ["data.eval_fraction=${FRACTION}"]).data.eval_fraction == 0.5


def test_no_interpolation_keeps_references_as_text(config, monkeypatch):
    monkeypatch.setenv("SECRET_THING", "s3cr3t-value")
    loaded = load_config({**config, "model": {**config["model"], "revision": "${SECRET_THING}"}}, interpolate=False)
    assert loaded.model.revision == "${SECRET_THING}"
    assert load_config({**config, "model": {**config["model"], "revision": "${SECRET_THING}"}}).model.revision == (
        "s3cr3t-value"
    )


def test_python_paths_are_accepted_by_the_sdk(config, tmp_path):
    as_paths = {
        **config,
        "model": {"name": Path(config["model"]["name"])},
        "data": {**config["data"], "source": Path(config["data"]["source"])},
        "output": {"dir": tmp_path / "run"},
    }
    report = trainforge.validate(as_paths)
    assert report.train_rows > 0 and report.config.output.dir == str(tmp_path / "run")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (
            "task: a\ntraining: {seed: 1}\nmodel: {name: m}\ntraining: {seed: 2}\n",
            "duplicate key 'training' at lines 2 and 4",
        ),
        ("task: a\ntraining:\n  seed: 1\n  seed: 2\n", "duplicate key 'seed' at lines 3 and 4"),
        (
            "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
            + "".join(f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n" for i in range(6)),
            "expands to more than 100,000 values through aliases",
        ),
        ("task: [unclosed\n", "not valid YAML at line"),
    ],
    ids=["duplicate-section", "duplicate-field", "alias-bomb", "invalid"],
)
def test_strict_yaml_files(tmp_path, capsys, text, fragment):
    assert main(["validate", str(write(tmp_path, text))]) == 2
    err = capsys.readouterr().err
    assert fragment in err and "Traceback" not in err


def test_yaml_anchors_within_bounds_still_work(config, tmp_path):
    text = yaml.safe_dump(config) + "common: &c {num_train_epochs: 2}\n"
    text = text.replace("common: &c {num_train_epochs: 2}\n", "") + "training: &t {num_train_epochs: 2}\n"
    assert load_config(str(write(tmp_path, text))).training.num_train_epochs == 2


def test_fields_a_task_does_not_read_are_refused_by_name(tmp_path, capsys):
    pd = pytest.importorskip("pandas")
    pd.DataFrame({"a": range(20), "b": [i % 3 for i in range(20)], "y": [i % 2 for i in range(20)]}).to_csv(
        tmp_path / "t.csv", index=False
    )
    config = {
        "task": "tabular_regression",
        "data": {"source": str(tmp_path / "t.csv")},
        "params": {"target_columns": ["y"]},
        "training": {"learning_rate": 0.1, "precision": "fp32", "seed": 3},
        "model": {"name": "auto", "trust_remote_code": True},
    }
    path = write(tmp_path, yaml.safe_dump(config))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    for key in ("training.learning_rate", "training.precision", "model.trust_remote_code"):
        assert f"{key}: does not apply to task tabular_regression" in err
    assert "training.seed" not in err.split("What applies")[0]  # the seed is shared by every task
    del config["training"]["learning_rate"], config["training"]["precision"], config["model"]["trust_remote_code"]
    loaded = load_config(config)
    assert loaded.training.seed == 3
    assert load_config(yaml.safe_load(yaml.safe_dump(__import__("trainforge").config.loading.dump_resolved(loaded))))
    from trainforge.config.json_schema import task_schema
    from trainforge.tasks import get_task

    training = task_schema(get_task("tabular_regression"))["properties"]["training"]["properties"]
    assert list(training) == ["seed"]  # the form offers only what applies


def test_events_never_hold_an_environment_secret(tmp_path, monkeypatch):
    """Every event (file, console display, web app) has secret values replaced, e.g. a failure quoting one."""
    from trainforge.training.events import EventLog

    monkeypatch.setenv("MY_API_TOKEN", "tok-1234567890")
    seen: list[dict] = []
    log = EventLog(tmp_path / "events.jsonl", (seen.append,))
    log.write("run_failed", error="ValueError: could not convert 'tok-1234567890' to float", extra=["tok-1234567890"])
    log.copy({"event": "note", "message": "x"}, trial="tok-1234567890")
    log.close()
    text = (tmp_path / "events.jsonl").read_text()
    assert "tok-1234567890" not in text and "tok-1234567890" not in json.dumps(seen)
    assert "${MY_API_TOKEN}" in text and seen[0]["error"].endswith("'${MY_API_TOKEN}' to float")


def test_a_secret_containing_another_is_redacted_whole(monkeypatch):
    from trainforge._utils.secrets import redact

    monkeypatch.setenv("SHORT_TOKEN", "abcdef")
    monkeypatch.setenv("LONG_SECRET", "abcdef-and-more")
    assert redact("x abcdef-and-more y abcdef") == "x ${LONG_SECRET} y ${SHORT_TOKEN}"
