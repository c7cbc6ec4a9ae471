"""Hot reload with ``--watch``: prompt files added, replaced, removed or broken while serving."""

from __future__ import annotations

import asyncio
import logging
import threading
import time

from serving_helpers import config, inputs, served, write_prompt

from softprompt.core.serving.runtime import Runtime

#: How soon a change must be served.
WITHIN = 2.0


async def _until(client, predicate, limit=WITHIN) -> float:
    """Seconds until ``predicate(/v1/tasks by name)`` holds; fails after `limit`."""
    start = time.monotonic()
    while True:
        tasks = {t["name"]: t for t in (await client.get("/v1/tasks")).json()["tasks"]}
        if predicate(tasks):
            return time.monotonic() - start
        assert time.monotonic() - start < limit, f"not served within {limit} s: {list(tasks)}"
        await asyncio.sleep(0.02)


def test_watch_serves_changes_within_two_seconds(engine, tmp_path, caplog):
    folder = tmp_path / "prompts"
    folder.mkdir()
    write_prompt(folder, "one", engine.base, 4, seed=10)
    text = inputs(1, seed=5)

    async def scores(client, task):
        reply = await client.post("/v1/classify", json={"task": task, "inputs": text})
        assert reply.status_code == 200, reply.text
        return reply.json()["results"][0]["scores"]

    async def main():
        runtime = Runtime(config(folder, watch=True), engine=engine)
        async with served(runtime) as client:
            before = await scores(client, "one")
            # added
            write_prompt(folder, "two", engine.base, 6, seed=11)
            await _until(client, lambda t: "two" in t)
            assert await scores(client, "two") != before
            # replaced: the new prompt's answers
            sha = (await client.get("/v1/tasks")).json()["tasks"][0]["sha256"]
            write_prompt(folder, "one", engine.base, 4, seed=12)
            await _until(client, lambda t: t["one"]["sha256"] != sha)
            assert await scores(client, "one") != before
            # broken files are refused; a broken replacement keeps the last good version
            sha_two = (await client.get("/v1/tasks")).json()["tasks"][1]["sha256"]
            (folder / "three.npy").write_bytes(b"\x93NUMPY broken")
            (folder / "two.npy").write_bytes(b"half a file")
            deadline = time.monotonic() + WITHIN
            while "two.npy" not in caplog.text and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            tasks = await _until(client, lambda t: "three" not in t)
            assert tasks is not None
            listed = {t["name"]: t for t in (await client.get("/v1/tasks")).json()["tasks"]}
            assert set(listed) == {"one", "two"} and listed["two"]["sha256"] == sha_two
            assert (await client.post("/v1/generate", json={"task": "two", "inputs": text}
                                      )).status_code == 200
            # removed
            (folder / "one.npy").unlink()
            await _until(client, lambda t: "one" not in t)
            reply = await client.post("/v1/generate", json={"task": "one", "inputs": text})
            assert reply.status_code == 404 and "'one'" in reply.json()["error"]["message"]

    with caplog.at_level(logging.INFO, logger="softprompt.serve"):
        asyncio.run(main())
    refused = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("three.npy" in m for m in refused)
    assert any("two.npy" in m and "still serving" in m for m in refused)


def test_a_batch_in_flight_keeps_the_prompts_it_started_with(engine, tmp_path, monkeypatch):
    folder = tmp_path / "prompts"
    folder.mkdir()
    write_prompt(folder, "one", engine.base, 4, seed=20)
    text = inputs(1, seed=6)
    started, proceed = threading.Event(), threading.Event()
    rank = engine.rank

    def paused_rank(table, rows):  # the table the batch took when it started
        if proceed.is_set():
            return rank(table, rows)
        started.set()
        assert proceed.wait(30)
        return rank(table, rows)

    async def main():
        runtime = Runtime(config(folder), engine=engine)
        async with served(runtime) as client:
            body = {"task": "one", "inputs": text}
            old = (await client.post("/v1/classify", json=body)).json()
            monkeypatch.setattr(engine, "rank", paused_rank)
            in_flight = asyncio.ensure_future(client.post("/v1/classify", json=body))
            assert await asyncio.to_thread(started.wait, 30)
            write_prompt(folder, "one", engine.base, 4, seed=21)  # replaced mid-batch
            runtime.registry.reload()
            proceed.set()
            during = (await in_flight).json()
            after = (await client.post("/v1/classify", json=body)).json()
            return old, during, after

    old, during, after = asyncio.run(main())
    assert during["results"] == old["results"]  # the array the batch started with
    assert during["prompt_sha256"] == old["prompt_sha256"]
    assert after["results"] != old["results"] and after["prompt_sha256"] != old["prompt_sha256"]
