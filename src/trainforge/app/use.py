"""Using a finished run from the web app: evaluate it, export it, publish it, and the command that serves it.

``GET /api/runs/{id}/use`` says what the run offers, read from the run itself (no task names here): evaluation
when ``trainforge.evaluation.evaluation_kind`` scores its kind, the export formats
``trainforge.exporters.capabilities`` finds, publishing when the server has a Hub token, and the serve endpoints
``trainforge.serve.server.run_endpoints`` gives its task. Evaluate, export and publish each run as a child process
(``trainforge.app.actions``); ``GET /api/runs/{id}/actions/{action}`` follows one and returns its result.

The Hub token is never asked for, received or returned: ``publish`` uses the server's ``HF_TOKEN`` (or its user's
``hf auth login``), and a request that carries any field besides the publish settings is refused without echoing it.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from trainforge._utils.secrets import redact
from trainforge.app.actions import Action, ActionRunner
from trainforge.app.jobs import Job
from trainforge.app.routes import REMOTE_CODE_REFUSED, _job, _refuse_system_path, _remote_code
from trainforge.errors import TrainforgeError

router = APIRouter(prefix="/api")
SERVE_URL = "http://127.0.0.1:8000/v1"  # trainforge serve's defaults (--host 127.0.0.1 --port 8000)


class EvaluateBody(BaseModel):
    """Labelled data to score the run on."""

    source: str = Field(max_length=4096, description="An uploaded file's path, or a file or folder on the server.")
    split: str | None = Field(None, max_length=200, description="Split of a folder or saved dataset.")
    columns: dict[str, str] = Field(
        default_factory=dict, max_length=50, description="Logical column -> the data's column, over the run's."
    )
    name: str | None = Field(None, max_length=100, description="Report name (default: from the data file).")
    max_rows: int | None = Field(None, ge=1, description="Score only the first N rows.")


class ExportBody(BaseModel):
    """A format the run offers (``GET /use``); GGUF is guidance only and is not run."""

    format: Literal["merged", "onnx"]
    quantize: Literal["int8"] | None = None


class PublishBody(BaseModel):
    """Where to publish; the token is the server's own and is never part of a request."""

    model_config = ConfigDict(extra="allow")  # refused by name in ``publish``, never echoed back by pydantic

    repo_id: str = Field(min_length=1, max_length=200, description="your-name/model-name")
    private: bool = Field(True, description="Create it private (a private push never writes into a public one).")
    revision: str | None = Field(None, max_length=200, description="Branch, created from main when missing.")
    license: str | None = Field(None, max_length=64, description="License id when the card states none.")


def _actions(request: Request) -> ActionRunner:
    state = request.app.state
    runner = getattr(state, "actions", None)
    if runner is None:
        runner = state.actions = ActionRunner(state.settings.workspace)
    return runner


def _finished(request: Request, run_id: str) -> Job:
    job = _job(request, run_id)
    if job.status != "succeeded" or not (job.run_dir / "metrics.json").is_file():
        raise HTTPException(409, f"run {run_id} is {job.status}; evaluate, export and publish need a succeeded run")
    return job


# ------------------------------------------------------------------------------------------------ what a run offers


@router.get("/runs/{run_id}/use", summary="What a succeeded run offers: evaluate, export formats, publish, serve")
def run_use(run_id: str, request: Request) -> dict[str, Any]:
    """Evaluation (and past reports), export formats, whether publishing can work here, and the serve snippet."""
    from trainforge.exporters import capabilities
    from trainforge.tasks import get_task

    job = _finished(request, run_id)
    try:
        formats = capabilities(job.run_dir)
        evaluate = _evaluate_offer(job)
    except TrainforgeError as exc:
        raise HTTPException(400, redact(str(exc))) from None
    spec = get_task(job.task)
    actions = _actions(request).list(run_id)
    return {
        "evaluate": evaluate,
        "evaluations": _evaluations(job.run_dir),
        "export": {"formats": formats},
        "publish": _publish_offer(job),
        "serve": serve_snippet(job, spec),
        "actions": [_action_view(request, job, a, log=False) for a in actions[:10]],
    }


