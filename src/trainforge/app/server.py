"""The web app: FastAPI factory, access control and ``serve`` (what ``trainforge app`` runs).

Security model: bound to a loopback address the app needs no token, but only answers requests whose ``Host``
header names the loopback (so a web page cannot reach it through DNS rebinding) and refuses cross-origin
writes. Bound to any other address, every request must carry the access token (``Authorization: Bearer``,
or the cookie set by visiting ``/?token=...``); the token comes from ``TRAINFORGE_APP_TOKEN`` or is generated
and printed at start. Setting ``TRAINFORGE_APP_TOKEN`` enforces it on loopback too.

The server process never runs a model's own code and never reads its environment on a client's behalf: configs
get no ``${VAR}`` interpolation (the Hub token is read from ``HF_TOKEN`` by the training process when it pushes),
``model.trust_remote_code`` is refused unless the app was started with ``--allow-remote-code``, and then checks,
training and predictions of such a model run in child processes only.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import secrets
from collections.abc import Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from trainforge.app.actions import ActionRunner
from trainforge.app.files import UploadLimits
from trainforge.app.jobs import JobRunner, JobStore

STATIC = Path(__file__).parent / "static"
TOKEN_ENV = "TRAINFORGE_APP_TOKEN"
COOKIE = "trainforge_token"
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1", "[::1]")


@dataclass
class AppSettings:
    """Everything the app is configured with (``trainforge app`` flags)."""

    workspace: Path
    models_dir: Path | None = None
    max_concurrent: int = 1
    host: str = "127.0.0.1"
    token: str | None = None
    limits: UploadLimits = field(default_factory=UploadLimits)
    poll_s: float = 0.5
    # Configs may set model.trust_remote_code; that code then runs only in child processes (``--allow-remote-code``).
    allow_remote_code: bool = False


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or address) only accepts connections from this machine."""
    if host.strip("[]") in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def resolve_token(host: str, environ: Mapping[str, str] | None = None) -> tuple[str | None, bool]:
    """The access token to enforce, and whether it was generated here (so it must be printed).

    Raises:
        ValueError: ``TRAINFORGE_APP_TOKEN`` is set but too short to be a secret.
    """
    environ = os.environ if environ is None else environ
    token = environ.get(TOKEN_ENV)
    if token:
        if len(token) < 16:
            raise ValueError(f"{TOKEN_ENV} must be at least 16 characters long")
        return token, False
    if is_loopback(host):
        return None, False
    return secrets.token_urlsafe(24), True


def create_app(settings: AppSettings) -> FastAPI:
    """Build the app: job store and runner under ``settings.workspace``, REST API, static UI, access control."""
    from trainforge.app.routes import router
    from trainforge.app.use import router as use_router

    settings.workspace = settings.workspace.resolve()
    settings.workspace.mkdir(parents=True, exist_ok=True)
    store = JobStore(settings.workspace)
    runner = JobRunner(store, settings.max_concurrent, poll_s=settings.poll_s)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        runner.start()
        yield
        runner.stop()

    app = FastAPI(
        title="trainforge",
        summary="Train models from one validated config: tasks, schemas, uploads, runs, live events, playground.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.store = store
    app.state.runner = runner
    app.state.actions = ActionRunner(settings.workspace)
    app.include_router(router)
    app.include_router(use_router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    @app.middleware("http")
    async def access_control(request: Request, call_next):
        refusal = _refuse(request, settings) or _too_large(request, settings)
        if refusal is not None:
            return refusal
        if settings.token and request.url.path == "/" and request.query_params.get("token"):
            response = RedirectResponse("/", status_code=303)
            response.set_cookie(COOKIE, settings.token, httponly=True, samesite="strict")
            return response
        return await call_next(request)

    return app


def _refuse(request: Request, settings: AppSettings) -> JSONResponse | None:
    """The response refusing ``request``, or None when it may proceed."""
    host_header = request.headers.get("host", "")
    if settings.token is None:
        hostname = urlsplit(f"//{host_header}").hostname or ""
        if not is_loopback(hostname):
            return JSONResponse({"detail": f"host {host_header!r} refused: this server only answers on loopback"}, 403)
    else:
        offered = _offered_token(request)
        if offered is None or not hmac.compare_digest(offered.encode(), settings.token.encode()):
            return JSONResponse(
                {"detail": "access token required: send 'Authorization: Bearer TOKEN' or open /?token=TOKEN once"},
                401,
                headers={"WWW-Authenticate": "Bearer"},
            )
    origin = request.headers.get("origin")
    if request.method not in ("GET", "HEAD", "OPTIONS") and origin and urlsplit(origin).netloc != host_header:
        return JSONResponse({"detail": f"cross-origin request from {origin} refused"}, 403)
    return None


def _too_large(request: Request, settings: AppSettings) -> JSONResponse | None:
    """413 for a request body (other than an upload, which is streamed and bounded) beyond ``max_request_bytes``.

    JSON bodies are parsed whole, so an oversized one (a predict row with a huge image) is refused by its declared
    length before it is read; a body without a declared length is refused too.
    """
    if request.method in ("GET", "HEAD", "OPTIONS") or request.url.path == "/api/uploads":
        return None
    declared = request.headers.get("content-length")
    limit = settings.limits.max_request_bytes
    if declared is None and request.headers.get("transfer-encoding"):
        return JSONResponse({"detail": "send a Content-Length with the request body"}, 411)
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        return JSONResponse({"detail": f"request body larger than the limit of {limit} bytes"}, 413)
    return None


def _offered_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    if request.url.path == "/" and request.query_params.get("token"):
        return request.query_params["token"]
    return request.cookies.get(COOKIE)


def serve(settings: AppSettings, port: int) -> None:
    """Run the app with uvicorn until interrupted, printing where to open it (and the token, if generated)."""
    import uvicorn

    token, generated = resolve_token(settings.host)
    settings.token = token
    app = create_app(settings)
    shown_host = f"[{settings.host}]" if ":" in settings.host else settings.host
    url = f"http://{shown_host}:{port}/"
    print(f"trainforge app: workspace {settings.workspace}, {settings.max_concurrent} job(s) at a time", flush=True)
    if token:
        origin = "generated" if generated else f"from {TOKEN_ENV}"
        print(
            f"access token ({origin}) required on every request; open {url}?token={token if generated else '<token>'}",
            flush=True,
        )
    print(f"open {url}", flush=True)
    uvicorn.run(app, host=settings.host, port=port, log_level="warning")
