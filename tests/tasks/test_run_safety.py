"""Runs that are never lost: overwrite keeps the old run until the new one succeeds, torn checkpoints are skipped,
resume is checked against what the run recorded, and every stop is recorded."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

import trainforge
from conftest import make_sentiment_frame
from trainforge.cli.main import main
from trainforge.training.events import read_events

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_text_classification import make_config  # noqa: E402


def write(tmp_path: Path, config: dict, name: str = "run.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture()
def data(tmp_path) -> Path:
    path = tmp_path / "reviews.csv"
    make_sentiment_frame(64).to_csv(path, index=False)
    return path


def crash_at(monkeypatch, step: int) -> None:
    from trainforge.training.callbacks import EventsCallback

    def crash(self, args, state, control, **kwargs):
        if state.global_step == step:
            raise RuntimeError(f"simulated crash at step {step}")

    monkeypatch.setattr(EventsCallback, "on_step_end", crash, raising=False)


def test_overwrite_keeps_the_finished_run_until_the_new_one_succeeds(tiny_bert, tmp_path, data, monkeypatch, capsys):
    run_dir = tmp_path / "run"
    config = make_config(tiny_bert, data, run_dir, training={"num_train_epochs": 1})
    assert main(["train", str(write(tmp_path, config))]) == 0
    before = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}

    config["output"]["overwrite"] = True
    crash_at(monkeypatch, 1)  # the new run fails after its model loaded and trained a step
    code = main(["train", str(write(tmp_path, config))])
    monkeypatch.undo()
    err = capsys.readouterr().err
    assert code == 1
    assert {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()} == before
    assert "the previous run in" in err and "was kept" in err
    failed = list(tmp_path.glob("run.failed-*"))
    assert len(failed) == 1 and read_events(failed[0] / "events.jsonl")[-1]["event"] == "run_failed"
    assert not list(tmp_path.glob("run.replaced-*"))

    assert main(["train", str(write(tmp_path, config))]) == 0
    assert (run_dir / "metrics.json").is_file() and not list(tmp_path.glob("run.replaced-*"))
    started = [e for e in read_events(run_dir / "events.jsonl") if e["event"] == "run_started"]
    assert len(started) == 1  # the new run's own events, not appended to the old ones


def test_resume_skips_a_torn_checkpoint_and_names_it(tiny_bert, tmp_path, data, monkeypatch, capsys):
    training = {"max_steps": 6, "eval_strategy": "steps", "eval_steps": 2, "early_stopping_patience": None}
    path = write(tmp_path, make_config(tiny_bert, data, tmp_path / "run", training=training))
    crash_at(monkeypatch, 5)
    assert main(["train", str(path)]) == 1
    monkeypatch.undo()
    checkpoints = tmp_path / "run" / "checkpoints"
    torn = checkpoints / "checkpoint-5"
    shutil.copytree(checkpoints / "checkpoint-4", torn)
    (torn / "trainer_state.json").unlink()  # killed before the Trainer wrote its state, which it writes last
    capsys.readouterr()
    assert main(["train", str(path), "--resume"]) == 0
    assert "skipped checkpoint-5: incomplete" in capsys.readouterr().err
    events = read_events(tmp_path / "run" / "events.jsonl")
    assert [e for e in events if e["event"] == "train_started"][-1]["start_step"] == 4


def test_resumed_train_loss_covers_every_step(tiny_bert, tmp_path, data, monkeypatch):
    training = {"max_steps": 8, "eval_strategy": "steps", "eval_steps": 2, "early_stopping_patience": None}
    whole = trainforge.train(make_config(tiny_bert, data, tmp_path / "whole", training=training))
    path = write(tmp_path, make_config(tiny_bert, data, tmp_path / "cut", training=training))
    crash_at(monkeypatch, 5)
    assert main(["train", str(path)]) == 1
    monkeypatch.undo()
    assert main(["train", str(path), "--resume"]) == 0
    resumed = json.loads((tmp_path / "cut" / "metrics.json").read_text())
    assert resumed["train_loss"] == pytest.approx(whole.metrics["train_loss"], abs=1e-4)


def test_resume_refuses_a_finished_run_and_a_changed_config(tiny_bert, tmp_path, data, monkeypatch, capsys):
    training = {"max_steps": 6, "eval_strategy": "steps", "eval_steps": 2, "early_stopping_patience": None}
    config = make_config(tiny_bert, data, tmp_path / "run", training=training)
    path = write(tmp_path, config)
    crash_at(monkeypatch, 3)
    assert main(["train", str(path)]) == 1
    monkeypatch.undo()
    capsys.readouterr()

    changed = {**config, "data": {**config["data"], "eval_fraction": 0.4}}
    assert main(["train", str(write(tmp_path, changed, "changed.yaml")), "--resume"]) == 2
    err = capsys.readouterr().err
    assert "data.eval_fraction: 0.25 -> 0.4" in err and "Resume with the recorded config" in err

    data.write_text(data.read_text() + "one more great film,positive,0.0\n")
    assert main(["train", str(path), "--resume"]) == 2
    assert "its content changed" in capsys.readouterr().err
    make_sentiment_frame(64).to_csv(data, index=False)  # the original content again

    longer = {**config, "training": {**config["training"], "max_steps": 8}}
    assert main(["train", str(write(tmp_path, longer, "longer.yaml")), "--resume"]) == 0
    assert "resumed with training.max_steps changed: 6 -> 8" in capsys.readouterr().err
    assert main(["train", str(path), "--resume"]) == 2
    assert "finished; resuming would train it again" in capsys.readouterr().err


def test_output_dir_problems_are_named_before_anything_loads(tiny_bert, tmp_path, data, capsys):
    a_file = tmp_path / "isfile"
    a_file.write_text("a file")
    for target in (a_file, a_file / "below"):
        config = make_config(tiny_bert, data, target)
        assert main(["validate", str(write(tmp_path, config))]) == 2
        err = capsys.readouterr().err
        assert "output.dir" in err and "is a file" in err and "Traceback" not in err


def test_a_failed_run_without_checkpoints_does_not_block_the_rerun(tiny_bert, tmp_path, data, monkeypatch, capsys):
    path = write(tmp_path, make_config(tiny_bert, data, tmp_path / "run", output={"save_checkpoints": False}))
    crash_at(monkeypatch, 1)
    assert main(["train", str(path)]) == 1
    monkeypatch.undo()
    assert main(["train", str(path)]) == 0
    assert "replacing the failed run" in capsys.readouterr().err


def test_sigterm_records_an_interrupted_run(tiny_bert, tmp_path):
    make_sentiment_frame(400).to_csv(tmp_path / "big.csv", index=False)
    config = make_config(tiny_bert, tmp_path / "big.csv", tmp_path / "run", training={"num_train_epochs": 50})
    process = subprocess.Popen(
        [sys.executable, "-m", "trainforge", "train", str(write(tmp_path, config))],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    events = tmp_path / "run" / "events.jsonl"
    deadline = time.monotonic() + 120
    while not any(e["event"] == "step" for e in read_events(events)):
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.1)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 130
    last = read_events(events)[-1]
    assert last["event"] == "run_failed" and last["interrupted"] is True and "interrupted" in last["error"]
    # What to do next depends on whether a checkpoint was saved before the signal.
    saved = any((tmp_path / "run" / "checkpoints").glob("checkpoint-*/trainer_state.json"))
    assert ("--resume" in last["error"]) is saved and ("run the same command again" in last["error"]) is not saved


def test_checkpoints_are_deleted_when_the_run_finishes_unless_kept(tiny_bert, tmp_path, data):
    training = {"max_steps": 4, "eval_strategy": "steps", "eval_steps": 2, "early_stopping_patience": None}
    for keep in (False, True):
        out = tmp_path / f"keep-{keep}"
        trainforge.train(make_config(tiny_bert, data, out, training=training, output={"keep_checkpoints": keep}))
        assert (out / "model.safetensors").is_file()
        assert (out / "checkpoints").is_dir() is keep
        saved = [e for e in read_events(out / "events.jsonl") if e["event"] == "checkpoint"]
        assert saved  # checkpoints were written during the run either way


def test_early_stopping_patience_survives_resume(tiny_bert, tmp_path, monkeypatch):
    make_sentiment_frame(96).to_csv(tmp_path / "reviews.csv", index=False)
    # Threshold 1.0: no evaluation counts as an improvement, so patience 2 stops at the third evaluation.
    training = {
        "num_train_epochs": 10, "metric_for_best_model": "accuracy",
        "early_stopping_patience": 2, "early_stopping_threshold": 1.0,
    }  # fmt: skip
    whole = make_config(tiny_bert, tmp_path / "reviews.csv", tmp_path / "whole", training=training)
    trainforge.train(whole)
    stopped = [e for e in read_events(tmp_path / "whole" / "events.jsonl") if e["event"] == "early_stopped"]
    assert len(stopped) == 1
    path = write(tmp_path, make_config(tiny_bert, tmp_path / "reviews.csv", tmp_path / "cut", training=training))
    crash_at(monkeypatch, stopped[0]["step"] - 2)  # after two evaluations without improvement
    assert main(["train", str(path)]) == 1
    monkeypatch.undo()
    assert main(["train", str(path), "--resume"]) == 0
    resumed = [e for e in read_events(tmp_path / "cut" / "events.jsonl") if e["event"] == "early_stopped"]
    assert [e["step"] for e in resumed] == [stopped[0]["step"]]