def _evaluate_offer(job: Job) -> dict[str, Any]:
    """Whether ``evaluate`` scores this run, and the columns it reads (the run's own names by default)."""
    from trainforge.evaluation import EvaluateError, evaluation_kind
    from trainforge.sdk import _finished_run_config
    from trainforge.tasks import get_task

    config = _finished_run_config(job.run_dir)
    spec = get_task(config.task)
    try:
        kind = evaluation_kind(job.run_dir, config, spec)
    except EvaluateError as exc:
        return {"available": False, "reason": str(exc), "columns": []}
    columns = [
        {
            "name": c.name,
            "column": config.data.columns.get(c.name, c.source_default),
            "required": c.required,
            "role": c.role,
            "help": c.help,
        }
        for c in spec.columns
        if not c.rest and c.role in ("input", "target")
    ]
    return {"available": True, "reason": None, "kind": kind, "columns": columns}


def _evaluations(run_dir: Path) -> list[dict[str, Any]]:
    """The run's evaluation reports, newest first: name and metrics document (confusion matrix included)."""
    folder = run_dir / "evaluation"
    if not folder.is_dir():
        return []
    found = []
    for report in folder.iterdir():
        metrics = report / "metrics.json"
        if metrics.is_file():
            found.append((metrics.stat().st_mtime, _report(report)))
    return [r for _, r in sorted(found, key=lambda pair: pair[0], reverse=True)]


def _report(folder: Path) -> dict[str, Any]:
    document = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
    markdown = folder / "report.md"
    return {
        "name": folder.name,
        "document": document,
        "markdown": markdown.read_text(encoding="utf-8") if markdown.is_file() else "",
    }


def _publish_offer(job: Job) -> dict[str, Any]:
    """Whether a push can work from this server (a token and the Hub on); the token itself never leaves it."""
    from trainforge.training.hub import hub_offline, resolve_token

    reason = None
    if resolve_token() is None:
        reason = (
            "this server has no Hub token: restart it with HF_TOKEN set in its environment (or run `hf auth login` "
            "as its user). The app never asks for a token and never stores one"
        )
    elif hub_offline():
        reason = "the Hub is switched off on this server (HF_HUB_OFFLINE=1): restart it without that to publish"
    hub = job.config.get("hub") or {}
    return {
        "available": reason is None,
        "reason": reason,
        "repo_id": hub.get("repo_id"),
        "private": True,
        "revision": hub.get("revision"),
        "license": hub.get("license"),
    }


def serve_snippet(job: Job, spec) -> dict[str, Any]:
    """The exact ``trainforge serve`` command for the run and a curl and Python call of its main endpoint."""
    from trainforge.serve.server import run_endpoints

    run_dir = job.run_dir.resolve()
    model = run_dir.name  # serve names a run by its folder
    endpoints = run_endpoints(spec)
    command = f"trainforge serve {shlex.quote(str(run_dir))}"
    if "/v1/chat/completions" in endpoints:
        payload = {"model": model, "messages": [{"role": "user", "content": "Hello!"}], "max_tokens": 64}
        python = (
            "from openai import OpenAI\n\n"
            f'client = OpenAI(base_url="{SERVE_URL}", api_key="unused-on-loopback")\n'
            "reply = client.chat.completions.create(\n"
            f'    model="{model}", messages=[{{"role": "user", "content": "Hello!"}}], max_tokens=64\n'
            ")\n"
            "print(reply.choices[0].message.content)"
        )
        endpoint = "/v1/chat/completions"
    elif "/v1/embeddings" in endpoints:
        payload = {"model": model, "input": ["A first sentence.", "Another one."]}
        python = (
            "from openai import OpenAI\n\n"
            f'client = OpenAI(base_url="{SERVE_URL}", api_key="unused-on-loopback")\n'
            f'result = client.embeddings.create(model="{model}", input=["A first sentence.", "Another one."])\n'
            "print(len(result.data[0].embedding))"
        )
        endpoint = "/v1/embeddings"
    else:
        payload = {"model": model, "rows": [_example_row(job, spec)]}
        python = (
            "import json\nimport urllib.request\n\n"
            f"body = json.dumps({payload!r}).encode()\n"
            f'request = urllib.request.Request("{SERVE_URL}/predict", body, {{"Content-Type": "application/json"}})\n'
            'print(json.load(urllib.request.urlopen(request))["predictions"])'
        )
        endpoint = "/v1/predict"
    curl = (
        f"curl -s {SERVE_URL.removesuffix('/v1')}{endpoint} -H 'Content-Type: application/json' \\\n"
        f"  -d {shlex.quote(json.dumps(payload))}"
    )
    return {"command": command, "model": model, "endpoints": endpoints, "curl": curl, "python": python}


