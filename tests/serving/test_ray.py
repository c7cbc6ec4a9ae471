"""The Ray Serve deployment: two replicas of the embedded model on a local Ray instance
answer as ``softprompt predict`` does. Run once per suite, by ``nox -s serving-ray``;
skipped where ``ray[serve]`` is not installed (it comes with ``softprompt[all]``)."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from serving_helpers import TASKS, config, free_port, inputs, offline_predict

ray = pytest.importorskip("ray")
serve = pytest.importorskip("ray.serve")
pytestmark = pytest.mark.ray

NAMES = list(TASKS)


def test_two_replicas_answer_like_predict(prompt_dir, tmp_path):
    import keras

    from softprompt.core.serving.ray_app import deployment

    texts = inputs(6, seed=21)
    pairs = [{"prompt": NAMES[i % len(NAMES)], "text": x} for i, x in enumerate(texts)]
    want = [r["prediction"] for r in offline_predict(prompt_dir, pairs, "decode", tmp_path)]
    port = free_port()
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             object_store_memory=80 * 1024 * 1024)
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        serve.run(deployment(config(prompt_dir, ray=True, replicas=2),
                             backend=keras.backend.backend()), name="softprompt",
                  route_prefix="/")
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 300
        ready = 0
        while ready < 10:  # both replicas warmed up: ten ready answers in a row
            assert time.monotonic() < deadline, "the replicas did not get ready"
            try:
                ok = httpx.get(url + "/ready", timeout=10).status_code == 200
            except httpx.HTTPError:
                ok = False
            ready = ready + 1 if ok else 0
            time.sleep(0.2)

        async def main():
            async with httpx.AsyncClient(base_url=url, timeout=120) as client:
                replies = await asyncio.gather(*[
                    client.post("/v1/generate", json={"task": p["prompt"], "inputs": [p["text"]]})
                    for p in pairs * 4])
                pids = {(await client.get("/health")).json()["pid"] for _ in range(30)}
                return replies, pids

        replies, pids = asyncio.run(main())
    finally:
        serve.shutdown()
        ray.shutdown()
    assert [r.status_code for r in replies] == [200] * len(replies)
    assert [r.json()["outputs"][0] for r in replies] == want * 4
    assert len(pids) == 2  # both replicas answered
