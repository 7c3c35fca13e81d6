"""The REST API under ``/api``: thin handlers over the config loader, the SDK, the job store and file checks.

Every config the API accepts goes through ``load_config`` and the SDK's ``validate`` (config and data) first;
problems come back as ``422 {"errors": [{"key": "training.learning_rate", "message": ...}]}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import io
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from fastapi import APIRouter, File, HTTPException, Request, UploadFile
from fastapi.responses import FileResponse, PlainTextResponse, StreamingResponse
from pydantic import BaseModel, Field
from starlette.background import BackgroundTask

from trainforge._utils.secrets import redact
from trainforge.app.actions import child_environment
from trainforge.app.files import UploadError, list_models, preview, save_upload, zip_run_dir
from trainforge.app.jobs import TERMINAL, Job
from trainforge.errors import ConfigError, DataError, RunDirError, TrainforgeError
from trainforge.serve.cache import PredictorCache
from trainforge.training.events import read_events

router = APIRouter(prefix="/api")

_ENV_REFERENCE = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*\}$")
VALIDATE_SAMPLE_ROWS = 50_000  # rows of each file the server reads to validate; training checks them all
CHILD_TIMEOUT_S = 900
# An estimate validates, builds the model on the meta device, prepares a 2,000-row sample, then loads the real model
# and times 5-40 optimizer steps (at most ~3 s of them once warm). The tiny test model takes ~15 s on 2 busy cores; a
# 1B-parameter LLM on a CPU takes minutes (loading, and steps of several seconds each). Past 5 minutes a browser
# request is better answered with "use measure: false" (memory and counts only: no weights load, no steps).
ESTIMATE_TIMEOUT_S = 300
# One estimate at a time per server process: its measured steps would slow another's and both read the free memory.
_ESTIMATE_LOCK = threading.Lock()
PREDICTOR_CACHE_SIZE = 2  # loaded models the server keeps (an LLM each, at most): the playground's recent runs
REMOTE_CODE_REFUSED = (
    "this app does not run a model's own code; to allow it (always in a separate process, never in the server), "
    "restart the app with `trainforge app --allow-remote-code`"
)


class ConfigBody(BaseModel):
    """A config in trainforge's (or AutoTrain's) shape, as JSON."""

    config: dict[str, Any] = Field(description="The config: task, model, data, training, params, output, hub.")
    check_data: bool = Field(True, description="Also read the data and check columns and labels (no model loads).")


class EstimateBody(BaseModel):
    """A config to estimate (as /config/validate takes it) and how."""

    config: dict[str, Any] = Field(description="The config: task, model, data, training, params, output, hub.")
    measure: bool = Field(True, description="Time a few real optimizer steps (false: memory and counts only).")
    memory_limit: str | None = Field(
        None, max_length=40, description="Plan for this much memory instead of what is free now, e.g. 16GiB."
    )


class RunBody(BaseModel):
    """A run to queue."""

    config: dict[str, Any] = Field(description="The config; output.dir is replaced by the run's workspace folder.")
    name: str | None = Field(None, max_length=200, description="Display name (default: task and time).")


class YamlBody(BaseModel):
    """YAML text pasted back into the form."""

    yaml: str = Field(max_length=1_000_000)


class PreviewBody(BaseModel):
    """Data to preview: an uploaded path or any path or Hub id the server can read."""

    source: str
    task: str | None = None
    rows: int = Field(10, ge=1, le=200)


class PredictBody(BaseModel):
    """One input row (``inputs``), several (``rows``), or CSV text with a header line, keyed by the run's columns."""

    inputs: dict[str, Any] | None = None
    rows: list[dict[str, Any]] | None = Field(None, max_length=1000)
    csv: str | None = Field(None, max_length=1_000_000)


class ChatMessage(BaseModel):
    """One turn of a conversation."""

    role: Literal["system", "user", "assistant"]
    content: str = Field(max_length=100_000)


class ChatBody(BaseModel):
    """The conversation so far; the last turn is the user's."""

    messages: list[ChatMessage] = Field(min_length=1, max_length=200)


# ------------------------------------------------------------------------------------------------ tasks & config


