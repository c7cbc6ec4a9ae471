"""The HTTP API (FastAPI): softprompt's endpoints, OpenAI-compatible ones, health and metrics.

| endpoint | what |
|---|---|
| ``POST /v1/generate`` | greedy decoding; ``task`` a name or a list (an ensemble) |
| ``POST /v1/classify`` | rank classification over the task's labels (or the request's) |
| ``POST /v1/completions`` | OpenAI's completions, ``model`` = task name (greedy; ``stream`` sends one event) |
| ``GET /v1/models`` | OpenAI's model list: the tasks |
| ``GET /v1/tasks`` | each task's prompt length, sha256, labels, backbone fingerprint, load time |
| ``GET /health`` | the process is up |
| ``GET /ready`` | 200 once the model is loaded and warmed up, 503 before and while draining |
| ``GET /metrics`` | Prometheus (`softprompt.core.serving.metrics`) |

Errors are OpenAI's body ``{"error": {"message", "type", "param"}}``: 400 malformed JSON
or wrong types, 404 unknown task, 422 values out of range (empty input, input over
``--max-input-length``, bad ``max_new_tokens`` or labels), 429 queue full, 503 not ready
or draining, 504 waited too long in the queue.

Example:
    >>> app = create_app(Runtime(config))
    >>> uvicorn.run(app, host="127.0.0.1", port=8000)
"""

from __future__ import annotations

import json
import time
import uuid

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from softprompt import __version__
from softprompt.core.serving import schemas as s
from softprompt.core.serving.errors import APIError, error_body
from softprompt.core.serving.metrics import CONTENT_TYPE

#: Endpoints that run the model: refused (503) until ready and while draining.
MODEL_PATHS = ("/v1/generate", "/v1/classify", "/v1/completions")
#: Paths counted in the request metrics under their own name (others: "other").
KNOWN_PATHS = MODEL_PATHS + ("/v1/models", "/v1/tasks", "/health", "/ready", "/metrics")
#: pydantic error types that mean "a value out of range" (422); the others are 400.
RANGE_ERRORS = {"too_short", "too_long", "greater_than", "greater_than_equal", "less_than",
                "less_than_equal", "string_too_short", "string_too_long"}

ERRORS = {code: {"model": s.ErrorResponse} for code in (400, 404, 422, 429, 503, 504)}


class Admission:
    """ASGI middleware: refuse model requests before ready and while draining (503), count
    requests in flight, record each request's metrics."""

    def __init__(self, app, runtime):
        self.app = app
        self.runtime = runtime

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        runtime = self.runtime
        path = scope["path"]
        endpoint = path if path in KNOWN_PATHS else "other"
        started = time.monotonic()
        if path in MODEL_PATHS and not runtime.accepting:
            reason = ("the server is shutting down" if runtime.draining
                      else "the server is warming up")
            response = JSONResponse(error_body(503, reason), status_code=503,
                                    headers={"Connection": "close"} if runtime.draining else {})
            await response(scope, receive, send)
            runtime.metrics.request("", endpoint, 503, time.monotonic() - started)
            return
        status = [500]

        async def send_status(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        runtime.in_flight += 1
        runtime.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_status)
        finally:
            runtime.in_flight -= 1
            runtime.metrics.in_flight.dec()
            task = (scope.get("state") or {}).get("task_label", "")
            runtime.metrics.request(task, endpoint, status[0], time.monotonic() - started)


