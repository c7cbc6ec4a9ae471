"""Concurrent mixed requests get what ``softprompt predict`` gives offline, batched together.

Runs under the suite's ``KERAS_BACKEND`` (nox runs it once per backend).
"""

from __future__ import annotations

import asyncio
from collections import Counter

import numpy as np
import pytest
from serving_helpers import LABELS, TASKS, config, inputs, metric, offline_predict, served

from softprompt.core.serving.runtime import Runtime

NAMES = list(TASKS)
CUSTOM = ["cow", "fox", "bird"]


def _requests(texts):
    """A mix of every endpoint and task: ``(path, body, key)``; `key` finds the answers."""
    out = []
    for i, text in enumerate(texts):
        task = NAMES[i % len(NAMES)]
        out.append(("/v1/generate", {"task": task, "inputs": [text]}, ("decode", task, i)))
        out.append(("/v1/classify", {"task": task, "inputs": [text]}, ("rank", task, i)))
    for i in (0, 5):  # several inputs in one request, and another decoding length
        task = NAMES[(i + 1) % len(NAMES)]
        out.append(("/v1/generate", {"task": task, "inputs": [texts[i], texts[i + 1]],
                                     "max_new_tokens": 3}, ("decode3", task, i)))
    out.append(("/v1/classify", {"task": "beta", "inputs": texts[:3], "labels": CUSTOM},
                ("custom", "beta", 0)))
    out.append(("/v1/completions", {"model": "gamma", "prompt": texts[2], "max_tokens": 6},
                ("completion", "gamma", 2)))
    for i in range(4):
        out.append(("/v1/generate", {"task": NAMES[:3], "inputs": [texts[i]]},
                    ("ensemble", None, i)))
        out.append(("/v1/classify", {"task": NAMES[1:], "inputs": [texts[i]]},
                    ("ensemble-rank", None, i)))
    return out


@pytest.fixture(scope="module")
def texts():
    return inputs(10, seed=3)


@pytest.fixture(scope="module")
def offline(prompt_dir, texts, tmp_path_factory):
    """``softprompt predict`` over every (task, input) pair, each way the tests ask."""
    tmp = tmp_path_factory.mktemp("offline")
    pairs = [{"prompt": t, "text": x} for t in NAMES for x in texts]
    custom = [{"prompt": "beta", "text": x, "candidates": CUSTOM} for x in texts[:3]]
    key = [(r["prompt"], r["text"]) for r in pairs]
    ranked = offline_predict(prompt_dir, pairs + custom, "rank", tmp)
    return {
        "decode": dict(zip(key, offline_predict(prompt_dir, pairs, "decode", tmp))),
        "decode3": dict(zip(key, offline_predict(prompt_dir, pairs, "decode", tmp, 3))),
        "rank": dict(zip(key, ranked)),
        "custom": ranked[len(pairs):],
    }


def _serve_all(engine, prompt_dir, requests, **options):
    async def main():
        runtime = Runtime(config(prompt_dir, **options), engine=engine)
        async with served(runtime) as client:
            replies = await asyncio.gather(*[client.post(p, json=b) for p, b, _ in requests])
            return replies, (await client.get("/metrics")).text

    return asyncio.run(main())


def _close(scores, expected):
    """Within 1e-5, relative to the score where it is larger than 1: float32 resolves a
    log-likelihood of -17 to 2e-6, and batches of other shapes round differently."""
    assert set(scores) == set(expected)
    for label, value in expected.items():
        assert scores[label] == pytest.approx(value, rel=1e-5, abs=1e-5)