@router.get("/tasks", summary="Every registered task with its summary and logical columns")
def tasks() -> list[dict[str, Any]]:
    """Every registered task: name, summary, pipeline tag and logical columns."""
    from trainforge.tasks import list_tasks

    return [_task_info(spec) for spec in list_tasks()]


@router.get("/tasks/{task}/schema", summary="The task's composed JSON schema and its flattened form fields")
def task_schema(task: str) -> dict[str, Any]:
    """The composed JSON schema of a task's config and the same fields flattened for forms."""
    from trainforge.config.json_schema import form_fields, task_schema

    spec = _spec(task)
    return {**_task_info(spec), "schema": task_schema(spec), "fields": form_fields(spec)}


@router.post("/config/validate", summary="Validate a config (and its data); 422 lists problems by key path")
def validate_config(body: ConfigBody, request: Request) -> dict[str, Any]:
    """Validate a config like ``trainforge validate``; 422 lists every problem by key path."""
    return {"ok": True, **_validate(_without_token(body.config), body.check_data, request.app.state.settings)}


@router.post(
    "/config/estimate", summary="Estimate parameters, peak memory, speed and fit of a config (422 like validate)"
)
def estimate_config(body: EstimateBody, request: Request) -> dict[str, Any]:
    """``trainforge estimate --json --no-env`` in a child process: what ``Estimate.to_dict()`` holds, plus ``ok``.

    The config gets the app's own refusals first (as ``/config/validate``: a literal ``hub.token``, system paths,
    ``model.trust_remote_code`` without ``--allow-remote-code``); the child then validates config and data like
    ``trainforge validate`` (422 by key path) and estimates. It gets none of the server's secret-looking environment
    variables, and a model's own code or its timed steps never run in the server. One estimate runs at a time
    (409 for another meanwhile); one that runs past ``ESTIMATE_TIMEOUT_S`` is stopped (504).
    """
    from trainforge.estimate.hardware import parse_size

    settings = request.app.state.settings
    config = _without_token(body.config)
    with _unprocessable():
        limit = None if body.memory_limit is None else parse_size(body.memory_limit, "memory_limit")
        _server_config(config, settings)
    if not _ESTIMATE_LOCK.acquire(blocking=False):
        raise HTTPException(409, "another estimate is running on this server; try again when it has finished")
    try:
        with tempfile.TemporaryDirectory(dir=settings.workspace) as folder:
            path = Path(folder) / "config.yaml"
            path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
            command = [sys.executable, "-m", "trainforge", "estimate", str(path), "--json", "--no-env"]
            if not body.measure:
                command.append("--no-measure")
            if limit is not None:  # as bytes: the child gets a number, never the request's text
                command += ["--memory-limit", str(limit)]
            done = _run_child(command, ESTIMATE_TIMEOUT_S, "the estimate")
    finally:
        _ESTIMATE_LOCK.release()
    result = _child_document(done, "estimate")
    training = len(request.app.state.store.list("running"))
    if training and body.measure:  # the reading is true of this moment, not of the machine alone
        result["notes"] = [
            *result.get("notes", []),
            f"{training} training run(s) of this app were running meanwhile: the measured speed and the free "
            "memory were shared with them",
        ]
    return {"ok": True, **result}


@router.post("/config/yaml", summary="The config as YAML text")
def config_yaml(body: ConfigBody) -> PlainTextResponse:
    """The config rendered as YAML (what the form's YAML view shows and downloads)."""
    return PlainTextResponse(
        yaml.safe_dump(body.config, sort_keys=False, allow_unicode=True), media_type="application/yaml"
    )


@router.post("/config/parse", summary="Parse YAML text into a config dict (422 on invalid YAML)")
def config_parse(body: YamlBody) -> dict[str, Any]:
    """Parse pasted YAML back into a config dict."""
    from trainforge.config.yaml_text import parse_yaml

    try:  # strict: duplicate keys and alias bombs are refused, not expanded into the response
        parsed = parse_yaml(body.yaml)
    except ConfigError as exc:
        raise HTTPException(422, {"errors": _errors(exc.problems)}) from None
    if not isinstance(parsed, dict):
        raise HTTPException(
            422, {"errors": [{"key": "", "message": "the YAML must be a mapping (task:, model:, data: ...)"}]}
        )
    return {"config": parsed}


# ------------------------------------------------------------------------------------------------ runs


