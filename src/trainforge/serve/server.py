"""``trainforge serve``: finished runs behind an OpenAI-compatible HTTP API, and ``/v1/predict`` for every task.

Endpoints (every run is named by its folder name, the ``model`` field):

- ``GET /v1/models``: the runs served, with their task, pipeline tag and endpoints.
- ``POST /v1/chat/completions``, ``POST /v1/completions``: text-generation runs (adapter, merged or full model),
  streamed as server-sent events with ``stream: true``; the run's chat template, ``stop``, ``max_tokens``,
  ``temperature`` and ``top_p``.
- ``POST /v1/embeddings``: runs whose predictor embeds (``EmbeddingPredictor``).
- ``POST /v1/predict``: any run; rows in, the rows of ``trainforge predict`` out. Concurrent requests to one
  non-generative run are micro-batched (``MicroBatcher``).

Access control is the web app's (``trainforge.app.server``): bound to loopback no token is needed but the ``Host``
header must name the loopback (no DNS rebinding) and cross-origin writes are refused; bound to any other address
every request carries the token (``Authorization: Bearer``, which is what OpenAI clients send as their API key),
read from ``TRAINFORGE_APP_TOKEN`` or generated and printed once at start.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field

from trainforge.app.server import TOKEN_ENV, _refuse, resolve_token
from trainforge.errors import ConfigError, DataError, RunDirError, TrainforgeError
from trainforge.serve import openai_api as api
from trainforge.serve.runs import RunFolder, ServedRun
from trainforge.tasks.spec import ChatPredictor, EmbeddingPredictor

EMBEDDING_TAGS = ("sentence-similarity", "feature-extraction")  # pipeline tags of runs expected to embed
MAX_PREDICT_ROWS = 1000


@dataclass
class ServeSettings:
    """What ``trainforge serve`` is started with."""

    run_dir: Path
    host: str = "127.0.0.1"
    token: str | None = None  # enforced when set (``resolve_token``)
    max_loaded: int = 2  # predictors kept loaded (an LLM each, at most)
    batch_window_ms: float = 5.0  # how long a /v1/predict request waits for others to share its model call; 0: off


class PredictBody(BaseModel):
    """``POST /v1/predict``: rows keyed by the run's input columns (as ``trainforge predict`` reads them)."""

    model: str = Field(min_length=1, max_length=500)
    rows: list[dict[str, Any]] | None = Field(None, min_length=1, max_length=MAX_PREDICT_ROWS)
    inputs: dict[str, Any] | None = Field(None, description="One row (instead of rows).")


def create_app(settings: ServeSettings, load=None) -> FastAPI:
    """The serving app for ``settings.run_dir``; ``load(run_dir)`` replaces ``trainforge.load_predictor`` (tests).

    Raises:
        RunDirError: ``settings.run_dir`` holds no finished run.
    """
    runs = RunFolder(settings.run_dir, settings.max_loaded, load, settings.batch_window_ms / 1000)
    app = FastAPI(
        title="trainforge serve",
        summary="Finished trainforge runs behind an OpenAI-compatible API, plus /v1/predict for every task.",
        version="0.1.0",
    )
    app.state.settings, app.state.runs = settings, runs

    @app.middleware("http")
    async def access_control(request: Request, call_next):
        refusal = _refuse(request, settings)  # type: ignore[arg-type]  # reads .token only: the app's rules
        return refusal if refusal is not None else await call_next(request)

    @app.exception_handler(api.ServeError)
    async def serve_error(request: Request, exc: api.ServeError) -> JSONResponse:
        return JSONResponse(exc.body(), exc.status)

    @app.exception_handler(TrainforgeError)
    async def trainforge_error(request: Request, exc: TrainforgeError) -> JSONResponse:
        error = _refusal(exc)
        return JSONResponse(error.body(), error.status)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(_invalid(exc).body(), 400)

    _routes(app, runs)
    return app


