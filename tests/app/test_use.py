"""The web app's evaluate, export, publish and serve-snippet routes on a run trained through the API.

Each action is a real child process (``trainforge evaluate|export|push``), as in production. Publishing goes to a
FAKE Hub (tests/fake_hub.py: a local server speaking the endpoints huggingface_hub uses), with the token in the
server's environment only: never in a request, a response, the workspace or the logs.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from conftest import make_sentiment_frame

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from fake_hub import PUBLIC_REGISTRY, FakeHub  # noqa: E402
from trainforge.app.actions import child_environment  # noqa: E402
from trainforge.app.server import AppSettings, create_app  # noqa: E402

TOKEN = "hf_ServerSideTokenForTheAppTest42"


def wait_for(client: TestClient, path: str, timeout: float = 240) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        view = client.get(path).json()
        if view["status"] not in ("queued", "running"):
            return view
        assert time.monotonic() < deadline, f"still {view['status']}: {view}"
        time.sleep(0.3)


@pytest.fixture(scope="module")
def trained(tiny_bert, tmp_path_factory):
    """A text-classification run trained through the API (4 epochs on 64 rows) and a labelled file to evaluate."""
    root = tmp_path_factory.mktemp("app-use")
    make_sentiment_frame(64).to_csv(root / "reviews.csv", index=False)
    make_sentiment_frame(30, seed=5).to_csv(root / "heldout.csv", index=False)
    config = {
        "task": "text_classification",
        "model": {"name": tiny_bert},
        "data": {"source": str(root / "reviews.csv"), "columns": {"text": "review", "label": "sentiment"}},
        "training": {"num_train_epochs": 4, "learning_rate": 5e-3, "per_device_train_batch_size": 16},
        "params": {"max_length": 16},
        "output": {"report_to": ["none"], "save_checkpoints": False},
    }
    with TestClient(create_app(AppSettings(root / "ws", poll_s=0.1)), base_url="http://127.0.0.1") as client:
        created = client.post("/api/runs", json={"config": config, "name": "use"})
        assert created.status_code == 201, created.text
        run_id = created.json()["id"]
        assert wait_for(client, f"/api/runs/{run_id}")["status"] == "succeeded"
        yield client, run_id, root


def test_what_a_finished_run_offers(trained, monkeypatch):
    client, run_id, root = trained
    monkeypatch.delenv("HF_TOKEN", raising=False)
    use = client.get(f"/api/runs/{run_id}/use").json()
    evaluate = use["evaluate"]
    assert evaluate["available"] and evaluate["kind"] == "single_label_classification"
    assert {c["name"]: c["column"] for c in evaluate["columns"]} == {"text": "review", "label": "sentiment"}
    formats = {f["format"]: f for f in use["export"]["formats"]}
    assert formats["onnx"]["available"] and formats["onnx"]["options"] == ["int8"]
    assert not formats["merged"]["available"] and "already a merged, plain model" in formats["merged"]["reason"]
    assert not formats["gguf"]["available"] and "not a causal LM" in formats["gguf"]["reason"]
    serve = use["serve"]
    run_dir = (root / "ws" / "runs" / run_id).resolve()
    assert serve["command"] == f"trainforge serve {run_dir}" and serve["model"] == run_id
    assert serve["endpoints"] == ["/v1/predict"] and "http://127.0.0.1:8000/v1/predict" in serve["curl"]
    first = make_sentiment_frame(64)["review"][0]
    payload = json.loads(serve["curl"].split("-d ", 1)[1].strip("'"))
    assert payload == {"model": run_id, "rows": [{"review": first}]}
    compile(serve["python"], "snippet", "exec")
    assert json.dumps(payload["rows"][0]) in serve["python"].replace("'", '"')


def test_publish_without_a_server_token_says_so_and_never_takes_one(trained, monkeypatch):
    client, run_id, _ = trained
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_TOKEN_PATH", "/nonexistent/token")
    offer = client.get(f"/api/runs/{run_id}/use").json()["publish"]
    assert not offer["available"] and "no Hub token: restart it with HF_TOKEN set" in offer["reason"]
    refused = client.post(f"/api/runs/{run_id}/publish", json={"repo_id": "me/model"})
    assert refused.status_code == 409 and "HF_TOKEN" in refused.json()["detail"]
    sent = client.post(f"/api/runs/{run_id}/publish", json={"repo_id": "me/model", "token": "hf_typedIntoTheForm1"})
    assert sent.status_code == 422 and "hf_typedIntoTheForm1" not in sent.text
    assert sent.json()["detail"]["errors"][0]["key"] == "token"


def test_evaluate_an_uploaded_file_shows_the_report(trained):
    client, run_id, root = trained
    with (root / "heldout.csv").open("rb") as handle:
        uploaded = client.post("/api/uploads", files=[("files", ("heldout.csv", handle, "text/csv"))]).json()[0]
    assert uploaded["path"] in [u["path"] for u in client.get("/api/uploads").json()]
    started = client.post(f"/api/runs/{run_id}/evaluate", json={"source": uploaded["path"]})
    assert started.status_code == 202, started.text
    done = wait_for(client, f"/api/runs/{run_id}/actions/{started.json()['id']}")
    assert done["status"] == "succeeded", done
    document = done["result"]["document"]
    assert document["rows"] == 30 and 0 <= document["metrics"]["accuracy"] <= 1
    matrix = document["confusion matrix"]
    assert sum(map(sum, matrix["matrix"])) == 30 and "## Confusion matrix" in done["result"]["markdown"]
    listed = client.get(f"/api/runs/{run_id}/use").json()["evaluations"]
    assert listed[0]["name"] == "heldout" and listed[0]["document"]["rows"] == 30
    missing = client.post(f"/api/runs/{run_id}/evaluate", json={"source": str(root / "nope.csv")})
    assert missing.status_code == 422
    assert client.post(f"/api/runs/{run_id}/evaluate", json={"source": "/proc/self/environ"}).status_code == 422


def test_export_onnx_reports_its_check_and_refuses_what_the_run_lacks(trained):
    client, run_id, root = trained
    started = client.post(f"/api/runs/{run_id}/export", json={"format": "onnx"})
    assert started.status_code == 202, started.text
    busy = client.post(f"/api/runs/{run_id}/evaluate", json={"source": str(root / "heldout.csv")})
    assert busy.status_code == 409 and "export is still running" in busy.json()["detail"]
    done = wait_for(client, f"/api/runs/{run_id}/actions/{started.json()['id']}")
    assert done["status"] == "succeeded", done
    result = done["result"]
    assert Path(result["path"], "model.onnx").is_file()
    assert result["verification"]["max_abs_diff"] <= 1e-4 and result["verification"]["rows"] > 0
    merged = client.post(f"/api/runs/{run_id}/export", json={"format": "merged"})
    assert merged.status_code == 409 and "no LoRA adapter" in merged.json()["detail"]
    assert client.post(f"/api/runs/{run_id}/export", json={"format": "gguf"}).status_code == 422


def test_publish_uses_the_server_token_and_never_shows_it(trained, monkeypatch, tmp_path):
    client, run_id, root = trained
    from huggingface_hub import constants

    with FakeHub(TOKEN) as hub:
        # The server's environment: the token, and the fake Hub as endpoint for the child `trainforge push`.
        monkeypatch.setenv("HF_TOKEN", TOKEN)
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        offer = client.get(f"/api/runs/{run_id}/use").json()["publish"]
        assert offer["available"] and offer["private"] is True
        bad = client.post(f"/api/runs/{run_id}/publish", json={"repo_id": "me/x", "revision": "a..b"})
        assert bad.status_code == 422 and bad.json()["detail"]["errors"][0]["key"] == "revision"
        body = {"repo_id": "tester/from-app", "revision": "app", "license": "mit"}
        started = client.post(f"/api/runs/{run_id}/publish", json=body)
        assert started.status_code == 202, started.text
        done = wait_for(client, f"/api/runs/{run_id}/actions/{started.json()['id']}")
        assert done["status"] == "succeeded", done
    result = done["result"]
    assert result["repo_id"] == "tester/from-app" and result["private"] and result["revision"] == "app"
    assert "model.safetensors" in hub.files("tester/from-app", "app") and hub.repos["tester/from-app"].private
    assert all(r.headers.get("authorization") == f"Bearer {TOKEN}" for r in hub.requests if r.path != PUBLIC_REGISTRY)
    assert TOKEN not in json.dumps(done) and TOKEN not in client.get(f"/api/runs/{run_id}/use").text
    for path in (root / "ws").rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path


def test_children_get_no_secrets_but_push_keeps_the_hub_token(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-not-for-children")
    assert "HF_TOKEN" not in child_environment() and "OPENAI_API_KEY" not in child_environment()
    kept = child_environment(keep_hub_token=True)
    assert kept["HF_TOKEN"] == TOKEN and "OPENAI_API_KEY" not in kept