def test_concurrent_mixed_requests_answer_as_predict(engine, prompt_dir, texts, offline):
    requests = _requests(texts)
    replies, metrics = _serve_all(engine, prompt_dir, requests)
    assert [r.status_code for r in replies] == [200] * len(requests), \
        [r.json() for r in replies if r.status_code != 200]
    for (_, body, (kind, task, i)), reply in zip(requests, replies):
        data = reply.json()
        if kind == "decode":
            assert data["outputs"] == [offline["decode"][task, texts[i]]["prediction"]]
        elif kind == "decode3":
            assert data["outputs"] == [offline["decode3"][task, x]["prediction"]
                                       for x in body["inputs"]]
        elif kind == "completion":
            assert data["choices"][0]["text"].strip() == \
                offline["decode"][task, texts[i]]["prediction"]  # the sidecar's 6
        elif kind == "rank":
            (result,) = data["results"]
            want = offline["rank"][task, texts[i]]
            assert result["label"] == want["prediction"]
            _close(result["scores"], want["scores"])
        elif kind == "custom":
            for result, want in zip(data["results"], offline["custom"]):
                assert result["label"] == want["prediction"]
                _close(result["scores"], want["scores"])
        elif kind == "ensemble-rank":
            (result,) = data["results"]
            members = [offline["rank"][t, texts[i]]["scores"] for t in body["task"]]
            mean = {label: float(np.mean([m[label] for m in members])) for label in LABELS}
            _close(result["scores"], mean)
            assert result["label"] == max(mean, key=mean.get)
            assert data["prompt_sha256"] == [_sha(prompt_dir, t) for t in body["task"]]
        elif kind == "ensemble":
            votes = [offline["decode"][t, texts[i]]["prediction"] for t in body["task"]]
            counts = Counter(votes)
            top = [v for v in dict.fromkeys(votes) if counts[v] == max(counts.values())]
            (answer,) = data["outputs"]
            assert answer in top
            if len(top) == 1:
                assert answer == top[0]
    # the batches mixed tasks, within the size limit
    calls = metric(metrics, "softprompt_batch_tasks_count")
    assert calls > 0
    assert metric(metrics, "softprompt_batch_tasks_bucket", le="1.0") < calls
    assert metric(metrics, "softprompt_batch_rows_bucket", le="4.0") == calls
    assert metric(metrics, "softprompt_requests_total", endpoint="/v1/generate",
                  status="200") == sum(p == "/v1/generate" for p, _, _ in requests)


def test_per_task_batching_never_mixes_and_answers_the_same(engine, prompt_dir, texts, offline):
    requests = [r for r in _requests(texts) if r[2][0] in ("decode", "rank")]
    replies, metrics = _serve_all(engine, prompt_dir, requests, batching="per-task")
    for (_, _, (kind, task, i)), reply in zip(requests, replies):
        data = reply.json()
        want = offline[kind][task, texts[i]]
        got = data["outputs"][0] if kind == "decode" else data["results"][0]["label"]
        assert got == want["prediction"]
    calls = metric(metrics, "softprompt_batch_tasks_count")
    assert calls > 0 and metric(metrics, "softprompt_batch_tasks_bucket", le="1.0") == calls


def test_batches_run_in_a_few_fixed_shapes(engine, prompt_dir, texts):
    """However many rows and tokens requests ask for, the model sees only bucket shapes."""
    def wave(sizes, tokens):
        return [("/v1/generate", {"task": NAMES[n % 4], "inputs": texts[:n],
                                  "max_new_tokens": m}, None) for n, m in zip(sizes, tokens)]

    _serve_all(engine, prompt_dir, wave([1, 2, 3, 4], [5, 6, 7, 8]))
    _serve_all(engine, prompt_dir, wave([3, 1, 4, 2, 3], [8, 5, 7, 6, 8]))
    for method, rows, width, *rest in engine.shapes:
        assert rows in engine.row_buckets and width in engine.widths
        if method == "decode":
            assert rest[0] in engine.length_buckets
    # nine requests asking for 5 to 8 tokens, 1 to 4 inputs: one length, at most 3 row counts
    short = {s for s in engine.shapes if s[0] == "decode" and s[2] == 16 and s[3] == 8}
    assert 1 <= len(short) <= len(engine.row_buckets) == 3


def _sha(folder, name):
    import hashlib

    return hashlib.sha256((folder / f"{name}.npy").read_bytes()).hexdigest()
