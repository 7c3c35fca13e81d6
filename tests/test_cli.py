"""The ``trainforge`` command line: bad inputs exit 2 with a clear message and no traceback; help stays light."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import make_sentiment_frame
from trainforge.cli.main import main


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    """Run ``trainforge ARGV`` in-process; returns (exit code, stdout, stderr)."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def write_config(tmp_path: Path, config: dict) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def with_rows(config: dict, tmp_path: Path, frame: pd.DataFrame, name: str = "rows.csv", **data) -> dict:
    """Point ``config`` at ``frame`` written to ``name`` (format by extension)."""
    path = tmp_path / name
    if name.endswith(".jsonl"):
        frame.to_json(path, orient="records", lines=True)
    else:
        frame.to_csv(path, index=False)
    config["data"]["source"] = str(path)
    config["data"].update(data)
    return config


def assert_user_error(result: tuple[int, str, str], *phrases: str, code: int = 2) -> None:
    rc, _, err = result
    assert rc == code, err
    assert err.startswith("error: ")
    for phrase in phrases:
        assert phrase in err
    assert "Traceback" not in err


# ------------------------------------------------------------------------------------------------ config errors


def test_unknown_key(capsys, tmp_path, base_config):
    base_config["training"]["num_epochs"] = 2
    result = cli(capsys, "validate", write_config(tmp_path, base_config))
    assert_user_error(result, "training.num_epochs: unknown key; did you mean 'num_train_epochs'?")


def test_wrong_type(capsys, tmp_path, base_config):
    base_config["training"]["learning_rate"] = "fast"
    result = cli(capsys, "validate", write_config(tmp_path, base_config))
    assert_user_error(result, "training.learning_rate: Input should be a valid number", "'fast'")


def test_unknown_task(capsys, tmp_path, base_config):
    base_config["task"] = "sentiment"
    result = cli(capsys, "validate", write_config(tmp_path, base_config))
    assert_user_error(result, "task: unknown task 'sentiment'", "known: text_classification, text_regression")


def test_config_file_missing_or_not_yaml(capsys, tmp_path):
    assert_user_error(cli(capsys, "validate", tmp_path / "nope.yaml"), "config file not found")
    broken = tmp_path / "broken.yaml"
    broken.write_text("task: text_classification\nmodel: {name: [x}\n")
    assert_user_error(cli(capsys, "validate", broken), "not valid YAML at line 2")


def test_unset_env_var(capsys, tmp_path, base_config, monkeypatch):
    monkeypatch.delenv("TF_CLI_DATA_DIR", raising=False)
    base_config["data"]["source"] = "${TF_CLI_DATA_DIR}/reviews.csv"
    result = cli(capsys, "validate", write_config(tmp_path, base_config))
    assert_user_error(result, "data.source: environment variable TF_CLI_DATA_DIR is not set")


@pytest.mark.parametrize(
    "override",
    [
        "training.learning_rate=${MY_API_TOKEN}",  # ConfigError: "(got '<the value>')"
        "data.columns.text=${MY_API_TOKEN}",  # DataError: "has no column '<the value>'"
        "model.name=/nowhere/${MY_API_TOKEN}",  # the model check: "'<path>' is neither ..."
    ],
)
@pytest.mark.parametrize("json_output", [False, True])
def test_a_secret_read_into_the_wrong_field_is_not_printed(
    capsys, tmp_path, base_config, monkeypatch, override, json_output
):
    # The refusal used to echo the value, i.e. print the token to the terminal / CI log.
    secret = "hf_notARealToken0123456789"
    monkeypatch.setenv("MY_API_TOKEN", secret)
    argv = ["validate", write_config(tmp_path, base_config), override, *(["--json"] if json_output else [])]
    code, out, err = cli(capsys, *argv)
    assert code == 2 and secret not in out + err
    assert "${MY_API_TOKEN}" in out + err  # the message still says what the field held


def test_bad_override(capsys, tmp_path, base_config):
    result = cli(capsys, "train", write_config(tmp_path, base_config), "training.learning_rate")
    assert_user_error(result, "override 'training.learning_rate' must look like section.key=value")


