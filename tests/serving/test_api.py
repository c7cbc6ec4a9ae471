"""The HTTP API: statuses and error bodies, the OpenAI-compatible endpoints, health and
readiness, overload (429, 504), drain (503); hypothesis on request bodies and schemathesis
against the app's own OpenAPI spec (in-process)."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest
import schemathesis
import schemathesis.specs.openapi.schemas  # noqa: F401 - imported here, not in the ASGI thread
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from serving_helpers import LABELS, LIMITS, TASKS, config, inputs, served
from starlette.testclient import TestClient

from softprompt.core.serving.app import create_app
from softprompt.core.serving.runtime import Runtime

TEXT = inputs(3, seed=7)
LONG = " ".join(["the big green field"] * 20)  # over the 32-token limit


@pytest.fixture(scope="module")
def client(engine, prompt_dir):
    """A ready in-process server (its lifespan running) and a synchronous client."""
    runtime = Runtime(config(prompt_dir), engine=engine)
    with TestClient(create_app(runtime)) as test_client:
        for _ in range(600):
            if runtime.ready:
                break
            threading.Event().wait(0.1)
        assert runtime.ready
        yield test_client


def _error(reply, status, *words, param=...):
    assert reply.status_code == status, reply.text
    body = reply.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param"}
    message = body["error"]["message"]
    assert isinstance(message, str) and "\n" not in message
    for word in words:
        assert word in message, message
    if param is not ...:
        assert body["error"]["param"] == param
    return body["error"]


@pytest.mark.parametrize("body, param", [
    ('{"task": "alpha", "inputs": ["a"', None),           # malformed JSON
    ('[1, 2]', None),                                      # not an object
    ({"task": "alpha", "inputs": "a"}, "inputs"),
    ({"task": 3, "inputs": ["a"]}, "task"),
    ({"task": "alpha", "inputs": [3]}, "inputs.0"),
    ({"task": "alpha", "inputs": ["a"], "max_new_tokens": "8"}, "max_new_tokens"),
    ({"task": "alpha", "inputs": ["a"], "max_new_tokens": 8.5}, "max_new_tokens"),
    ({"task": "alpha", "inputs": ["a"], "input": ["typo"]}, "input"),
    ({"inputs": ["a"]}, "task"),
])
def test_malformed_or_wrongly_typed_is_400(client, body, param):
    data = body if isinstance(body, str) else json.dumps(body)
    reply = client.post("/v1/generate", content=data,
                        headers={"content-type": "application/json"})
    error = _error(reply, 400)
    assert error["type"] == "invalid_request_error"
    if param is not None:
        assert error["param"] == param


@pytest.mark.parametrize("path, body, param, words", [
    ("/v1/generate", {"task": "alpha", "inputs": []}, "inputs", ()),
    ("/v1/generate", {"task": "alpha", "inputs": ["a", " "]}, "inputs.1", ("empty",)),
    ("/v1/generate", {"task": "alpha", "inputs": [LONG]}, "inputs.0", ("32 tokens",)),
    ("/v1/generate", {"task": "alpha", "inputs": ["a"], "max_new_tokens": 0}, "max_new_tokens",
     ()),
    ("/v1/generate", {"task": "alpha", "inputs": ["a"], "max_new_tokens": 17},
     "max_new_tokens", ("1..16",)),
    ("/v1/generate", {"task": [], "inputs": ["a"]}, "task", ("empty",)),
    ("/v1/generate", {"task": ["alpha", "alpha"], "inputs": ["a"]}, "task", ("twice",)),
    ("/v1/classify", {"task": "alpha", "inputs": ["a"], "labels": []}, "labels", ()),
    ("/v1/classify", {"task": "alpha", "inputs": ["a"], "labels": ["x", ""]}, "labels.1",
     ("empty",)),
    ("/v1/classify", {"task": "alpha", "inputs": ["a"], "labels": ["x", "x"]}, "labels",
     ("twice",)),
    ("/v1/classify", {"task": "alpha", "inputs": ["a"], "labels": [LONG]}, "labels.0", ()),
    ("/v1/completions", {"model": "alpha", "prompt": "a", "n": 2}, "n", ()),
    ("/v1/completions", {"model": "alpha", "prompt": "a", "temperature": 0.7}, "temperature",
     ("greedy",)),
    ("/v1/completions", {"model": "alpha", "prompt": "a", "max_tokens": 99}, "max_tokens", ()),
    ("/v1/completions", {"model": "alpha", "prompt": []}, "prompt", ()),
])
def test_values_out_of_range_are_422(client, path, body, param, words):
    _error(client.post(path, json=body), 422, *words, param=param)


def test_unknown_tasks_routes_and_methods(client):
    error = _error(client.post("/v1/generate", json={"task": "nope", "inputs": ["a"]}), 404,
                   "'nope'", "alpha", param="task")
    assert error["type"] == "not_found_error"
    _error(client.post("/v1/classify", json={"task": ["alpha", "nope"], "inputs": ["a"]}), 404,
           "'nope'")
    _error(client.post("/v1/completions", json={"model": "nope", "prompt": "a"}), 404, "'nope'",
           param="model")
    _error(client.get("/v1/nothing"), 404)
    _error(client.get("/v1/generate"), 405)


def test_generate_classify_and_their_ensembles(client):
    reply = client.post("/v1/generate", json={"task": "alpha", "inputs": TEXT,
                                              "max_new_tokens": 5})
    assert reply.status_code == 200
    data = reply.json()
    assert data["task"] == "alpha" and len(data["outputs"]) == 3
    assert len(data["prompt_sha256"]) == 64
    usage = data["usage"]
    assert 0 < usage["completion_tokens"] <= 15 and usage["prompt_tokens"] > 3
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    reply = client.post("/v1/classify", json={"task": ["alpha", "beta"], "inputs": TEXT[:2]})
    data = reply.json()
    assert reply.status_code == 200 and data["task"] == ["alpha", "beta"]
    assert len(data["prompt_sha256"]) == 2
    for result in data["results"]:
        assert list(result["scores"]) == LABELS
        assert result["label"] == max(result["scores"], key=result["scores"].get)
        assert all(v < 0 for v in result["scores"].values())


def test_openai_completions_models_and_tasks(client):
    reply = client.post("/v1/completions", json={"model": "beta", "prompt": TEXT[:2],
                                                 "max_tokens": 6, "temperature": 0,
                                                 "presence_penalty": 0.0, "seed": 1})
    assert reply.status_code == 200, reply.text
    data = reply.json()
    assert data["object"] == "text_completion" and data["model"] == "beta"
    assert data["id"].startswith("cmpl-") and [c["index"] for c in data["choices"]] == [0, 1]
    first = data["choices"][0]
    assert first["finish_reason"] in ("stop", "length")
    # stop strings cut the text before the first one
    if len(first["text"]) > 2:
        stop = first["text"][1:3]
        cut = client.post("/v1/completions", json={"model": "beta", "prompt": TEXT[0],
                                                   "max_tokens": 6, "stop": stop}).json()
        assert cut["choices"][0]["text"] == first["text"][: first["text"].find(stop)]
        assert cut["choices"][0]["finish_reason"] == "stop"
    # streamed: one event with the whole completion, then [DONE]
    with client.stream("POST", "/v1/completions", json={"model": "beta", "prompt": TEXT[0],
                                                        "max_tokens": 6, "stream": True}) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        events = [x for x in r.iter_lines() if x.startswith("data: ")]
    assert events[-1] == "data: [DONE]"
    assert json.loads(events[0][6:])["choices"][0]["text"] == first["text"]
    models = client.get("/v1/models").json()
    assert models["object"] == "list"
    assert sorted(m["id"] for m in models["data"]) == sorted(TASKS)
    tasks = {t["name"]: t for t in client.get("/v1/tasks").json()["tasks"]}
    assert {n: t["prompt_length"] for n, t in tasks.items()} == TASKS
    assert tasks["alpha"]["labels"] == LABELS and len(tasks["alpha"]["sha256"]) == 64
    assert client.get("/v1/tasks").json()["model"]["hidden_dim"] == 128


def test_health_ready_metrics(client):
    assert client.get("/health").json()["status"] == "ok"
    assert client.get("/ready").json()["status"] == "ready"
    text = client.get("/metrics").text
    for name in ("softprompt_requests_total", "softprompt_request_seconds",
                 "softprompt_queue_wait_seconds", "softprompt_batch_compute_seconds",
                 "softprompt_queue_rows", "softprompt_batch_rows", "softprompt_batch_tasks",
                 "softprompt_batch_padding_ratio", "softprompt_tasks 5.0", "softprompt_ready 1.0"):
        assert name in text


def test_not_ready_and_draining_are_503(engine, prompt_dir):
    async def main():
        runtime = Runtime(config(prompt_dir), engine=engine)
        import httpx

        app = create_app(runtime)  # lifespan not started: loaded, not warmed up
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://testserver") as client:
            _error(await client.get("/ready"), 503, "warming up")
            _error(await client.post("/v1/generate", json={"task": "alpha", "inputs": ["a"]}),
                   503, "warming up")
            assert (await client.get("/health")).status_code == 200
        async with served(runtime) as client:
            runtime.begin_drain()
            reply = await client.post("/v1/generate", json={"task": "alpha", "inputs": ["a"]})
            _error(reply, 503, "shutting down")
            assert reply.headers["connection"] == "close"
            _error(await client.get("/ready"), 503, "shutting down")
            assert (await client.get("/v1/tasks")).status_code == 200

    asyncio.run(main())


def test_queue_full_is_429_and_waiting_too_long_is_504(engine, prompt_dir, monkeypatch):
    gate = threading.Event()
    generate = engine.generate

    def slow(table, rows):
        gate.wait(30)
        return generate(table, rows)

    async def main():
        runtime = Runtime(config(prompt_dir, max_queue=4, queue_timeout_ms=300.0,
                                 batch_timeout_ms=0.0), engine=engine)
        async with served(runtime) as client:
            monkeypatch.setattr(engine, "generate", slow)
            body = {"task": "alpha", "inputs": ["a cow."], "max_new_tokens": 4}
            running = asyncio.ensure_future(client.post("/v1/generate", json=body))
            while not runtime.batcher.busy or runtime.batcher.queued:
                await asyncio.sleep(0.01)
            waiting = asyncio.ensure_future(client.post(
                "/v1/generate", json={**body, "inputs": ["a cow."] * 4}))
            while runtime.batcher.queued < 4:
                await asyncio.sleep(0.01)
            full = await client.post("/v1/generate", json=body)
            await asyncio.sleep(0.4)  # the four queued rows are now too old
            gate.set()
            return await running, await waiting, full, (await client.get("/metrics")).text

    running, waiting, full, metrics = asyncio.run(main())
    assert running.status_code == 200
    _error(full, 429, "queue is full")
    assert full.json()["error"]["type"] == "rate_limit_error"
    _error(waiting, 504, "waited")
    assert 'status="429"' in metrics and 'status="504"' in metrics


# ---------------------------------------------------------------------- hypothesis

JSON = st.recursive(st.none() | st.booleans() | st.integers(-5, 40) | st.floats(allow_nan=False)
                    | st.text(max_size=8), lambda kids: st.lists(kids, max_size=3)
                    | st.dictionaries(st.text(max_size=5), kids, max_size=3), max_leaves=6)
TASK = st.sampled_from(list(TASKS) + ["nope", ""]) | st.lists(
    st.sampled_from(list(TASKS) + ["nope"]), max_size=3) | JSON
INPUTS = st.lists(st.sampled_from(TEXT + ["", " ", LONG, "\u00e9t\u00e9 \U0001f42e", "\ud800"])
                  | st.text(max_size=12), max_size=3) | JSON
BODIES = st.fixed_dictionaries(
    {"task": TASK, "inputs": INPUTS},
    optional={"max_new_tokens": st.integers(-1, 20) | JSON,
              "labels": st.lists(st.sampled_from(LABELS + ["", "x"]), max_size=4) | JSON,
              "extra": JSON}) | JSON


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(path=st.sampled_from(["/v1/generate", "/v1/classify"]), body=BODIES)
def test_any_body_gets_an_answer_or_a_4xx_never_a_5xx(client, path, body):
    """Whatever the body, the answer is 200 or 400/404/422 with OpenAI's error body."""
    reply = client.post(path, content=json.dumps(body),
                        headers={"content-type": "application/json"})
    if reply.status_code == 200:
        data = reply.json()
        answers = data["outputs"] if path == "/v1/generate" else data["results"]
        assert len(answers) == len(body["inputs"])
    else:
        _error(reply, reply.status_code)
        assert reply.status_code in (400, 404, 422), reply.text


# ---------------------------------------------------------------------- schemathesis


@pytest.fixture(scope="module")
def api_schema(engine, prompt_dir):
    runtime = Runtime(config(prompt_dir), engine=engine)
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(runtime))
    for _ in range(600):  # the lifespan runs on schemathesis' own event loop
        if runtime.ready:
            break
        threading.Event().wait(0.1)
    assert runtime.ready
    return schema


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck),
          database=None)
@given(data=st.data())
def test_openapi_contract(api_schema, data):
    """Schemathesis against the app's own spec, valid and invalid requests to every
    operation: no 5xx, documented statuses, bodies and content types. (Schema-valid requests
    may still be refused: an unknown task is 404, an input over the token limit 422.)"""
    from schemathesis.checks import positive_data_acceptance

    mode = data.draw(st.sampled_from([schemathesis.GenerationMode.POSITIVE,
                                      schemathesis.GenerationMode.NEGATIVE]))
    case = data.draw(api_schema.as_strategy(generation_mode=mode))
    case.call_and_validate(excluded_checks=[positive_data_acceptance])


assert LIMITS["max_input_length"] == 32  # LONG is over it
