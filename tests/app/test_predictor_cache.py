"""The app's predictor cache: a run's model loads once per server, concurrent first requests all succeed.

- ``PredictorCache``: one load per key however many threads ask, least recently used out, reload when the run's
  files change, a failed load is not cached.
- Playground: three concurrent first predictions on a fresh server (a new Python process, where transformers is
  not imported yet) all return 200; in-process they load the model once; the chat answers a second message without
  loading the model again; a ``model.trust_remote_code`` run still predicts in a child process.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
import yaml

from conftest import count_loads, make_sentiment_frame

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from trainforge.app import routes  # noqa: E402
from trainforge.app.jobs import JobStore  # noqa: E402
from trainforge.app.server import AppSettings, create_app  # noqa: E402
from trainforge.serve.cache import PredictorCache  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tasks"))
from _llm_fixtures import conversations, llm_config, tiny_llama, write_jsonl  # noqa: E402, F401

LOOPBACK = "http://127.0.0.1"
ROWS = [{"inputs": {"review": "a good fun film"}}, {"rows": [{"review": "dull"}, {"review": "lovely"}]}]


def make_client(workspace: Path, **settings) -> TestClient:
    app = create_app(AppSettings(workspace, poll_s=0.1, **settings))
    return TestClient(app, base_url=LOOPBACK, raise_server_exceptions=False)


def finished_job(store: JobStore, config: dict):
    """A succeeded job whose run was trained in this process (the run directory a job's process would write)."""
    import trainforge

    job = store.create(config)
    store.update(job.id, status="running", pid=None)
    trainforge.train(job.config)
    store.update(job.id, status="succeeded", finished=time.time(), returncode=0)
    return store.get(job.id)


@pytest.fixture(scope="module")
def text_job(tiny_bert, tmp_path_factory):
    """A workspace holding one succeeded text_classification run."""
    root = tmp_path_factory.mktemp("predictor-cache")
    make_sentiment_frame(64).to_csv(root / "reviews.csv", index=False)
    config = {
        "task": "text_classification",
        "model": {"name": tiny_bert},
        "data": {"source": str(root / "reviews.csv"), "columns": {"text": "review", "label": "sentiment"}},
        "training": {"num_train_epochs": 1, "learning_rate": 5e-3, "per_device_train_batch_size": 16},
        "params": {"max_length": 16},
        "output": {"report_to": ["none"], "save_checkpoints": False},
    }
    store = JobStore(root / "ws")
    return root / "ws", finished_job(store, config)


def concurrently(count: int, call) -> list:
    """``call(i)`` for i in range(count), each in its own thread, released together."""
    results: list = [None] * count
    start = threading.Barrier(count)

    def work(i: int) -> None:
        start.wait()
        try:
            results[i] = call(i)
        except Exception as exc:  # noqa: BLE001 - returned for the assertion to show
            results[i] = exc

    threads = [threading.Thread(target=work, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


# ------------------------------------------------------------------------------------------------ the cache


def test_cache_loads_each_key_once_under_concurrency(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "model.bin").write_bytes(b"1")
    loads = []

    def slow_load():
        loads.append(1)
        time.sleep(0.2)
        return object()

    cache = PredictorCache(size=2)
    got = concurrently(5, lambda i: cache.get(folder, slow_load))
    assert len(loads) == 1 and all(g is got[0] for g in got)
    assert cache.get(folder, slow_load) is got[0] and len(loads) == 1


def test_cache_evicts_the_least_recently_used_and_follows_changed_files(tmp_path):
    runs = []
    for name in "abc":
        (tmp_path / name).mkdir()
        (tmp_path / name / "model.bin").write_bytes(b"1")
        runs.append(tmp_path / name)
    a, b, c = runs
    cache = PredictorCache(size=2)
    first_a = cache.get(a, object)
    cache.get(b, object)
    assert cache.get(a, object) is first_a  # a is now the most recent
    cache.get(c, object)  # evicts b
    assert len(cache) == 2 and cache.get(a, object) is first_a
    assert cache.get(b, lambda: "reloaded") == "reloaded"
    (a / "model.bin").write_bytes(b"22")  # retrained in place: a new model
    assert cache.get(a, lambda: "new a") == "new a"
    assert len(cache) == 2


def test_a_failed_load_is_not_cached(tmp_path):
    cache = PredictorCache(size=2)

    def broken():
        raise OSError("unreadable")

    with pytest.raises(OSError):
        cache.get(tmp_path, broken)
    assert len(cache) == 0 and cache.get(tmp_path, lambda: "ok") == "ok"


# ------------------------------------------------------------------------------------------------ the playground

FRESH_SERVER = textwrap.dedent(
    """
    import json, sys, threading
    from pathlib import Path
    from fastapi.testclient import TestClient
    from trainforge.app.server import AppSettings, create_app

    workspace, run_id, rounds = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    fresh = "transformers" not in sys.modules and "torch" not in sys.modules
    app = create_app(AppSettings(workspace, poll_s=0.1))
    codes, texts = [], []
    with TestClient(app, base_url="http://127.0.0.1", raise_server_exceptions=False) as client:
        start = threading.Barrier(3)

        def first_prediction(i):
            start.wait()
            reply = client.post(f"/api/runs/{run_id}/predict", json={"inputs": {"review": "a good fun film"}})
            codes.append(reply.status_code)
            texts.append(reply.text)

        threads = [threading.Thread(target=first_prediction, args=(i,)) for i in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    print(json.dumps({"fresh": fresh, "codes": codes, "texts": texts}))
    """
)


def test_three_concurrent_first_predictions_on_a_fresh_server_all_succeed(text_job, tmp_path):
    """In a new process, three simultaneous first requests: each thread would import transformers for the first
    time (the lazy-import race that gave one of them a 500). Run twice in two fresh processes."""
    workspace, job = text_job
    script = tmp_path / "fresh_server.py"
    script.write_text(FRESH_SERVER, encoding="utf-8")
    for _ in range(2):
        done = subprocess.run(
            [sys.executable, str(script), str(workspace), job.id, "1"],
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "HF_HUB_OFFLINE": "1"},
        )
        assert done.returncode == 0, done.stderr[-3000:]
        result = json.loads(done.stdout.strip().splitlines()[-1])
        assert result["fresh"], "the server process imported transformers before the requests"
        assert result["codes"] == [200, 200, 200], "\n".join(result["texts"])
        assert len({json.dumps(json.loads(t), sort_keys=True) for t in result["texts"]}) == 1


def test_concurrent_first_predictions_load_the_model_once(text_job, monkeypatch):
    from transformers import AutoModelForSequenceClassification

    workspace, job = text_job
    loads = count_loads(monkeypatch, AutoModelForSequenceClassification)
    with make_client(workspace) as client:
        replies = concurrently(3, lambda i: client.post(f"/api/runs/{job.id}/predict", json=ROWS[0]))
        assert [r.status_code for r in replies] == [200, 200, 200], [r.text for r in replies]
        assert len(loads) == 1
        again = client.post(f"/api/runs/{job.id}/predict", json=ROWS[1])
        assert again.status_code == 200 and len(again.json()["predictions"]) == 2
        assert len(loads) == 1  # served from the cache
        assert client.post(f"/api/runs/{job.id}/predict", json={"rows": [{"text": "x"}]}).status_code == 400
    with make_client(workspace) as client:  # a new server loads its own
        assert client.post(f"/api/runs/{job.id}/predict", json=ROWS[0]).status_code == 200
    assert len(loads) == 2


def test_remote_code_runs_still_predict_in_a_child_process(text_job, tmp_path, monkeypatch):
    """A run with model.trust_remote_code never loads in the server: the child process predicts, nothing is cached."""
    workspace, job = text_job
    store = JobStore(tmp_path / "ws")
    remote = store.create(job.config)
    shutil.copytree(job.run_dir, remote.run_dir, dirs_exist_ok=True)
    resolved = remote.run_dir / "config.resolved.yaml"
    config = yaml.safe_load(resolved.read_text(encoding="utf-8"))
    config["model"]["trust_remote_code"] = True
    resolved.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    store.update(remote.id, status="succeeded")
    children = []
    run_child = routes._run_child
    monkeypatch.setattr(routes, "_run_child", lambda command: children.append(command) or run_child(command))
    with make_client(tmp_path / "ws") as client:
        refused = client.post(f"/api/runs/{remote.id}/predict", json=ROWS[0])
        assert refused.status_code == 409 and "--allow-remote-code" in refused.text
    with make_client(tmp_path / "ws", allow_remote_code=True) as client:
        reply = client.post(f"/api/runs/{remote.id}/predict", json=ROWS[0])
        assert reply.status_code == 200, reply.text
        assert reply.json()["predictions"][0]["prediction"] in ("positive", "negative")
        assert len(children) == 1 and children[0][2:4] == ["trainforge", "predict"]
        assert len(getattr(client.app.state, "predictors", ())) == 0


def test_chat_answers_a_second_message_without_reloading(tmp_path, tiny_llama, monkeypatch):  # noqa: F811
    pytest.importorskip("trl")
    from transformers import AutoModelForCausalLM

    workspace = tmp_path / "ws"
    data = write_jsonl(tmp_path / "chat.jsonl", [{"messages": c} for c in conversations(24)])
    config = llm_config("llm_sft", tiny_llama, data, tmp_path / "replaced", max_new_tokens=6)
    config["training"]["num_train_epochs"] = 1
    job = finished_job(JobStore(workspace), config)
    loads = count_loads(monkeypatch, AutoModelForCausalLM)
    with make_client(workspace) as client:
        turns = [{"role": "user", "content": "what colour is the lime?"}]
        first = client.post(f"/api/runs/{job.id}/chat", json={"messages": turns})
        assert first.status_code == 200, first.text
        assert len(loads) == 1
        turns += [{"role": "assistant", "content": first.json()["reply"]}, {"role": "user", "content": "the plum?"}]
        second = client.post(f"/api/runs/{job.id}/chat", json={"messages": turns})
        assert second.status_code == 200 and isinstance(second.json()["reply"], str)
        assert len(loads) == 1  # the second message reuses the loaded model
        predicted = client.post(f"/api/runs/{job.id}/predict", json={"inputs": {"prompt": "what colour is the kiwi?"}})
        assert predicted.status_code == 200 and isinstance(predicted.json()["predictions"][0]["generation"], str)
        assert len(loads) == 1