def _example_row(job: Job, spec) -> dict[str, Any]:
    """A row ``/v1/predict`` takes: the predict inputs under the run's column names, valued from its first data row.

    A task reading "every other column" (tabular features) gets the whole first row but the columns mapped to its
    other logical columns; the model reads the columns it was trained on. A value that cannot be read is ``"..."``.
    """
    from trainforge.app.files import _cell
    from trainforge.config.sections import DataSection
    from trainforge.data.loading import load_sample

    data = job.config.get("data") or {}
    mapping = data.get("columns") or {}
    try:
        frame, _, _ = load_sample(DataSection(source=str(data.get("source", "")), eval_fraction=None), 1)
        first = {str(k): _cell(v) for k, v in frame.head(1).to_dict(orient="records")[0].items()}
    except (TrainforgeError, IndexError, OSError, ValueError):
        first = {}
    row: dict[str, Any] = {}
    for column in spec.inputs_to_predict() or [c for c in spec.columns if c.rest]:
        if column.rest:
            taken = {mapping.get(c.name, c.source_default) for c in spec.columns if not c.rest}
            row.update({k: v for k, v in first.items() if k not in taken})
        else:
            name = mapping.get(column.name, column.source_default)
            value = first.get(name, "...")
            row[name] = value[:200] if isinstance(value, str) else value
    return row or {"text": "..."}


@router.get("/uploads", summary="Data files uploaded earlier (newest first), to evaluate a run on")
def list_uploads(request: Request) -> list[dict[str, Any]]:
    """Every uploaded data file or extracted archive folder in the workspace: name, path, size, time."""
    from trainforge.app.files import DATA_SUFFIXES

    root = request.app.state.settings.workspace / "uploads"
    found = []
    for folder in root.iterdir() if root.is_dir() else []:
        for item in folder.iterdir() if folder.is_dir() else []:
            if (item.is_file() and item.suffix.lower() in DATA_SUFFIXES) or item.is_dir():
                stat = item.stat()
                files = [item] if item.is_file() else [p for p in item.rglob("*") if p.is_file()]
                size = sum(p.stat().st_size for p in files)
                found.append({"name": item.name, "path": str(item), "size": size, "time": stat.st_mtime})
    return sorted(found, key=lambda u: u["time"], reverse=True)[:200]


# ------------------------------------------------------------------------------------------------ actions


@router.post("/runs/{run_id}/evaluate", status_code=202, summary="Score a succeeded run on labelled data")
def evaluate_run(run_id: str, body: EvaluateBody, request: Request) -> dict[str, Any]:
    """``trainforge evaluate`` in a child process; the report (metrics, per-class table, confusion matrix) follows."""
    job = _finished(request, run_id)
    _refuse_remote_code(job, request)
    _refuse_system_path(body.source, "source")
    if not Path(body.source).expanduser().exists():
        raise HTTPException(422, {"errors": [{"key": "source", "message": f"{body.source} does not exist here"}]})
    name = body.name or Path(body.source).stem
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "evaluation"
    command = ["evaluate", str(job.run_dir), "--data", body.source, "--name", name]
    if body.split:
        command += ["--split", body.split]
    if body.max_rows:
        command += ["--max-rows", str(body.max_rows)]
    columns = [f"{k}={v}" for k, v in body.columns.items() if k and v]
    if columns:
        command += ["--columns", *columns]
    args = {"source": body.source, "name": name, "split": body.split, "columns": body.columns}
    return _start(request, job, "evaluate", command, args)


@router.post("/runs/{run_id}/export", status_code=202, summary="Export a succeeded run (a format it offers)")
def export_run(run_id: str, body: ExportBody, request: Request) -> dict[str, Any]:
    """``trainforge export`` in a child process; the result has the folder written and, for ONNX, the check."""
    from trainforge.exporters import capabilities

    job = _finished(request, run_id)
    _refuse_remote_code(job, request)
    offered = {f["format"]: f for f in capabilities(job.run_dir)}
    if not offered[body.format]["available"]:
        raise HTTPException(409, redact(offered[body.format]["reason"] or f"{body.format} is not offered"))
    command = ["export", str(job.run_dir), "--format", body.format]
    if body.quantize:
        command += ["--quantize", body.quantize]
    args = {"format": body.format, "quantize": body.quantize, "output": offered[body.format]["output"]}
    return _start(request, job, "export", command, args)