def test_model_path_that_is_not_a_model(capsys, tmp_path, base_config):
    folder = tmp_path / "not-a-model"
    folder.mkdir()
    (folder / "notes.txt").write_text("hello")
    base_config["model"]["name"] = str(folder)
    result = cli(capsys, "validate", write_config(tmp_path, base_config))
    assert_user_error(result, "model.name:", "folder without config.json: not a saved model")


def test_model_not_cached_while_offline(capsys, tmp_path, base_config):
    base_config["model"]["name"] = "nobody-here/no-such-model"
    result = cli(capsys, "validate", write_config(tmp_path, base_config))
    assert_user_error(result, "'nobody-here/no-such-model' is not a local folder and not in the Hub cache")


def test_fp16_on_cpu(capsys, tmp_path, base_config):
    import torch

    if torch.cuda.is_available():
        pytest.skip("fp16 is valid on a CUDA machine")
    result = cli(capsys, "train", write_config(tmp_path, base_config), "training.precision=fp16")
    assert_user_error(result, "training.precision: fp16 needs a CUDA GPU and none is visible")
    assert not Path(base_config["output"]["dir"]).exists()


# ------------------------------------------------------------------------------------------------ data errors


def test_missing_data_file(capsys, tmp_path, base_config):
    base_config["data"]["source"] = str(tmp_path / "missing.csv")
    result = cli(capsys, "validate", write_config(tmp_path, base_config))
    assert_user_error(result, "missing.csv' does not exist")


def test_garbage_parquet(capsys, tmp_path, base_config):
    path = tmp_path / "train.parquet"
    path.write_bytes(b"PAR1 but not really")
    base_config["data"]["source"] = str(path)
    result = cli(capsys, "validate", write_config(tmp_path, base_config))
    assert_user_error(result, f"could not parse {path} as PARQUET")


def test_malformed_jsonl(capsys, tmp_path, base_config):
    path = tmp_path / "train.jsonl"
    path.write_text('{"review": "good film", "sentiment": "positive"}\n{"review": "bad film", sentiment: negative}\n')
    base_config["data"]["source"] = str(path)
    result = cli(capsys, "validate", write_config(tmp_path, base_config))
    assert_user_error(result, f"could not parse {path} as JSONL: line 2 is not valid JSON")


def test_header_only_csv(capsys, tmp_path, base_config):
    path = tmp_path / "empty.csv"
    path.write_text("review,sentiment\n")
    base_config["data"]["source"] = str(path)
    assert_user_error(cli(capsys, "validate", write_config(tmp_path, base_config)), f"{path} has no rows")


def test_missing_text_column(capsys, tmp_path, base_config):
    base_config["data"]["columns"]["text"] = "body"
    result = cli(capsys, "validate", write_config(tmp_path, base_config))
    assert_user_error(result, "has no column 'body' for the text column", "Columns found: review, sentiment, score")


def test_missing_labels_name_rows(capsys, tmp_path, base_config):
    frame = make_sentiment_frame(40)
    frame["sentiment"] = frame["sentiment"].astype(object)
    frame.loc[[3, 17], "sentiment"] = None
    config = with_rows(base_config, tmp_path, frame, eval_fraction=0)
    result = cli(capsys, "validate", write_config(tmp_path, config))
    assert_user_error(result, "the label column is empty in 2 row(s), first: rows 4, 18")


def test_blank_texts_name_rows(capsys, tmp_path, base_config):
    frame = make_sentiment_frame(40)
    frame.loc[9, "review"] = "   "
    config = with_rows(base_config, tmp_path, frame, name="rows.jsonl", eval_fraction=0)
    result = cli(capsys, "validate", write_config(tmp_path, config))
    assert_user_error(result, "the text column is empty in 1 row(s), first: rows 10")


def test_single_class(capsys, tmp_path, base_config):
    frame = make_sentiment_frame(40).assign(sentiment="positive")
    result = cli(capsys, "validate", write_config(tmp_path, with_rows(base_config, tmp_path, frame)))
    assert_user_error(result, "the label column holds a single class (positive)", "at least two")