def _routes(app: FastAPI, runs: RunFolder) -> None:
    @app.get("/v1/models", summary="The runs served (OpenAI's model list, with task and endpoints)")
    def list_models() -> dict[str, Any]:
        return {"object": "list", "data": [_entry(run) for run in runs.runs()]}

    @app.get("/v1/models/{name}", summary="One served run")
    def get_model(name: str) -> dict[str, Any]:
        return _entry(_run(runs, name))

    @app.post("/v1/chat/completions", summary="Answer a conversation (text-generation runs); SSE with stream")
    def chat_completions(body: api.ChatCompletionBody):
        predictor = _generator(runs, body.model)
        prompt = predictor.conversation_prompt([m.turn() for m in body.messages])
        stream = predictor.stream(prompt, stop=body.stops, **body.generation())
        if body.stream:
            return _event_stream(api.chat_chunks(body.model, stream, body.include_usage))
        text = "".join(api.without_leading_space(stream))
        return api.chat_completion(body.model, stream, text)

    @app.post("/v1/completions", summary="Continue raw text (text-generation runs; no chat template)")
    def completions(body: api.CompletionBody):
        predictor = _generator(runs, body.model)
        streams = [predictor.stream(p, stop=body.stops, template=False, **body.generation()) for p in body.prompts]
        prefixes = body.prompts if body.echo else [""] * len(streams)
        if body.stream:
            return _event_stream(api.completion_chunks(body.model, streams, prefixes))
        texts = [prefix + "".join(stream) for stream, prefix in zip(streams, prefixes, strict=True)]
        return api.completion(body.model, streams, texts)

    @app.post("/v1/embeddings", summary="Embed texts (runs whose predictor embeds: sentence-transformers)")
    def create_embeddings(body: api.EmbeddingBody) -> dict[str, Any]:
        run = _run(runs, body.model)
        predictor = runs.predictor(run)
        if not isinstance(predictor, EmbeddingPredictor):
            raise api.ServeError(
                400,
                f"model {run.name!r} is a {run.task} run, which does not embed texts: use /v1/predict",
                param="model",
            )
        vectors = predictor.embed(body.texts)
        return api.embeddings(run.name, vectors, body.encoding_format, _token_count(predictor, body.texts))

    @app.post("/v1/predict", summary="Predict rows with any run: the rows of `trainforge predict`")
    def predict(body: PredictBody) -> dict[str, Any]:
        import pandas as pd

        from trainforge.app.files import _cell

        run = _run(runs, body.model)
        rows = body.rows if body.rows is not None else [body.inputs] if body.inputs is not None else None
        if not rows:
            raise api.ServeError(
                400, "give rows (objects keyed by the run's columns) or inputs (one row)", param="rows"
            )
        frame = pd.DataFrame(rows)
        predictor = runs.predictor(run)
        if isinstance(predictor, ChatPredictor) or runs.batch_window_s <= 0:  # generation is serialised anyway
            result = predictor.predict(frame)
        else:
            result = runs.batcher(predictor).predict(predictor, frame)
        records = [{str(k): _cell(v) for k, v in r.items()} for r in result.to_dict(orient="records")]
        return {"object": "list", "model": run.name, "predictions": records}


def _run(runs: RunFolder, name: str) -> ServedRun:
    """The served run named ``name``; 404 naming the served ones otherwise."""
    run = runs.get(name)
    if run is None:
        names = [r.name for r in runs.runs()]
        shown = ", ".join(names[:20]) + (" ..." if len(names) > 20 else "")
        message = f"model {name!r} is not served here; served: {shown}"
        raise api.ServeError(404, message, param="model", code="model_not_found")
    return run


def _generator(runs: RunFolder, name: str) -> api.StreamingChatPredictor:
    """The streaming text-generation predictor of run ``name``; 400 for a run that does not generate text."""
    run = _run(runs, name)
    spec = run.spec
    if spec is None or spec.playground != "chat":
        raise api.ServeError(
            400,
            f"model {name!r} is a {run.task} run, which does not generate text: use /v1/predict"
            + (" or /v1/embeddings" if spec is not None and spec.pipeline_tag in EMBEDDING_TAGS else ""),
            param="model",
        )
    predictor = runs.predictor(run)
    if not isinstance(predictor, api.StreamingChatPredictor):
        raise api.ServeError(400, f"model {name!r} ({run.task}) cannot stream generated text", param="model")
    return predictor