@router.post("/runs", status_code=201, summary="Validate a config and queue a run of it")
def create_run(body: RunBody, request: Request) -> dict[str, Any]:
    """Validate the config (and data), then queue it; the run directory is ``<workspace>/runs/<id>``."""
    store = request.app.state.store
    config = _without_token(body.config)
    _validate(config, True, request.app.state.settings)
    job = store.create(copy.deepcopy(config), body.name)
    request.app.state.runner.tick()
    return _job_view(store.get(job.id))


@router.get("/runs", summary="Every run, newest first")
def list_runs(request: Request, status: str | None = None) -> list[dict[str, Any]]:
    """Every run, newest first; running ones include their progress."""
    return [_job_view(job, details=False) for job in request.app.state.store.list(status)]


@router.get("/runs/{run_id}", summary="One run: state, progress, final metrics, playground inputs")
def get_run(run_id: str, request: Request) -> dict[str, Any]:
    """One run with progress, final metrics and the playground's input columns."""
    return _job_view(_job(request, run_id))


@router.post("/runs/{run_id}/cancel", summary="Cancel a queued or running run")
def cancel_run(run_id: str, request: Request) -> dict[str, Any]:
    """Cancel a queued run, or stop a running one's process group."""
    job = _job(request, run_id)
    if job.status in TERMINAL:
        raise HTTPException(409, f"run {run_id} already ended ({job.status})")
    return _job_view(request.app.state.runner.cancel(run_id))


@router.get("/runs/{run_id}/logs", summary="The last lines of the run's log", response_class=PlainTextResponse)
def run_logs(run_id: str, request: Request, tail: int = 200) -> PlainTextResponse:
    """The last ``tail`` lines of the training process's output."""
    job = _job(request, run_id)
    text = job.log_path.read_text(encoding="utf-8", errors="replace") if job.log_path.exists() else ""
    return PlainTextResponse("\n".join(text.splitlines()[-max(1, min(tail, 10_000)) :]))


@router.get("/runs/{run_id}/card", summary="The run's model card (README.md)", response_class=PlainTextResponse)
def run_card(run_id: str, request: Request) -> PlainTextResponse:
    """The model card the run wrote."""
    card = _job(request, run_id).run_dir / "README.md"
    if not card.is_file():
        raise HTTPException(404, "no model card yet: it is written when the run finishes")
    return PlainTextResponse(card.read_text(encoding="utf-8"), media_type="text/markdown")


@router.get("/runs/{run_id}/download", summary="The run directory as a ZIP (checkpoints only when asked)")
def download_run(run_id: str, request: Request, checkpoints: bool = False) -> FileResponse:
    """The run directory as a ZIP archive."""
    job = _job(request, run_id)
    if not job.run_dir.is_dir():
        raise HTTPException(404, f"run {run_id} has no run directory yet")
    handle = tempfile.NamedTemporaryFile(suffix=".zip", delete=False, dir=request.app.state.settings.workspace)
    handle.close()
    path = zip_run_dir(job.run_dir, Path(handle.name), checkpoints)
    return FileResponse(
        path, filename=f"{run_id}.zip", media_type="application/zip", background=BackgroundTask(path.unlink)
    )


SEARCH_REPORTS = {  # the search reports a run page links to: name -> media type (nothing else is served)
    "leaderboard.csv": "text/csv",
    "best_config.yaml": "application/yaml",
    "history.svg": "image/svg+xml",
    "importances.svg": "image/svg+xml",
}


@router.get("/runs/{run_id}/search/{name}", summary="A hyperparameter search's report: leaderboard, best config")
def search_report(run_id: str, name: str, request: Request) -> FileResponse:
    """One of the search reports in the run's ``search/`` folder (``SEARCH_REPORTS``), once the search wrote it."""
    if name not in SEARCH_REPORTS:
        raise HTTPException(404, f"no search report {name!r}; there are: {', '.join(SEARCH_REPORTS)}")
    path = _job(request, run_id).run_dir / "search" / name
    if not path.is_file():
        raise HTTPException(404, f"run {run_id} has no search/{name} (yet): it is written when the search ends")
    return FileResponse(path, media_type=SEARCH_REPORTS[name], filename=name, headers={"Cache-Control": "no-store"})


