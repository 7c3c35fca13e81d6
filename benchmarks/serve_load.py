"""Load on ``trainforge serve``'s /v1/predict: N requests, C at a time, over loopback; prints p50/p95 and batching.

    python benchmarks/serve_load.py RUN_DIR --text-column review [--requests 50] [--concurrency 8] [--window-ms 5]

The server runs in this process (uvicorn in a thread) on a free port; clients are httpx threads. Latency is from
request sent to response read, the first (model-loading) request excluded.
"""

from __future__ import annotations

import argparse
import socket
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

WORDS = "the film was good great fun dull awful boring lovely weak plot actors story".split()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--text-column", default="text")
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--window-ms", type=float, default=5.0)
    args = parser.parse_args()
    import uvicorn

    from trainforge.serve import ServeSettings, create_app

    app = create_app(ServeSettings(args.run_dir, batch_window_ms=args.window_ms))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
    while not server.started:
        time.sleep(0.02)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1/predict"
    name = app.state.runs.runs()[0].name
    bodies = [
        {"model": name, "rows": [{args.text_column: " ".join(WORDS[(i + j) % len(WORDS)] for j in range(8))}]}
        for i in range(args.requests)
    ]
    client = httpx.Client(timeout=300, limits=httpx.Limits(max_connections=args.concurrency))  # one pool, reused
    client.post(url, json=bodies[0])  # loads the model

    def call(body: dict) -> float:
        start = time.perf_counter()
        response = client.post(url, json=body)
        response.raise_for_status()
        return time.perf_counter() - start

    started = time.perf_counter()
    with ThreadPoolExecutor(args.concurrency) as pool:
        latencies = sorted(pool.map(call, bodies))
    wall = time.perf_counter() - started
    runs = app.state.runs
    batcher = runs.batcher(runs.predictor(runs.get(name)))
    p50, p95 = latencies[len(latencies) // 2], latencies[max(0, int(0.95 * len(latencies)) - 1)]
    print(
        f"{args.requests} requests, {args.concurrency} concurrent, window {args.window_ms:g} ms: "
        f"p50 {p50 * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms, {args.requests / wall:.1f} req/s, "
        f"{batcher.calls} model calls for {batcher.requests} requests"
    )
    server.should_exit = True


if __name__ == "__main__":
    sys.exit(main())