def run_endpoints(spec) -> list[str]:
    """The endpoints a run of ``spec`` answers (None: a task this version does not know, /v1/predict only)."""
    endpoints = ["/v1/predict"]
    if spec is not None and spec.playground == "chat":
        endpoints = ["/v1/chat/completions", "/v1/completions", *endpoints]
    if spec is not None and spec.pipeline_tag in EMBEDDING_TAGS:
        endpoints.append("/v1/embeddings")
    return endpoints


def _entry(run: ServedRun) -> dict[str, Any]:
    spec = run.spec
    return api.model_entry(run.name, run.created, run.task, spec.pipeline_tag if spec else None, run_endpoints(spec))


def _event_stream(events: Iterable[dict[str, Any]]) -> StreamingResponse:
    """A ``text/event-stream`` response of ``events`` (``data: ...`` lines and ``data: [DONE]``)."""
    return StreamingResponse(
        api.server_sent(_as_serve_errors(events)),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _as_serve_errors(events: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """``events``, with a user error raised while generating turned into the ``ServeError`` the client is sent."""
    try:
        yield from events
    except TrainforgeError as exc:
        raise _refusal(exc) from None


def _refusal(exc: TrainforgeError) -> api.ServeError:
    """The HTTP answer to a trainforge error, its message without secrets.

    400 for the request's data or settings; 400 ``model_error`` for a run that cannot be loaded or answers NaN (not
    a 5xx: OpenAI clients retry those, and would get the same answer).
    """
    from trainforge._utils.secrets import redact

    if isinstance(exc, DataError | ConfigError):
        return api.ServeError(400, redact(str(exc)))
    kind = "model_error" if isinstance(exc, RunDirError) else "server_error"
    return api.ServeError(400 if isinstance(exc, RunDirError) else 500, redact(str(exc)), kind)


def _invalid(exc: RequestValidationError) -> api.ServeError:
    """A 400 naming the first invalid field, as the OpenAI API answers a bad parameter."""
    errors = exc.errors()
    first = errors[0] if errors else {}
    message = "; ".join(f"{_where(e) or 'body'}: {e.get('msg', '')}" for e in errors[:5])
    return api.ServeError(400, message or "invalid request", param=_where(first) or None)


def _where(error: dict) -> str:
    """The dotted field path of a validation error, without FastAPI's leading ``body``."""
    return ".".join(str(part) for part in error.get("loc", ()) if part != "body")


def _token_count(predictor: Any, texts: list[str]) -> int:
    """Tokens in ``texts`` by the predictor's tokenizer, when it exposes one (``tokenizer``); else 0."""
    tokenizer = getattr(predictor, "tokenizer", None)
    if tokenizer is None or not callable(tokenizer):
        return 0
    return sum(len(ids) for ids in tokenizer(texts)["input_ids"])


def serve(settings: ServeSettings, port: int) -> None:
    """Serve until interrupted, printing the models and the address (and the token when one was generated).

    Raises:
        ValueError: ``TRAINFORGE_APP_TOKEN`` is set but too short.
        RunDirError: Nothing to serve.
    """
    import uvicorn

    token, generated = resolve_token(settings.host)
    settings.token = token
    app = create_app(settings)
    names = [run.name for run in app.state.runs.runs()]
    shown_host = f"[{settings.host}]" if ":" in settings.host else settings.host
    url = f"http://{shown_host}:{port}/v1"
    print(f"trainforge serve: {len(names)} model(s): {', '.join(names[:20])}{' ...' if len(names) > 20 else ''}")
    if token:
        origin = "generated" if generated else f"from {TOKEN_ENV}"
        shown = token if generated else f"${TOKEN_ENV}"
        print(f"access token ({origin}) required: send 'Authorization: Bearer {shown}' (an OpenAI client's api_key)")
    print(f"OpenAI base URL: {url}  (models: {url}/models)", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        uvicorn.run(app, host=settings.host, port=port, log_level="warning")