@router.post("/runs/{run_id}/predict", summary="Predict with a finished run (the playground)")
def predict_run(run_id: str, body: PredictBody, request: Request) -> dict[str, Any]:
    """Predict with a succeeded run: one row (``inputs``) or several (``rows``)."""
    import pandas as pd

    from trainforge.app.files import _cell

    job = _job(request, run_id)
    if job.status != "succeeded":
        raise HTTPException(409, f"run {run_id} is {job.status}; only a succeeded run can predict")
    if body.csv is not None:
        try:
            frame = pd.read_csv(io.StringIO(body.csv))
        except (ValueError, pd.errors.ParserError) as exc:
            raise HTTPException(422, {"errors": [{"key": "csv", "message": f"not readable as CSV: {exc}"}]}) from None
    else:
        rows = body.rows if body.rows is not None else [body.inputs] if body.inputs is not None else None
        if not rows:
            raise HTTPException(422, {"errors": [{"key": "inputs", "message": "give inputs (one row), rows or csv"}]})
        frame = pd.DataFrame(rows)
    _check_images(job, frame, request.app.state.settings.limits.max_image_bytes)
    result = _predict(job, frame, request)
    return {"predictions": [{str(k): _cell(v) for k, v in r.items()} for r in result.to_dict(orient="records")]}


@router.post("/runs/{run_id}/chat", summary="Chat with a succeeded text-generation (LLM) run")
def chat_run(run_id: str, body: ChatBody, request: Request) -> dict[str, Any]:
    """The model's reply to the conversation, from the run's predictor (its chat template, stops at EOS).

    A run trained without a chat template has no notion of turns, so it answers the last user message alone. The
    predictor stays loaded (``_predictor``): the next message is answered without loading the model again.
    """
    import pandas as pd

    job = _job(request, run_id)
    if job.status != "succeeded":
        raise HTTPException(409, f"run {run_id} is {job.status}; only a succeeded run can chat")
    if _playground(job)["kind"] != "chat":
        raise HTTPException(409, f"run {run_id} is a {job.task} run, not a text-generation run: use /predict")
    if body.messages[-1].role != "user":
        raise HTTPException(422, {"errors": [{"key": "messages", "message": "the last message must be the user's"}]})
    turns = [m.model_dump() for m in body.messages]
    if not _remote_code(job):  # the app's cached predictor: a second message does not load the model again
        from trainforge.tasks.spec import ChatPredictor

        predictor = _predictor(request, job)
        if not isinstance(predictor, ChatPredictor):
            raise HTTPException(409, f"run {run_id} is a {job.task} run, which does not chat: use /predict")
        try:
            return {"reply": predictor.chat(turns)}
        except DataError as exc:
            raise HTTPException(400, redact(str(exc))) from None
    if _has_chat_template(job.run_dir):  # a run with its own code answers in a child process, through predict
        frame = pd.DataFrame({"messages": [json.dumps(turns)]})
    else:
        frame = pd.DataFrame({"prompt": [turns[-1]["content"]]})
    result = _predict(job, frame, request)
    return {"reply": str(result["generation"].iloc[0])}


@router.get("/runs/{run_id}/events", summary="Server-sent events: status, every events.jsonl record, log lines")
async def run_events(run_id: str, request: Request) -> StreamingResponse:
    """Stream the run as server-sent events until it ends (``Last-Event-ID`` resumes)."""
    job = _job(request, run_id)
    try:
        start = int(request.headers.get("last-event-id", "0"))
    except ValueError:
        start = 0
    stream = _event_stream(request, job, start, request.app.state.settings.poll_s)
    return StreamingResponse(stream, media_type="text/event-stream", headers={"Cache-Control": "no-store"})


async def _event_stream(request: Request, job: Job, start: int, poll_s: float):
    """``status`` on every state change, ``event`` per events.jsonl line (id = line number), ``log`` text, ``end``."""
    store = request.app.state.store
    events_path, log_path = job.run_dir / "events.jsonl", job.log_path
    read, event_offset, log_offset, last_status = 0, 0, 0, None
    if log_path.exists():  # resume the log near its end rather than replaying it all
        log_offset = max(0, log_path.stat().st_size - 20_000)
    while True:
        current = store.get(job.id)
        terminal = current.status in TERMINAL
        status = json.dumps(_job_view(current, details=False))
        if status != last_status:
            last_status = status
            yield f"event: status\ndata: {status}\n\n"
        lines, event_offset = _new_lines(events_path, event_offset)
        for line in lines:
            read += 1
            if read > start:  # a reconnecting EventSource sends the last id it saw
                yield f"id: {read}\nevent: event\ndata: {line}\n\n"
        text, log_offset = _new_text(log_path, log_offset)
        if text:
            yield "event: log\ndata: " + json.dumps(text) + "\n\n"
        if terminal:
            yield f"event: end\ndata: {json.dumps(current.status)}\n\n"
            return
        if await request.is_disconnected():
            return
        await asyncio.sleep(poll_s)


