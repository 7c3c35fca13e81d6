"""A FAKE Hugging Face Hub for tests: a local HTTP server speaking the few endpoints ``trainforge push`` uses.

The real Hub cannot be reached here, so the upload code is tested against this stand-in. It implements exactly
the requests ``huggingface_hub`` (2.x, read from its source: ``hf_api.py`` and ``_commit_api.py``) sends for
``create_repo``, ``repo_info``, ``create_branch`` and ``create_commit``:

- ``POST /api/repos/create``: ``{name, organization, visibility}`` -> ``{url}``; 409 when it exists.
- ``GET /api/models/{repo}``: ``{id, private, sha}``; 404 (``X-Error-Code: RepoNotFound``) when missing.
- ``POST /api/models/{repo}/branch/{branch}``: a branch from ``main``; 409 when it exists.
- ``POST /api/validate-yaml``: the card's front matter must parse as a YAML mapping (400 otherwise).
- ``POST /api/models/{repo}/preupload/{revision}``: every file is answered ``regular`` (so content travels
  base64 in the commit; the real Hub would ask for LFS/Xet for weights, which is its choice, not the client's).
- ``POST /api/models/{repo}/commit/{revision}``: the ndjson commit (header line, then one ``file`` line each).
- ``GET /api/whoami-v2``: the token's user (a repo id without a namespace goes there).
- ``GET /api/agent-harnesses``: huggingface_hub 2.x fetches this public registry (best-effort, for its user
  agent) without a token; answered empty.

Every other request must carry ``Authorization: Bearer <token>`` (401 otherwise); all requests are recorded with
their headers, so tests can check where the token travelled. Not thread-safe beyond one client at a time.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

import yaml

PUBLIC_REGISTRY = "/api/agent-harnesses"


@dataclass
class Repo:
    private: bool
    branches: dict[str, dict[str, bytes]] = field(default_factory=lambda: {"main": {}})
    commits: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class FakeHub:
    """The fake Hub's state (repos, requests) and its server; use as a context manager: ``with FakeHub(t) as hub``."""

    def __init__(self, token: str, user: str = "tester"):
        self.token, self.user = token, user
        self.repos: dict[str, Repo] = {}
        self.requests: list[Request] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> FakeHub:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def files(self, repo_id: str, branch: str = "main") -> dict[str, bytes]:
        """The files of ``repo_id`` on ``branch``, by path."""
        return self.repos[repo_id].branches[branch]


def _sha(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def _handler(hub: FakeHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # quiet: pytest shows failures, not access logs
            pass

        def _reply(self, status: int, body: Any, error_code: str | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if error_code:
                self.send_header("X-Error-Code", error_code)
            self.end_headers()
            self.wfile.write(data)

        def _handle(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            raw_path = urlsplit(self.path).path
            hub.requests.append(Request(method, raw_path, {k.lower(): v for k, v in self.headers.items()}, body))
            if method == "GET" and raw_path == PUBLIC_REGISTRY:
                return self._reply(200, {"standardEnvVars": [], "harnesses": {}})
            if self.headers.get("Authorization") != f"Bearer {hub.token}":
                return self._reply(401, {"error": "Invalid credentials in Authorization header"})
            parts = [unquote(p) for p in raw_path.strip("/").split("/")]
            try:
                self._route(method, parts, body)
            except KeyError as exc:
                self._reply(404, {"error": f"not found: {exc}"}, "RepoNotFound")

        def _route(self, method: str, parts: list[str], body: bytes) -> None:
            if method == "GET" and parts == ["api", "whoami-v2"]:
                return self._reply(200, {"type": "user", "name": hub.user, "auth": {"accessToken": {"role": "write"}}})
            if method == "POST" and parts == ["api", "repos", "create"]:
                payload = json.loads(body)
                repo_id = f"{payload.get('organization') or hub.user}/{payload['name']}"
                if repo_id in hub.repos:
                    return self._reply(409, {"error": "You already created this model repo", "url": repo_id})
                hub.repos[repo_id] = Repo(private=payload.get("visibility", "public") == "private")
                return self._reply(200, {"url": f"{hub.url}/{repo_id}", "name": repo_id})
            if method == "POST" and parts == ["api", "validate-yaml"]:
                content = json.loads(body)["content"]
                front = content.split("---\n")[1] if content.startswith("---\n") else ""
                if not isinstance(yaml.safe_load(front), dict):
                    return self._reply(400, {"errors": [{"message": "front matter is not a mapping"}]})
                return self._reply(200, {"warnings": []})
            if len(parts) >= 4 and parts[:2] == ["api", "models"]:
                repo = hub.repos[f"{parts[2]}/{parts[3]}"]
                rest = parts[4:]
                if method == "GET" and not rest:
                    head = _sha(json.dumps(sorted(repo.branches["main"])).encode())
                    return self._reply(200, {"id": f"{parts[2]}/{parts[3]}", "private": repo.private, "sha": head})
                if method == "POST" and rest and rest[0] == "branch":
                    branch = "/".join(rest[1:])
                    if branch in repo.branches:
                        return self._reply(409, {"error": "Reference already exists"})
                    repo.branches[branch] = dict(repo.branches["main"])
                    return self._reply(200, {})
                if method == "POST" and rest and rest[0] in ("preupload", "commit"):
                    branch = "/".join(rest[1:])
                    if branch not in repo.branches:
                        return self._reply(404, {"error": f"Invalid rev id: {branch}"}, "RevisionNotFound")
                    if rest[0] == "preupload":
                        files = json.loads(body)["files"]
                        modes = [
                            {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False, "oid": None}
                            for f in files
                        ]
                        return self._reply(200, {"files": modes})
                    return self._commit(f"{parts[2]}/{parts[3]}", repo, branch, body)
            return self._reply(404, {"error": f"the fake Hub does not serve {method} /{'/'.join(parts)}"})

        def _commit(self, repo_id: str, repo: Repo, branch: str, body: bytes) -> None:
            lines = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
            header = lines[0]["value"]
            for line in lines[1:]:
                if line["key"] != "file" or line["value"].get("encoding") != "base64":
                    return self._reply(400, {"error": f"the fake Hub takes regular files only, got {line['key']}"})
                repo.branches[branch][line["value"]["path"]] = base64.b64decode(line["value"]["content"])
            oid = _sha(body)
            repo.commits.append({"branch": branch, "summary": header["summary"], "oid": oid})
            return self._reply(200, {"commitUrl": f"{hub.url}/{repo_id}/commit/{oid}", "commitOid": oid})

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            self._handle("GET")

        def do_POST(self) -> None:  # noqa: N802
            self._handle("POST")

    return Handler
