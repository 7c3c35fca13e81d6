"""OpenAI-compatible requests and responses: chat completions, completions and embeddings, streamed or whole.

Shapes follow the OpenAI API reference (``chat.completion``, ``chat.completion.chunk``, ``text_completion``,
``embedding``), so the official ``openai`` client and tools built on it work against ``trainforge serve``. What
the server cannot honour (``n`` > 1, tools, logprobs, penalties) is refused by name instead of ignored; fields that
only label a request (``user``, ``metadata``) are accepted.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterable, Iterator
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from trainforge.tasks.spec import ChatPredictor


class ServeError(Exception):
    """A request the server refuses: HTTP ``status`` and an OpenAI-style error body."""

    def __init__(
        self, status: int, message: str, type: str = "invalid_request_error", param: str | None = None, code=None
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type, param, code

    def body(self) -> dict[str, Any]:
        """``{"error": {message, type, param, code}}``, as the OpenAI API answers errors."""
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


@runtime_checkable
class StreamingChatPredictor(ChatPredictor, Protocol):
    """A text-generation predictor that streams (``GenerationPredictor``): what the completion endpoints need."""

    def conversation_prompt(self, messages: list[dict[str, str]]) -> Any:
        """What ``stream`` takes for a conversation (the turns, or the last user message for a template-less run)."""
        ...

    def stream(self, prompt: Any, stop: tuple[str, ...] = (), template: bool = True, **overrides: Any) -> Any:
        """A ``GenerationStream``: iterate for text pieces; then ``finish_reason`` and token counts."""
        ...


# Fields a client may send that change nothing here, and fields accepted only at their neutral value.
_LABELS = {"user", "metadata", "store", "service_tier", "parallel_tool_calls", "stream_options", "modalities"}
_NEUTRAL: dict[str, tuple[Any, ...]] = {
    "presence_penalty": (0, 0.0, None),
    "frequency_penalty": (0, 0.0, None),
    "logit_bias": (None, {}),
    "logprobs": (None, False),
    "top_logprobs": (None, 0),
    "tools": (None, []),
    "tool_choice": (None, "none"),
    "functions": (None, []),
    "function_call": (None, "none"),
    "response_format": (None, {"type": "text"}),
    "seed": (None,),
    "suffix": (None, ""),
    "best_of": (None, 1),
}


class _Body(BaseModel):
    """Common fields; unknown ones are refused by name (``_refuse_unsupported``)."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1, max_length=500)
    max_tokens: int | None = Field(None, ge=1, le=1_000_000)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    stop: str | list[str] | None = None
    stream: bool = False
    n: int = Field(1, ge=1, le=1, description="Choices per request: only 1 is supported.")

    @model_validator(mode="after")
    def _refuse_unsupported(self):
        for name, value in (self.model_extra or {}).items():
            if name in _LABELS or (name in _NEUTRAL and value in _NEUTRAL[name]):
                continue
            if name in _NEUTRAL:
                raise ValueError(f"{name}={value!r} is not supported by this server (only its default)")
            raise ValueError(f"unknown field {name!r}")
        stops = [self.stop] if isinstance(self.stop, str) else self.stop or []
        if len(stops) > 4 or any(not s for s in stops):
            raise ValueError("stop: at most 4 non-empty sequences")
        return self

    @property
    def stops(self) -> tuple[str, ...]:
        """The stop sequences as a tuple."""
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop or ())

    @property
    def include_usage(self) -> bool:
        """``stream_options.include_usage``: a last chunk carries the token counts."""
        options = (self.model_extra or {}).get("stream_options") or {}
        return bool(options.get("include_usage")) if isinstance(options, dict) else False

    def generation(self) -> dict[str, Any]:
        """``max_new_tokens``, ``temperature``, ``top_p`` overrides for the predictor (None keeps the run's)."""
        return {"max_new_tokens": self.max_tokens, "temperature": self.temperature, "top_p": self.top_p}


class TextPart(BaseModel):
    """A text part of a message's content (``{"type": "text", "text": ...}``)."""

    type: Literal["text"]
    text: str = Field(max_length=1_000_000)


class Message(BaseModel):
    """One turn; ``developer`` is OpenAI's newer name for ``system``."""

    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart] = Field(max_length=1_000_000)
    name: str | None = None

    def turn(self) -> dict[str, str]:
        """``{"role", "content"}`` as the run's chat template reads it."""
        content = self.content if isinstance(self.content, str) else "".join(p.text for p in self.content)
        return {"role": "system" if self.role == "developer" else self.role, "content": content}


class ChatCompletionBody(_Body):
    """``POST /v1/chat/completions``."""

    messages: list[Message] = Field(min_length=1, max_length=1000)
    max_completion_tokens: int | None = Field(None, ge=1, le=1_000_000)

    def generation(self) -> dict[str, Any]:  # noqa: D102
        return {**super().generation(), "max_new_tokens": self.max_completion_tokens or self.max_tokens}


class CompletionBody(_Body):
    """``POST /v1/completions``: raw text continued (no chat template)."""

    prompt: str | list[str] = Field(max_length=100)
    echo: bool = False

    @property
    def prompts(self) -> list[str]:
        """The prompts as a list."""
        return [self.prompt] if isinstance(self.prompt, str) else list(self.prompt)