def _new_lines(path: Path, offset: int) -> tuple[list[str], int]:
    """Complete lines appended to ``path`` since byte ``offset``, and the offset after them."""
    if not path.exists():
        return [], offset
    with path.open("rb") as handle:
        handle.seek(offset)
        data = handle.read()
    end = data.rfind(b"\n") + 1
    return [line for line in data[:end].decode("utf-8").splitlines() if line.strip()], offset + end


def _new_text(path: Path, offset: int) -> tuple[str, int]:
    if not path.exists():
        return "", offset
    with path.open("rb") as handle:
        handle.seek(offset)
        data = handle.read(1_000_000)
    return data.decode("utf-8", errors="replace"), offset + len(data)


# ------------------------------------------------------------------------------------------------ data & models


@router.post("/uploads", status_code=201, summary="Upload data files (csv, tsv, jsonl, json, parquet) or a ZIP")
def upload(request: Request, files: Annotated[list[UploadFile], File()]) -> list[dict[str, Any]]:
    """Store uploaded files in the workspace; ZIP archives are checked and extracted."""
    settings = request.app.state.settings
    saved = []
    for item in files:
        try:
            saved.append(save_upload(item.file, item.filename or "", settings.workspace / "uploads", settings.limits))
        except UploadError as exc:
            raise HTTPException(exc.status, exc.message) from None
    return saved


@router.post("/preview", summary="First rows, columns and a best-guess column mapping for a task")
def preview_data(body: PreviewBody, request: Request) -> dict[str, Any]:
    """First rows of a data source, its columns and a best-guess mapping to the task's columns.

    Image data also gets per-class counts and thumbnails (of files in the upload store, the data's own folder or
    the image cache only).
    """
    from trainforge.data.images import cache_dir

    spec = _spec(body.task) if body.task else None
    _refuse_system_path(body.source, "data.source")
    roots = (request.app.state.settings.workspace / "uploads", cache_dir())
    try:
        return preview(body.source, spec, body.rows, roots)
    except TrainforgeError as exc:
        raise HTTPException(422, {"errors": [{"key": "data.source", "message": str(exc)}]}) from None


@router.get("/models", summary="Local models: the models directory and the installed bundled MiniLM")
def models(request: Request) -> list[dict[str, str]]:
    """Local models to offer in the model chooser."""
    return list_models(request.app.state.settings.models_dir)


# ------------------------------------------------------------------------------------------------ helpers


def _spec(task: str):
    from trainforge.tasks import get_task, task_names

    if task not in task_names():
        raise HTTPException(404, f"unknown task {task!r}; known: {', '.join(task_names())}")
    return get_task(task)


def _task_info(spec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "summary": spec.summary,
        "pipeline_tag": spec.pipeline_tag,
        "columns": [
            {
                "name": c.name,
                "help": c.help,
                "required": c.required,
                "default": c.source_default,
                "rest": c.rest,  # "every other column": not mapped one to one
                "role": c.role,
                "kind": c.kind,
            }
            for c in spec.columns
        ],
        "example": spec.example,
        "default_model": spec.default_model,
    }


def _without_token(config: dict[str, Any]) -> dict[str, Any]:
    """The config without ``hub.token``: the app reads the token from its own environment, only when pushing.

    ``${HF_TOKEN}`` (or another ``${VAR}`` reference, as AutoTrain configs carry) is dropped; a literal token is
    refused so that it is never stored in the job database, the run directory or its download.
    """
    hub = config.get("hub")
    if not isinstance(hub, dict) or "token" not in hub:
        return config
    token = hub["token"]
    if token is not None and not (isinstance(token, str) and _ENV_REFERENCE.match(token)):
        problems = [
            (
                "hub.token",
                "the app never stores tokens: leave hub.token out and set HF_TOKEN in the server's environment",
            )
        ]
        raise HTTPException(422, {"errors": _errors(problems)})
    return {**config, "hub": {k: v for k, v in hub.items() if k != "token"}}


