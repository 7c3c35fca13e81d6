"""``trainforge serve``: the official openai client against a real server, /v1/predict, micro-batching, access control.

The text-generation run is a tiny Llama LoRA adapter (greedy decoding, so answers are comparable across endpoints);
the classifier is a tiny BERT. Servers run in a thread (uvicorn) on a free loopback port.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from _runs import chat_run, running_server, text_run  # noqa: F401
from fastapi.testclient import TestClient

import trainforge
from conftest import make_sentiment_frame
from trainforge.errors import DataError
from trainforge.serve import ServeSettings, create_app
from trainforge.serve.batching import MicroBatcher

QUESTION = [{"role": "user", "content": "what colour is the lime?"}]


@pytest.fixture(scope="module")
def runs_folder(tmp_path_factory, text_run, chat_run) -> Path:  # noqa: F811
    """A folder of two runs, named by their folder names: ``sentiment`` and ``chat``."""
    folder = tmp_path_factory.mktemp("served")
    (folder / "sentiment").symlink_to(text_run)
    (folder / "chat").symlink_to(chat_run)
    (folder / "not-a-run").mkdir()
    return folder


@pytest.fixture(scope="module")
def server(runs_folder):
    """The folder served for real, with the app object (to reach its batchers)."""
    app = create_app(ServeSettings(runs_folder))
    with running_server(app) as url:
        yield url, app


def test_openai_client_chat_stream_and_completions(server, chat_run):  # noqa: F811
    from openai import OpenAI

    url, _ = server
    client = OpenAI(base_url=f"{url}/v1", api_key="not-needed-on-loopback", max_retries=0)
    assert {m.id for m in client.models.list()} == {"sentiment", "chat"}

    reply = client.chat.completions.create(model="chat", messages=QUESTION, max_tokens=12, temperature=0)
    answer = reply.choices[0].message.content
    assert isinstance(answer, str) and reply.choices[0].finish_reason in ("stop", "length")
    assert reply.usage.prompt_tokens > 5 and 0 < reply.usage.completion_tokens <= 12
    # The same generation as `trainforge chat` (the run's chat template, greedy): one generation path.
    expected = trainforge.load_predictor(chat_run).chat(QUESTION, max_new_tokens=12, temperature=0.0)
    assert answer.strip() == expected

    chunks = list(
        client.chat.completions.create(
            model="chat",
            messages=QUESTION,
            max_tokens=12,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == answer and len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 1
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == reply.choices[0].finish_reason
    assert chunks[-1].usage.completion_tokens == reply.usage.completion_tokens

    # Raw completions: no chat template; max_tokens bounds the tokens; a stop sequence cuts before itself.
    whole = client.completions.create(model="chat", prompt="the lime is", max_tokens=10, temperature=0)
    full = whole.choices[0].text
    assert whole.usage.completion_tokens == 10 and whole.choices[0].finish_reason == "length"
    stop = full.strip()[len(full.strip()) // 2 :][:3]
    cut = client.completions.create(model="chat", prompt="the lime is", max_tokens=10, temperature=0, stop=[stop])
    assert cut.choices[0].text == full[: full.index(stop)] and cut.choices[0].finish_reason == "stop"
    streamed = client.completions.create(model="chat", prompt="the lime is", max_tokens=10, temperature=0, stream=True)
    assert "".join(c.choices[0].text for c in streamed) == full
    sampled = client.completions.create(model="chat", prompt="the", max_tokens=4, temperature=1.5, top_p=0.9)
    assert sampled.usage.completion_tokens <= 4


def test_a_client_that_disconnects_stops_its_generation(server, monkeypatch):
    from trainforge.tasks.llm import _inference

    url, _ = server
    streams = []
    original = _inference.GenerationStream.__init__

    def recorded(self, *args, **kwargs):
        original(self, *args, **kwargs)
        streams.append(self)

    monkeypatch.setattr(_inference.GenerationStream, "__init__", recorded)
    body = {"model": "chat", "messages": QUESTION, "max_tokens": 200, "temperature": 0}
    whole = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=120).json()
    assert whole["choices"][0]["finish_reason"] == "length"  # undisturbed, it generates all 200 tokens
    with httpx.stream("POST", f"{url}/v1/chat/completions", json={**body, "stream": True}, timeout=120) as response:
        next(line for line in response.iter_lines() if '"content": "' in line and '"content": ""' not in line)
    deadline = time.monotonic() + 30
    while streams[-1]._output is None and time.monotonic() < deadline:
        time.sleep(0.05)
    generated = streams[-1]._output.shape[1] - streams[-1].prompt_tokens
    assert generated < 200, generated


def test_openai_client_errors_are_named(server):
    import openai

    url, _ = server
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0)
    with pytest.raises(openai.NotFoundError, match="model 'gpt-4o' is not served here; served: chat, sentiment"):
        client.chat.completions.create(model="gpt-4o", messages=QUESTION)
    with pytest.raises(openai.BadRequestError, match="text_classification run, which does not generate text"):
        client.chat.completions.create(model="sentiment", messages=QUESTION)
    with pytest.raises(openai.BadRequestError, match="presence_penalty=0.5 is not supported"):
        client.chat.completions.create(model="chat", messages=QUESTION, presence_penalty=0.5)
    with pytest.raises(openai.BadRequestError, match="n: Input should be less than or equal to 1"):
        client.chat.completions.create(model="chat", messages=QUESTION, n=2)
    with pytest.raises(openai.BadRequestError, match="does not embed texts"):
        client.embeddings.create(model="sentiment", input="good")


def test_predict_returns_the_rows_of_trainforge_predict(server, text_run):  # noqa: F811
    url, _ = server
    frame = make_sentiment_frame(5, seed=3)[["review"]]
    answer = httpx.post(f"{url}/v1/predict", json={"model": "sentiment", "rows": frame.to_dict("records")})
    assert answer.status_code == 200, answer.text
    got = pd.DataFrame(answer.json()["predictions"])
    pd.testing.assert_frame_equal(got, trainforge.predict(text_run, frame), check_dtype=False, atol=1e-6)
    refused = httpx.post(f"{url}/v1/predict", json={"model": "sentiment", "inputs": {"text": "good"}})
    assert refused.status_code == 400 and "no column 'review'" in refused.json()["error"]["message"]


def test_concurrent_predict_50_requests_8_at_a_time(server):
    """Bounded load on loopback: every request answered correctly; the p95 latency is printed."""
    url, app = server
    frames = [make_sentiment_frame(1 + i % 3, seed=i)[["review"]] for i in range(50)]

    client = httpx.Client(timeout=120, limits=httpx.Limits(max_connections=8))  # one pool: no TLS setup per call

    def call(frame: pd.DataFrame) -> tuple[float, httpx.Response]:
        start = time.perf_counter()
        response = client.post(f"{url}/v1/predict", json={"model": "sentiment", "rows": frame.to_dict("records")})
        return time.perf_counter() - start, response

    client.post(f"{url}/v1/predict", json={"model": "sentiment", "inputs": {"review": "good"}})  # loads the model
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(call, frames))
    client.close()
    latencies = sorted(seconds for seconds, _ in results)
    for (_, response), frame in zip(results, frames, strict=True):
        assert response.status_code == 200, response.text
        assert [row["review"] for row in response.json()["predictions"]] == frame["review"].tolist()
    p95 = latencies[int(0.95 * len(latencies)) - 1]
    runs = app.state.runs
    batcher = runs.batcher(runs.predictor(runs.get("sentiment")))
    print(
        f"\nserve /v1/predict: 50 requests, 8 concurrent: p50 {latencies[24] * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms, "
        f"{batcher.requests} requests in {batcher.calls} model calls"
    )
    assert batcher.calls <= batcher.requests


def test_micro_batcher_gathers_requests_and_isolates_bad_rows():
    class Spy:
        def __init__(self):
            self.calls = []

        def predict(self, frame):
            self.calls.append(len(frame))
            if (frame["x"] < 0).any():
                raise DataError("negative x")
            return frame.assign(y=frame["x"] * 2)

    spy, batcher = Spy(), MicroBatcher(window_s=0.2)
    frames = [pd.DataFrame({"x": [i, i + 100]}) for i in range(7)] + [pd.DataFrame({"x": [-1]})]
    results: list = [None] * len(frames)
    start = threading.Barrier(len(frames))

    def work(i: int) -> None:
        start.wait()
        try:
            results[i] = batcher.predict(spy, frames[i])
        except DataError as exc:
            results[i] = exc

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(frames))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert spy.calls[0] == 15  # every request in one call (8 requests, 15 rows) ...
    assert sorted(spy.calls[1:]) == [1] + [2] * 7  # ... refused for one: then each alone, naming only its own
    for frame, result in zip(frames[:7], results[:7], strict=True):
        assert result["y"].tolist() == (frame["x"] * 2).tolist()
    assert isinstance(results[7], DataError)
    # Requests with other columns are never predicted together (a missing column must be refused, not imputed).
    spy.calls.clear()
    batcher.predict(spy, pd.DataFrame({"x": [1]}))
    assert spy.calls == [1]


def test_embeddings_for_a_predictor_that_embeds(runs_folder, text_run):  # noqa: F811
    """An EmbeddingPredictor (as a sentence-transformers run's) gets /v1/embeddings, float or base64."""
    from openai import OpenAI

    class Embedder:
        def __init__(self, inner):
            self.inner, self.tokenizer = inner, inner.tokenizer

        def predict(self, frame):
            return self.inner.predict(frame)

        def embed(self, texts):
            return [[float(len(t)), 1.0, -0.5] for t in texts]

    app = create_app(ServeSettings(runs_folder), load=lambda run_dir: Embedder(trainforge.load_predictor(run_dir)))
    with running_server(app) as url:
        client = OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0)
        answer = client.embeddings.create(model="sentiment", input=["good", "very bad"])  # base64 by default
        assert [d.embedding for d in answer.data] == [[4.0, 1.0, -0.5], [8.0, 1.0, -0.5]]
        assert answer.usage.prompt_tokens > 0
        plain = httpx.post(f"{url}/v1/embeddings", json={"model": "sentiment", "input": "abc"}).json()
        assert plain["data"][0]["embedding"] == [3.0, 1.0, -0.5]
        packed = httpx.post(
            f"{url}/v1/embeddings", json={"model": "sentiment", "input": "abc", "encoding_format": "base64"}
        ).json()
        assert np.frombuffer(base64.b64decode(packed["data"][0]["embedding"]), "<f4").tolist() == [3.0, 1.0, -0.5]


