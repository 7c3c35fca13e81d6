"""The web app's Estimate panel API: ``POST /api/config/estimate`` runs ``trainforge estimate --json`` in a child.

Each call that reaches the child costs a fresh Python process (~10-15 s on a busy 2-core machine), so most tests
use ``measure: false`` and the refusals are checked before any child starts.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

import trainforge.sdk as sdk

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from app.test_api import LOOPBACK, make_client, tc_config  # noqa: E402
from trainforge.app import routes  # noqa: E402
from trainforge.app.server import AppSettings, create_app  # noqa: E402

SECRET_VALUE = "xyz-not-for-children-4711"


@pytest.fixture()
def client(tmp_path):
    with make_client(tmp_path / "ws") as c:
        yield c


@pytest.fixture()
def children(monkeypatch) -> list[list[str]]:
    """The commands the server runs as children (still run for real)."""
    seen: list[list[str]] = []
    run_child = routes._run_child
    monkeypatch.setattr(routes, "_run_child", lambda command, *args: seen.append(command) or run_child(command, *args))
    return seen


def errors_of(response) -> dict[str, str]:
    assert response.status_code == 422, response.text
    return {e["key"]: e["message"] for e in response.json()["detail"]["errors"]}


def test_estimate_equals_the_sdks_and_the_child_gets_no_secrets(
    client, children, tiny_bert, sentiment_csv, tmp_path, monkeypatch
):
    # The child imports a sitecustomize module from PYTHONPATH before anything else: it writes down the
    # environment the child process really got.
    hook, dump = tmp_path / "hook", tmp_path / "child-env.json"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(
        "import json, os\n"
        "if os.environ.get('TF_TEST_ENV_DUMP'):\n"
        "    with open(os.environ['TF_TEST_ENV_DUMP'], 'w') as f:\n"
        "        json.dump(dict(os.environ), f)\n"
    )
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(hook), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("TF_TEST_ENV_DUMP", str(dump))
    monkeypatch.setenv("MY_API_TOKEN", SECRET_VALUE)
    config = tc_config(tiny_bert, sentiment_csv)

    response = client.post("/api/config/estimate", json={"config": config, "measure": False})

    assert response.status_code == 200, response.text
    report = response.json()
    expected = sdk.estimate(config, measure=False, interpolate=False).to_dict()
    assert report["ok"] and report["applies"] and report["task"] == "text_classification"
    assert report["total_params"] == expected["total_params"] > 0
    assert report["trainable_params"] == expected["trainable_params"]
    assert report["memory"] == expected["memory"]  # every component, with and without checkpointing
    assert report["fits"] is True and report["speed"] is None
    assert [c[3:] for c in children] == [["estimate", c[4], "--json", "--no-env", "--no-measure"] for c in children]
    assert len(children) == 1 and not Path(children[0][4]).exists()  # the temporary config is gone
    child_env = json.loads(dump.read_text())
    assert "MY_API_TOKEN" not in child_env and SECRET_VALUE not in json.dumps(child_env)
    assert child_env["TF_TEST_ENV_DUMP"] == str(dump)  # the dump came from this child, with the rest of the env


def test_measured_estimate_reports_speed_against_a_memory_limit(client, tiny_bert, sentiment_csv):
    config = tc_config(tiny_bert, sentiment_csv)
    response = client.post("/api/config/estimate", json={"config": config, "memory_limit": "64GiB"})
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["available_bytes"] == 64 * 2**30 and report["fits"] is True
    speed = report["speed"]
    assert speed["step_s"] > 0 and speed["samples_per_s"] > 0 and speed["steps_per_epoch"] > 0
    assert speed["epoch_s"] == pytest.approx(speed["steps_per_epoch"] * speed["step_s"])
    assert "s/step" in report["summary"]


def test_a_bad_config_is_422_by_key_before_any_child(client, children, tiny_bert, sentiment_csv):
    config = tc_config(tiny_bert, sentiment_csv)
    config["training"]["lr"] = 0.1
    config["training"]["num_train_epochs"] = -1
    errors = errors_of(client.post("/api/config/estimate", json={"config": config, "measure": False}))
    assert "learning_rate" in errors["training.lr"] and "greater than 0" in errors["training.num_train_epochs"]
    good = tc_config(tiny_bert, sentiment_csv)
    errors = errors_of(client.post("/api/config/estimate", json={"config": good, "memory_limit": "lots"}))
    assert "16GiB" in errors["memory_limit"]
    literal = {**good, "hub": {"token": "hf_literal_token"}}
    assert "hub.token" in errors_of(client.post("/api/config/estimate", json={"config": literal}))
    remote = {**good, "model": {**good["model"], "trust_remote_code": True}}
    errors = errors_of(client.post("/api/config/estimate", json={"config": remote}))
    assert "--allow-remote-code" in errors["model.trust_remote_code"]
    assert children == []


def test_bad_data_is_422_from_the_child_like_validate(client, children, tiny_bert, sentiment_csv):
    config = tc_config(tiny_bert, sentiment_csv)
    config["data"]["columns"]["text"] = "comment"
    validated = errors_of(client.post("/api/config/validate", json={"config": config}))
    estimated = errors_of(client.post("/api/config/estimate", json={"config": config, "measure": False}))
    assert list(estimated) == ["data"] and "comment" in estimated["data"] and "review" in estimated["data"]
    assert estimated == validated  # the same message, from the same checks
    assert len(children) == 1


@pytest.mark.parametrize("key", ["source", "eval_split", "test_split"])
def test_system_paths_are_refused(client, children, tiny_bert, sentiment_csv, key):
    config = tc_config(tiny_bert, sentiment_csv)
    if key != "source":
        config["data"]["eval_fraction"] = None
    config["data"][key] = "/proc/self/environ"
    for endpoint in ("/api/config/estimate", "/api/config/validate"):
        errors = errors_of(client.post(endpoint, json={"config": config, "measure": False}))
        assert errors == {f"data.{key}": "/proc/self/environ is not a data file this app reads"}
    assert children == []


def test_one_estimate_at_a_time(client, tiny_bert, sentiment_csv):
    config = tc_config(tiny_bert, sentiment_csv)
    with routes._ESTIMATE_LOCK:  # as while another request's child runs
        busy = client.post("/api/config/estimate", json={"config": config, "measure": False})
    assert busy.status_code == 409 and "another estimate" in busy.json()["detail"]


def test_a_slow_estimate_is_stopped(client, tiny_bert, sentiment_csv, monkeypatch):
    monkeypatch.setattr(routes, "ESTIMATE_TIMEOUT_S", 0.5)
    response = client.post("/api/config/estimate", json={"config": tc_config(tiny_bert, sentiment_csv)})
    assert response.status_code == 504 and "within 0.5 s" in response.json()["detail"]
    assert not routes._ESTIMATE_LOCK.locked()


def test_a_crashed_child_is_500_with_its_error_redacted(client, tiny_bert, sentiment_csv, monkeypatch):
    monkeypatch.setenv("MY_API_TOKEN", SECRET_VALUE)
    stderr = f"Traceback ...\nerror: estimate failed: RuntimeError: boom {SECRET_VALUE}\n"
    crashed = subprocess.CompletedProcess([], 1, stdout="", stderr=stderr)
    monkeypatch.setattr(routes, "_run_child", lambda *args: crashed)
    response = client.post("/api/config/estimate", json={"config": tc_config(tiny_bert, sentiment_csv)})
    assert response.status_code == 500
    message = response.json()["detail"]["errors"][0]["message"]
    assert "RuntimeError: boom ${MY_API_TOKEN}" in message and SECRET_VALUE not in response.text


def test_a_running_training_is_noted_beside_the_measured_speed(tmp_path, tiny_bert, sentiment_csv, monkeypatch):
    app = create_app(AppSettings(tmp_path / "ws", poll_s=0.1))
    client = TestClient(app, base_url=LOOPBACK)  # no lifespan: the runner does not reap the fake running job
    job = app.state.store.create(tc_config(tiny_bert, sentiment_csv), "busy")
    app.state.store.update(job.id, status="running", pid=os.getpid())
    document = json.dumps({"ok": True, "notes": ["from the child"], "speed": {"step_s": 0.1}})
    monkeypatch.setattr(routes, "_run_child", lambda *args: subprocess.CompletedProcess([], 0, document + "\n", ""))
    report = client.post("/api/config/estimate", json={"config": tc_config(tiny_bert, sentiment_csv)}).json()
    assert report["notes"][0] == "from the child" and "1 training run(s)" in report["notes"][1]
    quick = client.post("/api/config/estimate", json={"config": tc_config(tiny_bert, sentiment_csv), "measure": False})
    assert quick.json()["notes"] == ["from the child"]


def test_the_page_has_the_estimate_button_and_panel(client):
    page = client.get("/").text
    assert 'id="estimate-btn"' in page and 'id="estimate-result"' in page
    script = client.get("/static/app.js").text
    assert "/api/config/estimate" in script