def _validate(config: dict[str, Any], check_data: bool, settings) -> dict[str, Any]:
    """Validate like ``trainforge validate``; raise 422 with every problem by dotted key path.

    Nothing here reads the server's environment (``${VAR}`` stays text) or runs a model's own code: a config with
    ``model.trust_remote_code`` is refused unless the app was started with ``--allow-remote-code``, and then its
    data checks run in a separate process. Other data checks read a streamed sample of each file.
    """
    from trainforge.sdk import validate

    with _unprocessable():
        parsed = _server_config(config, settings)
        if not check_data:
            return {"checked_data": False}
        if parsed.model.trust_remote_code:
            return _validate_in_subprocess(config, settings)
        return validate(parsed, sample_rows=VALIDATE_SAMPLE_ROWS).to_dict()


def _server_config(config: dict[str, Any], settings):
    """The parsed config (``${VAR}`` left as text), after the app's refusals: system paths, remote code.

    Raises:
        ConfigError: Invalid config, or ``model.trust_remote_code`` on a server without ``--allow-remote-code``.
        HTTPException: 422 for data under /proc, /sys or /dev.
    """
    from trainforge.config.loading import load_config

    parsed = load_config(copy.deepcopy(config), interpolate=False)
    _refuse_system_path(parsed.data.source, "data.source")
    for key in ("eval_split", "test_split"):  # either may be a file path when data.source is a file
        if getattr(parsed.data, key):
            _refuse_system_path(getattr(parsed.data, key), f"data.{key}")
    if parsed.model.trust_remote_code and not settings.allow_remote_code:
        raise ConfigError([("model.trust_remote_code", REMOTE_CODE_REFUSED)])
    return parsed


@contextlib.contextmanager
def _unprocessable():
    """Turn trainforge's user errors into ``422 {"errors": [{key, message}]}`` (secrets redacted)."""
    try:
        yield
    except ConfigError as exc:
        raise HTTPException(422, {"errors": _errors(exc.problems)}) from None
    except DataError as exc:
        raise HTTPException(422, {"errors": _errors([("data", str(exc))])}) from None
    except TrainforgeError as exc:
        raise HTTPException(422, {"errors": _errors([("", str(exc))])}) from None


def _validate_in_subprocess(config: dict[str, Any], settings) -> dict[str, Any]:
    """``trainforge validate --json --no-env`` in a child process without the server's secrets."""
    with tempfile.TemporaryDirectory(dir=settings.workspace) as folder:
        path = Path(folder) / "config.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        command = [sys.executable, "-m", "trainforge", "validate", str(path), "--json", "--no-env"]
        done = _run_child(command)
    return _child_document(done, "validate")


def _child_document(done: subprocess.CompletedProcess, what: str) -> dict[str, Any]:
    """The JSON document a ``--json`` command printed last (one line, ``ok`` removed).

    Raises:
        HTTPException: 422 with its errors (by key path, redacted) when it says ``ok: false``; when it printed no
            document (it crashed or was killed), 422 for a user error (exit 2), else 500, with its ``error:``
            paragraph.
    """
    lines = done.stdout.strip().splitlines()
    try:
        result = json.loads(lines[-1]) if lines else None
    except json.JSONDecodeError:
        result = None
    if not isinstance(result, dict):
        message = _child_error(done)  # the CLI's own paragraph may already say "<command> failed: ..."
        message = message if message.startswith(f"{what} failed") else f"{what} failed: {message}"
        raise HTTPException(422 if done.returncode == 2 else 500, {"errors": _errors([("", message)])})
    if not result.pop("ok", False):
        raise HTTPException(422, {"errors": [{k: redact(str(v)) for k, v in e.items()} for e in result["errors"]]})
    return result