class EmbeddingBody(BaseModel):
    """``POST /v1/embeddings``."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1, max_length=500)
    input: str | list[str] = Field(max_length=2048)
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: None = Field(None, description="Not supported: the model's own dimension is returned.")
    user: str | None = None

    @property
    def texts(self) -> list[str]:
        """The inputs as a list."""
        return [self.input] if isinstance(self.input, str) else list(self.input)


# ------------------------------------------------------------------------------------------------ responses


def model_entry(name: str, created: int, task: str, pipeline_tag: str | None, endpoints: list[str]) -> dict:
    """One ``model`` object of ``GET /v1/models`` (with trainforge's task, pipeline tag and endpoints added)."""
    return {
        "id": name,
        "object": "model",
        "created": created,
        "owned_by": "trainforge",
        "task": task,
        "pipeline_tag": pipeline_tag,
        "endpoints": endpoints,
    }


def chat_completion(model: str, stream: Any, text: str) -> dict[str, Any]:
    """A whole ``chat.completion`` from a generation stream that has been read to its end."""
    return {
        "id": _new_id("chatcmpl"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "logprobs": None,
                "finish_reason": stream.finish_reason,
            }
        ],
        "usage": usage(stream.prompt_tokens, stream.completion_tokens),
    }


def chat_chunks(model: str, stream: Any, include_usage: bool) -> Iterator[dict[str, Any]]:
    """``chat.completion.chunk`` objects: the role, each text piece as it is generated, the finish reason, usage."""
    head = {"id": _new_id("chatcmpl"), "object": "chat.completion.chunk", "created": int(time.time()), "model": model}

    def chunk(delta: dict, finish_reason: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return {**head, "choices": [choice]}

    yield chunk({"role": "assistant", "content": ""})
    for piece in without_leading_space(stream):
        yield chunk({"content": piece})
    yield chunk({}, stream.finish_reason)
    if include_usage:
        yield {**head, "choices": [], "usage": usage(stream.prompt_tokens, stream.completion_tokens)}


def completion(model: str, streams: list[Any], texts: list[str]) -> dict[str, Any]:
    """A whole ``text_completion``: one choice per prompt."""
    return {
        "id": _new_id("cmpl"),
        "object": "text_completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {"index": i, "text": text, "logprobs": None, "finish_reason": stream.finish_reason}
            for i, (stream, text) in enumerate(zip(streams, texts, strict=True))
        ],
        "usage": usage(sum(s.prompt_tokens for s in streams), sum(s.completion_tokens for s in streams)),
    }


def completion_chunks(model: str, streams: Iterable[Any], prefixes: list[str]) -> Iterator[dict[str, Any]]:
    """``text_completion`` chunks: each prompt's pieces in turn (its index on each), then its finish reason."""
    ident, created = _new_id("cmpl"), int(time.time())

    def chunk(index: int, text: str, finish_reason: str | None = None) -> dict[str, Any]:
        choice = {"index": index, "text": text, "logprobs": None, "finish_reason": finish_reason}
        return {"id": ident, "object": "text_completion", "created": created, "model": model, "choices": [choice]}

    for index, stream in enumerate(streams):
        if prefixes[index]:
            yield chunk(index, prefixes[index])
        for piece in stream:
            yield chunk(index, piece)
        yield chunk(index, "", stream.finish_reason)


def embeddings(model: str, vectors: list[list[float]], encoding: str, tokens: int) -> dict[str, Any]:
    """An embeddings ``list``; ``base64`` packs each vector as little-endian float32 (what the openai client asks)."""

    def encoded(vector: list[float]) -> list[float] | str:
        if encoding == "base64":
            return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")
        return [float(v) for v in vector]

    return {
        "object": "list",
        "data": [{"object": "embedding", "index": i, "embedding": encoded(v)} for i, v in enumerate(vectors)],
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    """The ``usage`` object."""
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def server_sent(events: Iterable[dict[str, Any]]) -> Iterator[str]:
    """Server-sent events: ``data: {json}`` per object, then ``data: [DONE]``; a failure mid-stream is an error event.

    The failure is sent as ``data: {"error": ...}`` (which the openai client raises as an ``APIError``) because the
    status line (200) went out with the first chunk.
    """
    try:
        for event in events:
            yield f"data: {json.dumps(event, ensure_ascii=False)}\n\n"
    except ServeError as exc:
        yield f"data: {json.dumps(exc.body())}\n\n"
    except Exception as exc:
        # Not carried on: the client is told, then the failure propagates (the server logs it, the stream ends).
        failure = ServeError(500, f"generation failed: {type(exc).__name__}: {exc}", "server_error")
        yield f"data: {json.dumps(failure.body())}\n\n"
        raise
    yield "data: [DONE]\n\n"


def without_leading_space(pieces: Iterable[str]) -> Iterator[str]:
    """``pieces`` with the whitespace that opens the answer removed (as the batched ``chat`` strips it)."""
    started = False
    for piece in pieces:
        if not started:
            piece = piece.lstrip()
            started = bool(piece)
        if piece:
            yield piece


def _new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:24]}"
