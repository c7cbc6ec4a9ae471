"""Dynamic micro-batching: rows of many requests into model calls of a few fixed shapes.

Requests `submit` rows (one input under one prompt each) and await one future per row.
One asyncio task collects batches: it takes the oldest queued row, waits until
`max_batch_size` rows share its *group* (the call's shape: method, input width, decoding
length or number of labels) or the oldest row has waited `batch_timeout_s`, then runs
those rows — whatever their tasks, unless ``per_task`` asks for one task per batch (the
baseline of one-adapter-per-batch servers) — in one call on the model thread. In the
spirit of Ray Serve's ``@serve.batch``; nothing here knows about models or frameworks.

Limits, each an exception a server turns into a status: `QueueFull` (more than
`max_queue` rows waiting: 429), `QueueTimeout` (a row waited over `queue_timeout_s`:
504), `Closed` (no new rows after `close`: 503). A row whose request went away is
dropped before it runs. When a whole call fails, each request's rows run again on their
own, so one bad request never fails the others in its batch.

Example:
    >>> batcher = Batcher(run, max_batch_size=32, batch_timeout_s=0.01, max_queue=1024,
    ...                   queue_timeout_s=30, executor=model_thread)
    >>> await batcher.start()
    >>> futures = batcher.submit([(("decode", 16, 8), "boolq", row)], request=1)
    >>> await futures[0]
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
import time
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from typing import Any

logger = logging.getLogger("softprompt.serve")


class QueueFull(Exception):
    """More rows would wait than the queue holds."""


class QueueTimeout(Exception):
    """A row waited in the queue longer than allowed."""


class Closed(Exception):
    """The batcher takes no new rows (the server is shutting down)."""


@dataclasses.dataclass(eq=False)
class Row:
    group: Hashable
    task: str
    payload: Any
    request: int
    future: asyncio.Future
    enqueued: float


class Batcher:
    """Collects rows into batches and runs them, one batch at a time, on `executor`.

    Args:
        run: ``run(group, payloads) -> (results, stats)`` on the model thread; a result
            that is an exception fails its row alone; `stats` is passed to the observer.
        max_batch_size: rows per call at most.
        batch_timeout_s: how long the oldest row waits for companions.
        max_queue: rows waiting at most.
        queue_timeout_s: a row waiting longer fails with `QueueTimeout`.
        per_task: batch only rows of one task together.
        executor: where `run` runs (a single thread: calls never overlap).
        observer: gets ``on_queue(rows)`` and ``on_batch(group, tasks, stats, waits,
            seconds)`` (the server's metrics).
    """

    def __init__(self, run: Callable, *, max_batch_size: int, batch_timeout_s: float,
                 max_queue: int, queue_timeout_s: float, per_task: bool = False,
                 executor=None, observer=None):
        self.run = run
        self.max_batch_size = int(max_batch_size)
        self.batch_timeout_s = float(batch_timeout_s)
        self.max_queue = int(max_queue)
        self.queue_timeout_s = float(queue_timeout_s)
        self.per_task = bool(per_task)
        self.executor = executor
        self.observer = observer
        self._queue: deque[Row] = deque()
        self._wake: asyncio.Event | None = None
        self._idle: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._closed = False
        self._requests = itertools.count()

    # ------------------------------------------------------------------ public
    @property
    def queued(self) -> int:
        return len(self._queue)

    @property
    def busy(self) -> bool:
        return bool(self._queue) or (self._idle is not None and not self._idle.is_set())

    async def start(self) -> None:
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="batcher")

    def submit(self, rows: Sequence[tuple[Hashable, str, Any]], request: int | None = None
               ) -> list[asyncio.Future]:
        """Queue ``(group, task, payload)`` rows of one request; one future per row.

        Raises:
            Closed: after `close`.
            QueueFull: the rows do not fit in the queue (none is queued).
        """
        if self._closed or self._task is None:
            raise Closed("the server is shutting down")
        if len(self._queue) + len(rows) > self.max_queue:
            raise QueueFull(f"the queue is full ({len(self._queue)} of {self.max_queue} rows "
                            f"waiting, this request has {len(rows)})")
        loop = asyncio.get_running_loop()
        request = next(self._requests) if request is None else request
        now = time.monotonic()
        futures = []
        for group, task, payload in rows:
            future = loop.create_future()
            self._queue.append(Row(group, task, payload, request, future, now))
            futures.append(future)
        self._notify_queue()
        self._wake.set()
        return futures

    def close(self) -> None:
        """Take no new rows; queued rows still run."""
        self._closed = True

    async def drain(self) -> None:
        """Wait until every queued row has run."""
        while self.busy:
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        """Close, drain and end the collecting task."""
        self.close()
        if self._task is None:
            return
        await self.drain()
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass
        self._task = None

    # ------------------------------------------------------------------ loop
    def _key(self, row: Row):
        return (row.group, row.task) if self.per_task else row.group

    async def _loop(self) -> None:
        while True:
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            batch = await self._collect()
            if batch:
                self._idle.clear()
                try:
                    await self._run(batch)
                finally:
                    self._idle.set()

    def _drop_finished(self) -> None:
        """Fail rows that waited too long; forget rows whose request went away."""
        now = time.monotonic()
        kept: deque[Row] = deque()
        for row in self._queue:
            if row.future.done():
                continue
            if now - row.enqueued > self.queue_timeout_s:
                row.future.set_exception(QueueTimeout(
                    f"waited {now - row.enqueued:.1f} s in the queue (limit "
                    f"{self.queue_timeout_s:g} s)"))
                continue
            kept.append(row)
        if len(kept) != len(self._queue):
            self._queue = kept
            self._notify_queue()

    async def _collect(self) -> list[Row]:
        while True:
            self._drop_finished()
            if not self._queue:
                return []
            key = self._key(self._queue[0])
            ready = sum(1 for r in self._queue if self._key(r) == key)
            remaining = self._queue[0].enqueued + self.batch_timeout_s - time.monotonic()
            if ready >= self.max_batch_size or remaining <= 0:
                break
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), remaining)
            except asyncio.TimeoutError:  # noqa: UP041 - a distinct class before Python 3.11
                pass
        batch, kept = [], deque()
        for row in self._queue:
            if len(batch) < self.max_batch_size and self._key(row) == key:
                batch.append(row)
            else:
                kept.append(row)
        self._queue = kept
        self._notify_queue()
        return batch

    async def _run(self, batch: list[Row]) -> None:
        loop = asyncio.get_running_loop()
        started = time.monotonic()
        waits = [started - r.enqueued for r in batch]
        group = batch[0].group
        try:
            results, stats = await loop.run_in_executor(
                self.executor, self.run, group, [r.payload for r in batch])
        except Exception as err:  # noqa: BLE001 - isolate the request that failed
            logger.warning("a batch of %d rows failed (%s); running its requests one by one",
                           len(batch), _one_line(err))
            results, stats = await self._isolate(batch)
        if self.observer is not None:
            self.observer.on_batch(group, [r.task for r in batch], stats, waits,
                                   time.monotonic() - started)
        for row, result in zip(batch, results):
            if row.future.done():
                continue
            if isinstance(result, BaseException):
                row.future.set_exception(result)
            else:
                row.future.set_result(result)

    async def _isolate(self, batch: list[Row]):
        loop = asyncio.get_running_loop()
        results: list = [None] * len(batch)
        by_request: dict[int, list[int]] = {}
        for i, row in enumerate(batch):
            by_request.setdefault(row.request, []).append(i)
        for members in by_request.values():
            try:
                out, _ = await loop.run_in_executor(
                    self.executor, self.run, batch[0].group, [batch[i].payload for i in members])
            except Exception as err:  # noqa: BLE001 - this request alone fails
                logger.error("a request failed in the model: %s", _one_line(err))
                out = [err] * len(members)
            for i, result in zip(members, out):
                results[i] = result
        return results, None

    def _notify_queue(self) -> None:
        if self.observer is not None:
            self.observer.on_queue(len(self._queue))


def _one_line(err: BaseException) -> str:
    return f"{type(err).__name__}: " + " ".join(str(err).split())