def test_eval_labels_unseen_in_training(capsys, tmp_path, base_config):
    train = make_sentiment_frame(40)
    train.to_csv(tmp_path / "train.csv", index=False)
    evaluation = make_sentiment_frame(10, seed=1)
    evaluation.loc[4, "sentiment"] = "mixed"
    evaluation.to_csv(tmp_path / "dev.csv", index=False)
    base_config["data"].update(source=str(tmp_path), eval_split="dev")
    del base_config["data"]["eval_fraction"]
    result = cli(capsys, "validate", write_config(tmp_path, base_config))
    assert_user_error(result, "labels ['mixed'] never occur in training", "first rows: rows 5")


def test_list_labels_with_multi_label_off(capsys, tmp_path, base_config):
    frame = make_sentiment_frame(20)
    frame["sentiment"] = [["positive", "negative"]] * 20
    config = with_rows(base_config, tmp_path, frame, name="rows.jsonl")
    config["params"]["multi_label"] = False
    result = cli(capsys, "validate", write_config(tmp_path, config))
    assert_user_error(result, "list-valued labels at rows 1, 2, 3, 4, 5 ...", "set params.multi_label: true")


def test_non_numeric_regression_target(capsys, tmp_path, base_config):
    frame = make_sentiment_frame(30)
    frame["score"] = frame["score"].astype(object)
    frame.loc[6, "score"] = "high"
    config = with_rows(base_config, tmp_path, frame, columns={"text": "review", "target": "score"}, eval_fraction=0)
    config["task"] = "text_regression"
    result = cli(capsys, "validate", write_config(tmp_path, config))
    assert_user_error(result, "the target column must be numeric for regression", "row 7: 'high'")


def test_negative_sample_weight(capsys, tmp_path, base_config):
    frame = make_sentiment_frame(30).assign(weight=1.0)
    frame.loc[[2, 11], "weight"] = -0.5
    columns = {"text": "review", "label": "sentiment", "sample_weight": "weight"}
    config = with_rows(base_config, tmp_path, frame, columns=columns, eval_fraction=0)
    result = cli(capsys, "validate", write_config(tmp_path, config))
    assert_user_error(result, "sample_weight must be a number >= 0; bad rows: rows 3, 12")


# ------------------------------------------------------------------------------------------------ run directory


def test_output_dir_already_holding_a_run(capsys, tmp_path, base_config):
    run_dir = Path(base_config["output"]["dir"])
    run_dir.mkdir()
    (run_dir / "events.jsonl").write_text('{"event": "run_started"}\n')
    result = cli(capsys, "train", write_config(tmp_path, base_config))
    assert_user_error(result, "already holds a run", "output.overwrite=true")
    assert [p.name for p in run_dir.iterdir()] == ["events.jsonl"]


def test_overwrite_never_deletes_a_folder_that_is_not_a_run(capsys, tmp_path, base_config):
    base_config["output"].update(dir=str(tmp_path), overwrite=True)  # the folder holding the data
    result = cli(capsys, "train", write_config(tmp_path, base_config))
    assert_user_error(result, "is not empty and holds no trainforge run (no events.jsonl)")
    assert Path(base_config["data"]["source"]).is_file()


def test_resume_without_checkpoint(capsys, tmp_path, base_config):
    result = cli(capsys, "train", write_config(tmp_path, base_config), "--resume")
    assert_user_error(result, "--resume: no checkpoint in", "drop --resume to start fresh")


def test_predict_on_a_directory_that_is_not_a_run(capsys, tmp_path):
    inputs = tmp_path / "in.csv"
    inputs.write_text("text\nhello\n")
    result = cli(capsys, "predict", tmp_path, "--input", inputs, "--output", tmp_path / "out.csv")
    assert_user_error(result, "is not a trainforge run directory (no config.resolved.yaml)")


def test_init_unknown_task(capsys):
    assert_user_error(cli(capsys, "init", "text_clasification"), "unknown task 'text_clasification'")


# ------------------------------------------------------------------------------------------------ real process


def run_process(*argv: str, flags: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *flags, "-m", "trainforge", *map(str, argv)], capture_output=True, text=True, timeout=120
    )


