"""One server's parts and state: engine, prompt registry, batcher, service, metrics, watcher.

The app (`softprompt.core.serving.app`) and its hosts (uvicorn in `server`, Ray Serve in
`ray_app`) hold a `Runtime`; `start` and `stop` are the app's lifespan. The model runs on
one thread of its own (the batcher's and the warm-up's), so batches never overlap.

Example:
    >>> runtime = Runtime(ServeConfig(preset="softprompt_tiny", prompts="prompts/"))
    >>> app = create_app(runtime)
"""

from __future__ import annotations

import asyncio
import logging
import os
from concurrent.futures import ThreadPoolExecutor

from softprompt.core.serving.batcher import Batcher
from softprompt.core.serving.config import ServeConfig
from softprompt.core.serving.engine import Engine
from softprompt.core.serving.metrics import ServerMetrics
from softprompt.core.serving.registry import PromptRegistry
from softprompt.core.serving.service import Service
from softprompt.core.serving.watcher import PromptWatcher

logger = logging.getLogger("softprompt.serve")


class Runtime:
    """Everything one server holds.

    Args:
        config: the server's settings.
        engine: an `Engine` to share (tests; the Ray wrapper builds its own); default: one
            loaded from ``config.preset``.

    Attributes:
        ready: the model is loaded and warmed up.
        draining: shutting down: new requests are refused (503), accepted ones finish.
        failed: the warm-up failed; the host should exit.
        in_flight: requests accepted and not answered yet.
    """

    def __init__(self, config: ServeConfig, engine: Engine | None = None):
        config.check_prompts_dir()
        self.config = config
        self.engine = engine or Engine.from_preset(
            config.preset, max_batch_size=config.max_batch_size,
            max_input_length=config.max_input_length,
            max_new_tokens_limit=config.max_new_tokens_limit)
        self.metrics = ServerMetrics(config.max_batch_size)
        self.registry = PromptRegistry(config.prompts, self.engine.identity(),
                                       config.allow_mismatch, on_change=self.metrics.prompts_read)
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="softprompt-model")
        self.batcher = Batcher(
            self._run_batch, max_batch_size=config.max_batch_size,
            batch_timeout_s=config.batch_timeout_s, max_queue=config.max_queue,
            queue_timeout_s=config.queue_timeout_s, per_task=config.batching == "per-task",
            executor=self.executor, observer=self.metrics)
        self.service = Service(self.engine, self.registry, self.batcher)
        self.watcher = PromptWatcher(config.prompts, self.registry.reload) if config.watch \
            else None
        self.ready = False
        self.draining = False
        self.failed = False
        self.in_flight = 0
        self.pid = os.getpid()
        table = self.registry.reload()
        if not len(table):
            logger.warning("no servable prompt files in %s%s", config.prompts,
                           " (watching it)" if config.watch else "")
        self._warming: asyncio.Task | None = None

    @property
    def accepting(self) -> bool:
        return self.ready and not self.draining

    def _run_batch(self, group, payloads):
        """The batcher's `run`, on the model thread: this batch's prompts, one model call."""
        table = self.registry.current()
        if group[0] == "decode":
            out = self.engine.generate(table, payloads)
        else:
            out = self.engine.rank(table, payloads)
        self.metrics.shapes.set(len(self.engine.shapes))
        return out

    # ------------------------------------------------------------------ lifespan
    async def start(self) -> None:
        await self.batcher.start()
        if self.watcher is not None:
            self.watcher.start()
        self._warming = asyncio.get_running_loop().create_task(self._warm_up())

    async def _warm_up(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self.executor, self.engine.warmup, self.registry.current())
        except Exception as err:  # noqa: BLE001 - reported, and the host exits
            logger.error("warm-up failed: %s: %s", type(err).__name__, err)
            self.failed = True
            return
        self.metrics.shapes.set(len(self.engine.shapes))
        self.ready = True
        self.metrics.ready.set(1)
        table = self.registry.current()
        logger.info("ready: %d tasks, batches of up to %d rows (%s), max input %d tokens",
                    len(table), self.config.max_batch_size, self.config.batching,
                    self.config.max_input_length)

    def begin_drain(self) -> None:
        """Refuse new requests (503); the accepted ones finish."""
        if not self.draining:
            self.draining = True
            self.metrics.ready.set(0)
            logger.info("draining: refusing new requests, finishing %d accepted",
                        self.in_flight)

    @property
    def drained(self) -> bool:
        return self.draining and self.in_flight == 0 and not self.batcher.busy

    async def stop(self) -> None:
        self.begin_drain()
        if self._warming is not None and not self._warming.done():
            self._warming.cancel()
        if self.watcher is not None:
            self.watcher.stop()
        await self.batcher.stop()
        self.executor.shutdown(wait=True)