@router.post("/runs/{run_id}/publish", status_code=202, summary="Publish a succeeded run to the Hugging Face Hub")
def publish_run(run_id: str, body: PublishBody, request: Request) -> dict[str, Any]:
    """``trainforge push`` in a child process, with the server's own Hub token (409 when it has none)."""
    job = _finished(request, run_id)
    extra = sorted(body.model_extra or {})
    if extra:
        message = "not a publish setting; the app never takes a Hub token: set HF_TOKEN in the server's environment"
        raise HTTPException(422, {"errors": [{"key": key, "message": message} for key in extra]})
    offer = _publish_offer(job)
    if not offer["available"]:
        raise HTTPException(409, offer["reason"])
    from trainforge.config.sections import HubSection

    try:
        HubSection(push=True, repo_id=body.repo_id, revision=body.revision, license=body.license)
    except ValidationError as exc:
        problems = [
            {"key": ".".join(map(str, e["loc"])) or "repo_id", "message": str(e["msg"]).removeprefix("Value error, ")}
            for e in exc.errors()
        ]
        raise HTTPException(422, {"errors": problems}) from None
    command = ["push", str(job.run_dir), "--repo-id", body.repo_id, "--json"]
    command += [] if body.private else ["--public"]
    command += ["--revision", body.revision] if body.revision else []
    command += ["--license", body.license] if body.license else []
    args = {"repo_id": body.repo_id, "private": body.private, "revision": body.revision, "license": body.license}
    return _start(request, job, "push", command, args)


@router.get("/runs/{run_id}/actions/{action_id}", summary="One evaluate/export/publish action: state, log, result")
def get_action(run_id: str, action_id: str, request: Request) -> dict[str, Any]:
    """The action's state, the end of its output and, once it succeeded, its result."""
    job = _job(request, run_id)
    action = _actions(request).get(run_id, action_id)
    if action is None:
        raise HTTPException(404, f"no action {action_id!r} on run {run_id}")
    return _action_view(request, job, action)


def _start(request: Request, job: Job, kind: str, command: list[str], args: dict[str, Any]) -> dict[str, Any]:
    try:
        action = _actions(request).start(job.id, kind, command, args)
    except RuntimeError as exc:
        raise HTTPException(409, str(exc)) from None
    return _action_view(request, job, action)


def _refuse_remote_code(job: Job, request: Request) -> None:
    """Evaluate and export load the model: one that needs its own code only with ``--allow-remote-code``."""
    if _remote_code(job) and not request.app.state.settings.allow_remote_code:
        raise HTTPException(409, f"run {job.id} uses model.trust_remote_code: {REMOTE_CODE_REFUSED}")


def _action_view(request: Request, job: Job, action: Action, log: bool = True) -> dict[str, Any]:
    """JSON view of an action: its record, the end of its log (secrets removed) and its result when it succeeded."""
    view: dict[str, Any] = {
        "id": action.id,
        "kind": action.kind,
        "args": action.args,
        "status": action.status,
        "started": action.started,
        "finished": action.finished,
        "error": redact(action.error) if action.error else None,
        "result": _result(job, action) if action.status == "succeeded" else None,
    }
    if log:
        view["log"] = redact(_actions(request).log(action))
    return view


def _result(job: Job, action: Action) -> dict[str, Any] | None:
    """What a succeeded action produced, read from what its command wrote."""
    if action.kind == "evaluate":
        folder = job.run_dir / "evaluation" / str(action.args["name"])
        return _report(folder) if (folder / "metrics.json").is_file() else None
    if action.kind == "export":
        output = Path(str(action.args.get("output") or ""))
        verification = output / "verification.json"
        return {
            "path": str(output) if output.exists() else None,
            "verification": json.loads(verification.read_text(encoding="utf-8")) if verification.is_file() else None,
        }
    lines = [line for line in _action_log(job, action).splitlines() if line.startswith("{")]
    return json.loads(lines[-1]) if lines else None


def _action_log(job: Job, action: Action) -> str:
    path = job.job_dir / "actions" / action.id / "output.log"
    return path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""
