"""The micro-batcher on its own (it knows nothing of models: `run` here is plain Python)."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from softprompt.core.serving.batcher import Batcher, Closed, QueueFull, QueueTimeout


class Recorder:
    """A `run` that answers each payload with itself, and records every call's rows."""

    def __init__(self, delay: float = 0.0, fail_on=None):
        self.calls: list[tuple] = []
        self.delay = delay
        self.fail_on = fail_on
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self, group, payloads):
        self.gate.wait(10)
        self.calls.append((group, list(payloads)))
        if self.fail_on is not None and self.fail_on in payloads:
            raise RuntimeError("bad row")
        if self.delay:
            threading.Event().wait(self.delay)
        return [("done", p) for p in payloads], None


def make(run, **options):
    settings_ = {"max_batch_size": 4, "batch_timeout_s": 0.05, "max_queue": 64,
                 "queue_timeout_s": 10.0, "executor": ThreadPoolExecutor(1)}
    settings_.update(options)
    return Batcher(run, **settings_)


def test_mixed_batches_hold_several_tasks_per_task_batches_one():
    async def main(per_task):
        run = Recorder()
        batcher = make(run, per_task=per_task)
        await batcher.start()
        rows = [("g", f"task{i % 3}", i) for i in range(12)]
        futures = [f for row in rows for f in batcher.submit([row])]
        results = await asyncio.gather(*futures)
        await batcher.stop()
        assert results == [("done", i) for i in range(12)]  # each row gets its own answer
        return run.calls

    mixed = asyncio.run(main(False))
    assert [len(p) for _, p in mixed] == [4, 4, 4]  # full batches, tasks mixed
    assert all(len({i % 3 for i in p}) == 3 for _, p in mixed)
    per_task = asyncio.run(main(True))
    assert all(len({i % 3 for i in p}) == 1 for _, p in per_task)
    assert sorted(i for _, p in per_task for i in p) == list(range(12))


def test_groups_never_share_a_batch_and_the_timeout_sends_short_batches():
    async def main():
        run = Recorder()
        batcher = make(run, batch_timeout_s=0.02)
        await batcher.start()
        futures = batcher.submit([("a", "t", 1), ("b", "t", 2), ("a", "t", 3)])
        await asyncio.gather(*futures)
        await batcher.stop()
        return run.calls

    calls = asyncio.run(main())
    assert sorted((g, sorted(p)) for g, p in calls) == [("a", [1, 3]), ("b", [2])]


def test_queue_limits_and_close():
    async def main():
        run = Recorder()
        run.gate.clear()  # the model thread is busy: rows stay queued
        batcher = make(run, max_queue=6, queue_timeout_s=0.2, batch_timeout_s=0.0)
        await batcher.start()
        first = batcher.submit([("g", "t", 0)])
        await asyncio.sleep(0.05)  # row 0 is running (blocked)
        waiting = batcher.submit([("g", "t", i) for i in range(1, 7)])
        with pytest.raises(QueueFull):
            batcher.submit([("g", "t", 99)])
        await asyncio.sleep(0.3)
        run.gate.set()
        results = await asyncio.gather(*first, *waiting, return_exceptions=True)
        batcher.close()
        with pytest.raises(Closed):
            batcher.submit([("g", "t", 100)])
        await batcher.stop()
        return results

    results = asyncio.run(main())
    assert results[0] == ("done", 0)
    assert all(isinstance(r, QueueTimeout) for r in results[1:])  # waited 0.3 s > 0.2 s


def test_a_failing_request_fails_alone():
    async def main():
        run = Recorder(fail_on=13)
        batcher = make(run)
        await batcher.start()
        good = batcher.submit([("g", "t", 1), ("g", "t", 2)])
        bad = batcher.submit([("g", "t", 13)])
        other = batcher.submit([("g", "t", 3)])
        results = await asyncio.gather(*good, *bad, *other, return_exceptions=True)
        await batcher.stop()
        return results

    results = asyncio.run(main())
    assert results[0] == ("done", 1) and results[1] == ("done", 2) and results[3] == ("done", 3)
    assert isinstance(results[2], RuntimeError)


def test_rows_of_requests_that_went_away_do_not_run():
    async def main():
        run = Recorder()
        run.gate.clear()
        batcher = make(run, batch_timeout_s=0.0)
        await batcher.start()
        busy = batcher.submit([("g", "t", 0)])
        await asyncio.sleep(0.05)
        gone = batcher.submit([("g", "t", 1), ("g", "t", 2)])
        for f in gone:
            f.cancel()
        kept = batcher.submit([("g", "t", 3)])
        run.gate.set()
        await asyncio.gather(*busy, *kept)
        await batcher.stop()
        return run.calls

    ran = [p for _, payloads in asyncio.run(main()) for p in payloads]
    assert ran == [0, 3]


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("xyz"), st.sampled_from("abcd"),
                          st.integers(1, 5)), min_size=1, max_size=20),
       st.integers(1, 5), st.booleans())
def test_every_row_answered_once_within_the_limits(requests, max_batch, per_task):
    """Any mix of requests: each row gets exactly its own answer; batches respect the size,
    the group and (per task) the task."""
    async def main():
        run = Recorder()
        batcher = make(run, max_batch_size=max_batch, batch_timeout_s=0.001, max_queue=200,
                       per_task=per_task)
        await batcher.start()
        counter = iter(range(10**6))
        sent = []
        for group, task, n in requests:
            rows = [(group, task, (group, task, next(counter))) for _ in range(n)]
            sent.append((rows, batcher.submit(rows)))
        for rows, futures in sent:
            answers = await asyncio.gather(*futures)
            assert answers == [("done", p) for _, _, p in rows]
        await batcher.stop()
        return run.calls

    calls = asyncio.run(main())
    payloads = [p for _, ps in calls for p in ps]
    assert len(payloads) == len(set(payloads)) == sum(n for *_, n in requests)
    for group, ps in calls:
        assert 1 <= len(ps) <= max_batch and {p[0] for p in ps} == {group}
        if per_task:
            assert len({p[1] for p in ps}) == 1