def test_real_process_exit_code_and_message(tmp_path, base_config):
    base_config["data"]["columns"]["label"] = "stars"
    done = run_process("validate", write_config(tmp_path, base_config))
    assert done.returncode == 2
    assert "has no column 'stars' for the label column" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    "argv", [("--help",), ("tasks",), ("tasks", "text_classification"), ("init", "text_regression")]
)
def test_light_commands_do_not_import_torch(argv):
    done = run_process(*argv, flags=("-X", "importtime"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()
    imported = {
        line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")
    }
    assert "trainforge" in imported
    heavy = sorted(name for name in imported if name.split(".")[0] in ("torch", "transformers", "datasets"))
    assert heavy == []


# ------------------------------------------------------------------------------------------------ good paths


def test_tasks_lists_and_describes(capsys):
    code, out, _ = cli(capsys, "tasks")
    assert code == 0
    assert out.splitlines()[0].startswith("text_classification") and "text_regression" in out
    code, out, _ = cli(capsys, "tasks", "text_classification", "--all")
    assert code == 0
    assert "params.label_delimiter" in out and "training.early_stopping_patience" in out


def test_init_output_validates(capsys, tmp_path, tiny_bert, sentiment_csv):
    code, out, _ = cli(capsys, "init", "text_classification")
    assert code == 0
    config = yaml.safe_load(out)
    assert config["task"] == "text_classification"
    config["model"]["name"] = tiny_bert
    config["data"].update(source=str(sentiment_csv), columns={"text": "review", "label": "sentiment"})
    code, out, err = cli(capsys, "validate", write_config(tmp_path, config))
    assert code == 0, err
    assert "config OK: task text_classification" in out


def test_init_writes_a_file_once(capsys, tmp_path):
    target = tmp_path / "new.yaml"
    assert cli(capsys, "init", "text_regression", "-o", target)[0] == 0
    assert yaml.safe_load(target.read_text())["task"] == "text_regression"
    rc, _, err = cli(capsys, "init", "text_regression", "-o", target)
    assert rc == 1 and "already exists; choose another file name" in err and "Traceback" not in err


def test_validate_prints_row_counts_and_labels(capsys, tmp_path, base_config):
    code, out, err = cli(capsys, "validate", write_config(tmp_path, base_config), "data.eval_fraction=0.25")
    assert code == 0, err
    assert "train: 90 rows from" in out
    assert "eval:  30 rows from 0.25 of" in out
    assert "single_label_classification: 2 label(s): negative, positive" in out
    assert not Path(base_config["output"]["dir"]).exists()


@pytest.mark.parametrize("command", ["app", "serve"])
@pytest.mark.parametrize("port", ["0", "70000", "-1", "http"])
def test_a_port_that_cannot_be_bound_is_refused_before_any_server_starts(capsys, tmp_path, monkeypatch, command, port):
    # 70000 used to load the models, start uvicorn and end in a bind() OverflowError traceback, exit 1.
    import trainforge.app.server
    import trainforge.serve

    def no_server(*args, **kwargs):
        raise AssertionError("a server was started")

    monkeypatch.setattr(trainforge.app.server, "serve", no_server)
    monkeypatch.setattr(trainforge.serve, "serve", no_server)
    argv = [command, *([str(tmp_path)] if command == "serve" else ["--workspace", str(tmp_path)]), "--port", port]
    with pytest.raises(SystemExit) as exited:
        main(argv)
    err = capsys.readouterr().err
    assert exited.value.code == 2 and "--port" in err and "1 to 65535" in err and "Traceback" not in err


def test_app_max_concurrent_below_one_is_a_usage_error(capsys, tmp_path, monkeypatch):
    import trainforge.app.server

    monkeypatch.setattr(trainforge.app.server, "serve", lambda *a, **k: pytest.fail("a server was started"))
    with pytest.raises(SystemExit) as exited:
        main(["app", "--workspace", str(tmp_path), "--max-concurrent", "0"])
    err = capsys.readouterr().err
    assert exited.value.code == 2 and "--max-concurrent" in err and "1 or more" in err and "Traceback" not in err