def test_off_loopback_requires_the_token(runs_folder):
    """The app's rules: a token is generated off loopback and every request must carry it."""
    from trainforge.app.server import resolve_token

    token, generated = resolve_token("0.0.0.0", environ={})
    assert generated and token
    client = TestClient(
        create_app(ServeSettings(runs_folder, host="0.0.0.0", token=token)), base_url="http://10.1.2.3"
    )
    assert client.get("/v1/models").status_code == 401
    assert client.get("/v1/models", headers={"Authorization": "Bearer wrong-token-wrong-token"}).status_code == 401
    denied = client.post("/v1/predict", json={"model": "sentiment", "inputs": {"review": "good"}})
    assert denied.status_code == 401
    listed = client.get("/v1/models", headers={"Authorization": f"Bearer {token}"})
    assert listed.status_code == 200 and len(listed.json()["data"]) == 2
    # On loopback without a token, only loopback Host headers are answered (no DNS rebinding).
    local = create_app(ServeSettings(runs_folder))
    assert TestClient(local, base_url="http://127.0.0.1").get("/v1/models").status_code == 200
    assert TestClient(local, base_url="http://evil.example").get("/v1/models").status_code == 403


def test_cli_serve_prints_the_generated_token_once_and_enforces_it(runs_folder):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k != "TRAINFORGE_APP_TOKEN"}
    process = subprocess.Popen(
        [sys.executable, "-m", "trainforge", "serve", str(runs_folder), "--host", "0.0.0.0", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        lines = [process.stdout.readline() for _ in range(3)]
        assert lines[0].startswith("trainforge serve: 2 model(s): chat, sentiment"), lines
        token = lines[1].split("Bearer ")[1].split("'")[0]
        assert "access token (generated)" in lines[1] and len(token) >= 16
        url = f"http://127.0.0.1:{port}/v1/models"
        for _ in range(100):
            try:
                refused = httpx.get(url)
                break
            except httpx.ConnectError:
                time.sleep(0.1)
        assert refused.status_code == 401
        assert httpx.get(url, headers={"Authorization": f"Bearer {token}"}).status_code == 200
    finally:
        process.terminate()
        process.wait(10)


def test_cli_serve_refuses_a_folder_without_runs(tmp_path, capsys):
    from trainforge.cli.main import main

    assert main(["serve", str(tmp_path)]) == 2
    assert "holds no finished run" in capsys.readouterr().err
