"""The web app's security guarantees, each tested as a class of attack rather than one input.

- Uploaded model code never runs in the server (refused by default; in a child process with --allow-remote-code).
- The server's environment is never read on a client's behalf, echoed, or written into a run.
- YAML cannot expand without bound; previews and validation read a bounded sample of a file.
- Broken archives are 400s, orphaned jobs get a true reason, and two servers never start one job twice.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import pytest

from conftest import make_sentiment_frame

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from trainforge.app.jobs import JobRunner, JobStore  # noqa: E402
from trainforge.app.server import AppSettings, create_app  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tasks"))
from _llm_fixtures import conversations, llm_config, tiny_llama, write_jsonl  # noqa: E402, F401

SECRET = "hf_FAKEsecret_0123456789"


def make_client(workspace: Path, **settings) -> TestClient:
    return TestClient(create_app(AppSettings(workspace, poll_s=0.1, **settings)), base_url="http://127.0.0.1")


def tc_config(model_path: str, source: Path, **extra) -> dict:
    config = {
        "task": "text_classification",
        "model": {"name": model_path},
        "data": {"source": str(source), "columns": {"text": "review", "label": "sentiment"}, "eval_fraction": 0.25},
        "training": {"num_train_epochs": 1, "learning_rate": 5e-3, "per_device_train_batch_size": 16},
        "params": {"max_length": 16},
        "output": {"report_to": ["none"], "save_checkpoints": False},
    }
    for key, value in extra.items():
        config[key] = {**config.get(key, {}), **value}
    return config


# ------------------------------------------------------------------------------------------------ remote code


def evil_model_zip(tiny_llama: str, folder: Path, marker: Path) -> Path:  # noqa: F811
    """A model folder whose tokenizer names custom code that appends its pid to ``marker`` when imported."""
    model = folder / "evil"
    shutil.copytree(tiny_llama, model)
    (model / "tokenization_evil.py").write_text(
        "import os\n"
        f"open({str(marker)!r}, 'a').write(str(os.getpid()) + '\\n')\n"
        "from transformers import PreTrainedTokenizerFast\n"
        "class EvilTokenizerFast(PreTrainedTokenizerFast):\n    pass\n"
    )
    config_path = model / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    config["auto_map"] = {"AutoTokenizer": [None, "tokenization_evil.EvilTokenizerFast"]}
    config_path.write_text(json.dumps(config))
    return Path(shutil.make_archive(str(folder / "evil"), "zip", folder, "evil"))


def test_uploaded_model_code_never_runs_in_the_server(tmp_path, tiny_llama):  # noqa: F811
    marker = tmp_path / "marker.txt"
    archive = evil_model_zip(tiny_llama, tmp_path / "build", marker)
    data = write_jsonl(tmp_path / "chat.jsonl", [{"messages": c} for c in conversations(20)])

    def remote_config(model_path: str) -> dict:
        config = llm_config("llm_sft", model_path, data, tmp_path / "out")
        config["model"]["trust_remote_code"] = True
        return config

    with make_client(tmp_path / "ws") as client:  # default: remote code refused, before anything is read
        with archive.open("rb") as handle:
            saved = client.post("/api/uploads", files={"files": ("evil.zip", handle, "application/zip")}).json()[0]
        config = remote_config(saved["path"] + "/evil")
        for path in ("/api/config/validate", "/api/runs"):
            refused = client.post(path, json={"config": config})
            assert refused.status_code == 422, refused.text
            error = refused.json()["detail"]["errors"][0]
            assert error["key"] == "model.trust_remote_code" and "--allow-remote-code" in error["message"]
        assert client.get("/api/runs").json() == []
    assert not marker.exists()
    assert "tokenization_evil" not in " ".join(sys.modules)

    with make_client(tmp_path / "ws2", allow_remote_code=True) as client:  # opted in: runs in a child process only
        with archive.open("rb") as handle:
            saved = client.post("/api/uploads", files={"files": ("evil.zip", handle, "application/zip")}).json()[0]
        checked = client.post("/api/config/validate", json={"config": remote_config(saved["path"] + "/evil")})
        assert checked.status_code == 200, checked.text
        assert checked.json()["train_rows"] > 0
    pids = {int(line) for line in marker.read_text().split()}
    assert pids and os.getpid() not in pids
    assert "tokenization_evil" not in " ".join(sys.modules)


# ------------------------------------------------------------------------------------------------ environment


def test_server_environment_is_never_echoed_or_written(tmp_path, tiny_bert, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", SECRET)
    data = tmp_path / "reviews.csv"
    make_sentiment_frame(32).to_csv(data, index=False)
    with make_client(tmp_path / "ws") as client:
        echoed = client.post(
            "/api/config/validate",
            json={"config": tc_config(tiny_bert, data, data={"columns": {"text": "${HF_TOKEN}", "label": "x"}})},
        )
        assert echoed.status_code == 422 and SECRET not in echoed.text
        assert "${HF_TOKEN}" in echoed.text  # the text as typed, never its value
        for source in ("/proc/self/environ", "/proc/self/../self/environ"):
            preview = client.post("/api/preview", json={"source": source})
            assert preview.status_code == 422 and SECRET not in preview.text
        leaked_path = tc_config(tiny_bert, data, data={"source": "/proc/self/environ"})
        assert SECRET not in client.post("/api/config/validate", json={"config": leaked_path}).text

        config = tc_config(tiny_bert, data, model={"revision": "${HF_TOKEN}"}, hub={"token": "${HF_TOKEN}"})
        created = client.post("/api/runs", json={"config": config})
        assert created.status_code == 201, created.text
        run_id = created.json()["id"]
        assert SECRET not in created.text
        deadline = time.monotonic() + 240
        while (job := client.get(f"/api/runs/{run_id}").json())["status"] not in ("succeeded", "failed"):
            assert time.monotonic() < deadline, job
            time.sleep(0.3)
        assert job["status"] == "succeeded", job
        assert SECRET not in json.dumps(job)
        archive = zipfile.ZipFile(io.BytesIO(client.get(f"/api/runs/{run_id}/download").content))
        assert [n for n in archive.namelist() if SECRET.encode() in archive.read(n)] == []
        assert "${HF_TOKEN}" in archive.read(f"{run_id}/config.resolved.yaml").decode()  # kept as typed
    written = [p for p in (tmp_path / "ws").rglob("*") if p.is_file() and SECRET.encode() in p.read_bytes()]
    assert written == []


def test_literal_tokens_are_refused_and_env_references_dropped(tmp_path, tiny_bert):
    data = tmp_path / "reviews.csv"
    make_sentiment_frame(16).to_csv(data, index=False)
    with make_client(tmp_path / "ws") as client:
        literal = client.post("/api/config/validate", json={"config": tc_config(tiny_bert, data, hub={"token": "x"})})
        assert literal.status_code == 422 and literal.json()["detail"]["errors"][0]["key"] == "hub.token"
        reference = tc_config(tiny_bert, data, hub={"token": "${HF_TOKEN}", "push": False})
        assert client.post("/api/config/validate", json={"config": reference}).status_code == 200


# ------------------------------------------------------------------------------------------------ bounded input


def test_yaml_aliases_cannot_expand_and_duplicate_keys_are_named(tmp_path):
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n" for i in range(8)
    )
    with make_client(tmp_path / "ws") as client:
        started = time.monotonic()
        refused = client.post("/api/config/parse", json={"yaml": bomb})
        assert refused.status_code == 422 and "aliases" in refused.text and len(refused.content) < 2000
        assert time.monotonic() - started < 5
        twice = client.post("/api/config/parse", json={"yaml": "task: x\ntraining: {a: 1}\nmodel: m\ntraining: {}\n"})
        assert twice.status_code == 422 and "duplicate key 'training' at lines 2 and 4" in twice.text
        fine = client.post("/api/config/parse", json={"yaml": "base: &b {lr: 1}\ntraining: *b\n"})
        assert fine.json() == {"config": {"base": {"lr": 1}, "training": {"lr": 1}}}


def test_broken_archives_are_refused_with_400(tmp_path):
    good = io.BytesIO()
    with zipfile.ZipFile(good, "w", zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr("data/train.csv", "text,label\n" + "a b c,x\n" * 200)
    raw = bytearray(good.getvalue())
    lying = bytearray(raw)  # every header claims 10 bytes of uncompressed data
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = lying.find(signature)
        lying[at + offset : at + offset + 4] = (10).to_bytes(4, "little")
    corrupt = bytearray(raw)  # deflate data overwritten after the local header
    start = corrupt.find(b"PK\x03\x04") + 30 + len("data/train.csv")
    corrupt[start : start + 8] = b"\xff" * 8
    with make_client(tmp_path / "ws") as client:
        for name, body in (("lying.zip", lying), ("corrupt.zip", corrupt), ("truncated.zip", raw[: len(raw) // 2])):
            answer = client.post("/api/uploads", files={"files": (name, bytes(body), "application/zip")})
            assert 400 <= answer.status_code < 500, (name, answer.status_code, answer.text)
            assert name.split(".")[0] in answer.text or "ZIP" in answer.text
        assert not any((tmp_path / "ws" / "uploads").glob("*/*"))  # nothing half-extracted is left


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _peak_kib(pid: int) -> int:
    line = next(x for x in Path(f"/proc/{pid}/status").read_text().splitlines() if x.startswith("VmHWM"))
    return int(line.split()[1])


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the server's peak memory from /proc")
def test_a_200_mb_upload_previews_and_validates_with_bounded_server_memory(tmp_path, tiny_bert):
    import httpx

    big = tmp_path / "big.csv"
    rows = "".join(f"{r.review},{r.sentiment}\n" for r in make_sentiment_frame(400).itertuples())
    with big.open("w") as handle:
        handle.write("review,sentiment\n")
        while handle.tell() < 200 * 2**20:
            handle.write(rows)
    port = _free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    server = subprocess.Popen(
        [sys.executable, "-m", "trainforge", "app", "--port", str(port), "--workspace", str(tmp_path / "ws")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                httpx.get(f"{url}/api/tasks", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        with big.open("rb") as handle:
            saved = httpx.post(f"{url}/api/uploads", files={"files": ("big.csv", handle)}, timeout=120).json()[0]
        before = _peak_kib(server.pid)
        asked = {"source": saved["path"], "rows": 5, "task": "text_classification"}
        preview = httpx.post(f"{url}/api/preview", json=asked)
        assert preview.status_code == 200 and len(preview.json()["rows"]) == 5
        assert preview.json()["total_rows"] > 1_000_000
        preview_mib = _peak_kib(server.pid) / 1024
        # Validation imports torch and transformers (a fixed ~200 MiB); what must stay bounded is the data's share:
        # validating the 200 MB file may cost little more than validating a small one.
        small = tmp_path / "small.csv"
        make_sentiment_frame(400).to_csv(small, index=False)
        for source in (small, Path(saved["path"])):
            checked = httpx.post(
                f"{url}/api/config/validate", json={"config": tc_config(tiny_bert, source)}, timeout=120
            )
            assert checked.status_code == 200, checked.text
            if source == small:
                small_mib = _peak_kib(server.pid) / 1024
        assert any("first 50,000 rows" in note for note in checked.json()["notes"])
        big_mib = _peak_kib(server.pid) / 1024
        print(
            f"server peak for a 200 MB upload: {before / 1024:.0f} MiB after upload, {preview_mib:.0f} MiB after "
            f"preview; validate {small_mib:.0f} MiB (small file) -> {big_mib:.0f} MiB (200 MB file)"
        )
        assert preview_mib < 300
        assert big_mib - small_mib < 64
    finally:
        server.terminate()
        server.wait(timeout=30)


# ------------------------------------------------------------------------------------------------ job lifecycle


def test_orphaned_job_gets_the_documented_reason_not_log_lines(tmp_path):
    store = JobStore(tmp_path / "ws")
    job = store.create({"task": "text_classification"})
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()
    store.update(job.id, status="running", pid=finished.pid, started=time.time())
    job.log_path.write_text("step 3/12 loss 0.69\nstep 4/12 loss 0.61\n")
    job.run_dir.mkdir(parents=True)
    (job.run_dir / "events.jsonl").write_text(json.dumps({"event": "step", "time": 1.0, "step": 4}) + "\n")
    JobRunner(store).recover()
    error = store.get(job.id).error
    assert store.get(job.id).status == "failed"
    assert "ended while the server was not watching it" in error and "loss" not in error


def test_two_servers_on_one_workspace_start_a_job_once(tmp_path):
    launched: list[tuple[int, str]] = []

    class Counting(JobRunner):
        def _launch(self, job):
            launched.append((id(self), job.id))
            time.sleep(0.3)  # widen the window in which an unlocked second server would claim the job too
            super()._launch(job)

    workspace = tmp_path / "ws"
    job = JobStore(workspace).create({"task": "no_such_task"})  # its process exits at once with a config error
    runners = [Counting(JobStore(workspace)), Counting(JobStore(workspace))]
    threads = [threading.Thread(target=r.tick) for r in runners]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [j for _, j in launched] == [job.id]
    for runner in runners:
        for process in runner._processes.values():
            process.wait(timeout=60)