def _predict(job: Job, frame, request: Request):
    """The run's predictions for ``frame``: in this process, or in a child for a run that needs its own code.

    In this process the run's predictor comes from the app's cache (``_predictor``): loaded once, reused after.
    """
    settings = request.app.state.settings
    if not _remote_code(job):
        try:
            return _predictor(request, job).predict(frame)
        except (DataError, RunDirError) as exc:
            raise HTTPException(400, redact(str(exc))) from None
    if not settings.allow_remote_code:
        raise HTTPException(409, f"run {job.id} uses model.trust_remote_code: {REMOTE_CODE_REFUSED}")
    import pandas as pd

    with tempfile.TemporaryDirectory(dir=settings.workspace) as folder:
        inputs, outputs = Path(folder) / "inputs.jsonl", Path(folder) / "predictions.jsonl"
        frame.to_json(inputs, orient="records", lines=True, force_ascii=False)
        done = _run_child(
            [sys.executable, "-m", "trainforge", "predict", str(job.run_dir), "--input", str(inputs)]
            + ["--output", str(outputs)]
        )
        if done.returncode != 0:
            raise HTTPException(400 if done.returncode == 2 else 500, _child_error(done))
        return pd.read_json(outputs, lines=True, dtype=False)


def _check_images(job: Job, frame, max_bytes: int) -> None:
    """Image inputs of a run (its ``image``-kind predict columns) must be ``data:image/...;base64`` URIs in the limit.

    A path would make the server open one of its own files for the caller, so the API takes the image itself.

    Raises:
        HTTPException: 422 naming the column and row for anything else, 413 for an image over ``max_bytes``.
    """
    for column in _playground(job)["inputs"]:
        if not column.get("image") or column["column"] not in frame:
            continue
        for row, value in enumerate(frame[column["column"]], start=1):
            where = f"{column['column']}, row {row}"
            if not isinstance(value, str) or not re.match(r"^data:image/[A-Za-z0-9.+-]+;base64,", value):
                message = f"{where}: send the image as a data:image/<type>;base64,<bytes> URI (paths are not read)"
                raise HTTPException(422, {"errors": [{"key": "inputs", "message": message}]})
            size = (len(value) - value.index(",") - 1) * 3 // 4
            if size > max_bytes:
                raise HTTPException(413, f"{where}: the image is {size} bytes; the limit is {max_bytes} bytes")


def _remote_code(job: Job) -> bool:
    """Whether the run's model needs its own code (``model.trust_remote_code``): it then predicts in a child."""
    resolved = job.run_dir / "config.resolved.yaml"
    return resolved.is_file() and bool(
        ((yaml.safe_load(resolved.read_text(encoding="utf-8")) or {}).get("model") or {}).get("trust_remote_code")
    )


_CACHE_GUARD = threading.Lock()


def _predictor(request: Request, job: Job):
    """The run's predictor from the app's cache (``app.state.predictors``), loaded on first use.

    Raises:
        HTTPException: 400 when the run cannot be loaded (``RunDirError``, ``DataError``: bad run directory or
            weights), with secrets removed from the message.
    """
    from trainforge.sdk import load_predictor

    state = request.app.state
    with _CACHE_GUARD:
        cache = getattr(state, "predictors", None)
        if cache is None:
            cache = state.predictors = PredictorCache(PREDICTOR_CACHE_SIZE)
    try:
        return cache.get(job.run_dir, lambda: load_predictor(job.run_dir))
    except (DataError, RunDirError) as exc:
        raise HTTPException(400, redact(str(exc))) from None


def _run_child(
    command: list[str], timeout_s: float = CHILD_TIMEOUT_S, what: str = "the check"
) -> subprocess.CompletedProcess:
    """Run a trainforge command in a child process that gets none of the server's secrets (``child_environment``).

    Raises:
        HTTPException: 504 when it runs past ``timeout_s`` (it is killed).
    """
    try:
        return subprocess.run(
            command,
            capture_output=True,
            text=True,
            env=child_environment(),
            stdin=subprocess.DEVNULL,
            timeout=timeout_s,
        )
    except subprocess.TimeoutExpired:
        raise HTTPException(504, f"{what} did not finish within {timeout_s:g} s") from None


def _child_error(done: subprocess.CompletedProcess) -> str:
    """The child's ``error:`` paragraph (or its last lines), with any secret value removed."""
    lines = done.stderr.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("error: ")]
    text = "\n".join(lines[starts[-1] :]).removeprefix("error: ") if starts else "\n".join(lines[-5:])
    return redact(text.strip() or f"exit code {done.returncode}")