def create_app(runtime) -> FastAPI:
    """The FastAPI app over `runtime` (a `softprompt.core.serving.runtime.Runtime`)."""

    async def lifespan(app):
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    app = FastAPI(title="softprompt", version=__version__, lifespan=lifespan,
                  description="One frozen T5, a folder of prompts: every task served at once, "
                              "requests for different tasks batched together.")
    app.state.runtime = runtime
    app.add_middleware(Admission, runtime=runtime)
    _add_error_handlers(app)
    service = runtime.service

    def label(request: Request, task) -> None:
        names = [task] if isinstance(task, str) else list(task)
        table = runtime.registry.current()
        if names and all(n in table for n in names):
            request.state.task_label = "+".join(names)

    @app.post("/v1/generate", response_model=s.GenerateResponse, responses=ERRORS)
    async def generate(body: s.GenerateRequest, request: Request):
        """Greedy decoding of each input under the task's prompt (an ensemble: majority vote)."""
        label(request, body.task)
        return await service.generate(body.task, body.inputs, body.max_new_tokens)

    @app.post("/v1/classify", response_model=s.ClassifyResponse, responses=ERRORS)
    async def classify(body: s.ClassifyRequest, request: Request):
        """Rank classification: each label's log-likelihood as the answer; the best one."""
        label(request, body.task)
        return await service.classify(body.task, body.inputs, body.labels)

    @app.post("/v1/completions", response_model=s.CompletionResponse,
              responses={**ERRORS, 200: {"content": {"text/event-stream": {
                  "schema": {"type": "string"}}}}})
    async def completions(body: s.CompletionRequest, request: Request):
        """OpenAI's completions with ``model`` = a task name; decoding is greedy."""
        _check_completion(body)
        label(request, body.model)
        prompts = [body.prompt] if isinstance(body.prompt, str) else body.prompt
        rows, usage = await service.complete(body.model, prompts, body.max_tokens or 16)
        stops = [body.stop] if isinstance(body.stop, str) else list(body.stop or [])
        choices = []
        for i, row in enumerate(rows):
            text, reason = row.text, "stop" if row.stopped else "length"
            cut = [text.find(x) for x in stops if x in text]
            if cut:
                text, reason = text[: min(cut)], "stop"
            choices.append({"index": i, "text": text, "logprobs": None, "finish_reason": reason})
        result = {"id": f"cmpl-{uuid.uuid4().hex}", "object": "text_completion",
                  "created": int(time.time()), "model": body.model, "choices": choices,
                  "usage": usage}
        if body.stream:
            return StreamingResponse(_events(result), media_type="text/event-stream")
        return result

    @app.get("/v1/models", response_model=s.ModelList)
    async def models():
        """The served tasks as OpenAI models."""
        table = runtime.registry.current()
        return {"object": "list", "data": [
            {"id": e.name, "object": "model", "created": int(e.loaded_at),
             "owned_by": "softprompt"} for e in table.entries.values()]}

    @app.get("/v1/tasks", response_model=s.TaskList)
    async def tasks():
        """The served tasks: prompt length, sha256, labels, backbone fingerprint, load time."""
        table = runtime.registry.current()
        return {"tasks": [e.describe() for e in table.entries.values()],
                "model": runtime.registry.model}

    @app.get("/health", response_model=s.Status)
    async def health():
        """The process is up (liveness)."""
        return {"status": "ok", "pid": runtime.pid}

    @app.get("/ready", response_model=s.Status, responses={503: {"model": s.ErrorResponse}})
    async def ready():
        """200 once the model is loaded and warmed up; 503 before, and while draining."""
        if runtime.draining:
            raise APIError(503, "the server is shutting down")
        if not runtime.ready:
            raise APIError(503, "the server is warming up")
        return {"status": "ready", "pid": runtime.pid}

    @app.get("/metrics", response_class=Response,
             responses={200: {"content": {CONTENT_TYPE: {"schema": {"type": "string"}}}}})
    async def metrics():
        """Prometheus metrics."""
        return Response(runtime.metrics.exposition(), media_type=CONTENT_TYPE)

    return app


def _check_completion(body: s.CompletionRequest) -> None:
    unsupported = [
        (body.n not in (None, 1), "n", "only n=1 is served"),
        (body.best_of not in (None, 1), "best_of", "only best_of=1 is served"),
        (bool(body.echo), "echo", "echo is not served"),
        (body.logprobs is not None, "logprobs", "logprobs are not served"),
        (body.suffix is not None, "suffix", "suffix is not served"),
        (body.temperature not in (None, 0), "temperature",
         "decoding is greedy: temperature must be 0 or left out"),
    ]
    for bad, param, message in unsupported:
        if bad:
            raise APIError(422, message, param)
    stops = [body.stop] if isinstance(body.stop, str) else list(body.stop or [])
    if len(stops) > 4 or any(not x for x in stops):
        raise APIError(422, "stop takes at most 4 non-empty strings", "stop")


async def _events(result: dict):
    """A completion as server-sent events: one chunk, then ``[DONE]``."""
    yield f"data: {json.dumps(result)}\n\n"
    yield "data: [DONE]\n\n"


def _type_tag(part) -> bool:
    """Whether a pydantic error location part names a union member (``str``, ``list[str]``)
    rather than a field or an index."""
    return isinstance(part, str) and (part in ("str", "int", "float", "bool", "none")
                                      or "[" in part)


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(APIError)
    async def api_error(request, err: APIError):
        return JSONResponse(err.body(), status_code=err.status)

    @app.exception_handler(RequestValidationError)
    async def invalid(request, err: RequestValidationError):
        errors = err.errors()
        first = errors[0] if errors else {}
        status = 422 if errors and all(e.get("type") in RANGE_ERRORS for e in errors) else 400
        loc = [str(x) for x in first.get("loc", ()) if x != "body" and not _type_tag(x)]
        if first.get("type") == "json_invalid":
            message = f"malformed JSON: {first.get('ctx', {}).get('error', 'cannot parse')}"
            loc = []
        else:
            message = f"{'.'.join(loc) or 'body'}: {first.get('msg', 'invalid')}"
        return JSONResponse(error_body(status, message, ".".join(loc) or None),
                            status_code=status)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request, err: StarletteHTTPException):
        return JSONResponse(error_body(err.status_code, str(err.detail)),
                            status_code=err.status_code, headers=err.headers)

    @app.exception_handler(Exception)
    async def internal(request, err: Exception):
        return JSONResponse(error_body(500, f"internal error ({type(err).__name__})"),
                            status_code=500)