def _refuse_system_path(source: str, key: str) -> None:
    """Data under /proc, /sys or /dev is the server's own state (``/proc/self/environ`` holds its secrets)."""
    resolved = Path(os.path.expanduser(source)).resolve()
    if resolved.parts[:2] in (("/", "proc"), ("/", "sys"), ("/", "dev")):
        raise HTTPException(422, {"errors": [{"key": key, "message": f"{source} is not a data file this app reads"}]})


def _errors(problems: list[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"key": key, "message": redact(message)} for key, message in problems]


def _job(request: Request, run_id: str) -> Job:
    job = request.app.state.store.get(run_id)
    if job is None:
        raise HTTPException(404, f"no run {run_id!r}")
    return job


def _job_view(job: Job, details: bool = True) -> dict[str, Any]:
    view = job.to_dict()
    if not details and job.status != "running":
        return view
    events = read_events(job.run_dir / "events.jsonl")
    view["progress"] = _progress(events)
    if details:
        metrics = job.run_dir / "metrics.json"
        view["metrics"] = json.loads(metrics.read_text()) if metrics.is_file() else None
        view["playground"] = _playground(job)
    return view


def _progress(events: list[dict]) -> dict[str, Any] | None:
    """Step, total, fraction, elapsed and ETA from the step events (None before training starts).

    In a search the study's log holds every trial's ``train_started`` and steps (``trial`` set): the progress is the
    latest trial's, timed from its own start.
    """
    marks = [e for e in events if e["event"] in ("train_started", "step")]
    trial = marks[-1].get("trial") if marks else None
    if trial is not None:
        marks = [e for e in marks if e.get("trial") == trial]
    steps = [e for e in marks if e["event"] == "step"]
    started = next((e for e in marks if e["event"] == "train_started"), None)
    latest = steps[-1] if steps else started
    if latest is None:
        return None
    total = latest.get("max_steps") or 0
    step = steps[-1]["step"] if steps else 0
    t0 = started["time"] if started else steps[0]["time"]
    elapsed = (steps[-1]["time"] if steps else time.time()) - t0
    eta = elapsed / step * (total - step) if step and total else None
    return {
        "step": step,
        "max_steps": total,
        "fraction": step / total if total else 0.0,
        "elapsed_s": elapsed,
        "eta_s": eta,
        "trial": trial,
    }


def _playground(job: Job) -> dict[str, Any]:
    """How the playground talks to this run, as its spec declares (``TaskSpec.playground``).

    ``chat`` for generative models; a ``form`` asking for the columns predict reads (``inputs_to_predict``), under
    the run's own column names; a table task (tabular features) takes pasted CSV rows (a form without fields).
    """
    from trainforge.tasks import get_task, task_names

    if job.task not in task_names():
        return {"kind": "form", "inputs": []}
    spec = get_task(job.task)
    if spec.playground == "chat":
        return {"kind": "chat", "inputs": []}
    if spec.playground == "table":
        return {"kind": "form", "inputs": []}
    mapping = (job.config.get("data") or {}).get("columns") or {}
    inputs = []
    for c in spec.inputs_to_predict():
        field = {"name": c.name, "column": mapping.get(c.name, c.source_default), "help": c.help}
        if c.kind == "image":  # a file picker; the image travels as a data: URI
            field["image"] = True
        inputs.append(field)
    view: dict[str, Any] = {"kind": "form", "inputs": inputs}
    if any(i.get("image") for i in inputs) and "box_format" in spec.params.model_fields:
        # Boxes a detector returns are drawn on the image; their format is the run's params.box_format.
        params = job.config.get("params") or {}
        view["box_format"] = params.get("box_format") or spec.params.model_fields["box_format"].default
    return view


def _has_chat_template(run_dir: Path) -> bool:
    """Whether the run's tokenizer carries a chat template (saved inline or as chat_template.jinja)."""
    if (run_dir / "chat_template.jinja").is_file() or (run_dir / "chat_template.json").is_file():
        return True
    tokenizer_config = run_dir / "tokenizer_config.json"
    return tokenizer_config.is_file() and bool(
        json.loads(tokenizer_config.read_text(encoding="utf-8")).get("chat_template")
    )
