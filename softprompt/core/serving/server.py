"""Run the app on uvicorn, with a graceful shutdown: SIGTERM drains, then exits 0.

On SIGTERM (or Ctrl-C) the server keeps listening but answers new model requests 503
(and ``/ready`` 503, so a load balancer takes it out), finishes every request it had
accepted, and then stops with exit code 0. A second signal stops it at once.

Example:
    >>> serve(ServeConfig(preset="softprompt_tiny", prompts="prompts/", port=8000))
"""

from __future__ import annotations

import logging
import sys

import uvicorn

from softprompt.core.serving.config import ServeConfig

logger = logging.getLogger("softprompt.serve")

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class DrainingServer(uvicorn.Server):
    """uvicorn's server with the first SIGTERM/SIGINT turned into a drain."""

    def __init__(self, config: uvicorn.Config, runtime):
        super().__init__(config)
        self.runtime = runtime

    def handle_exit(self, sig, frame) -> None:
        if self.runtime.draining:  # a second signal: stop now (uvicorn's own handling)
            self.force_exit = True
            super().handle_exit(sig, frame)
            return
        self.runtime.begin_drain()

    async def on_tick(self, counter: int) -> bool:
        if self.runtime.failed:
            return True
        if self.runtime.drained:
            logger.info("drained: every accepted request was answered")
            return True
        return await super().on_tick(counter)


def configure_logging(level: int = logging.INFO) -> None:
    """One line per event on stderr for softprompt's logger (uvicorn configures its own)."""
    log = logging.getLogger("softprompt")
    if not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        log.addHandler(handler)
    log.setLevel(level)
    log.propagate = False


def serve(config: ServeConfig) -> int:
    """Load the model and the prompts, serve until a signal; returns the exit code."""
    from softprompt.core.serving.app import create_app
    from softprompt.core.serving.runtime import Runtime

    configure_logging()
    config.check_prompts_dir()
    runtime = Runtime(config)
    app = create_app(runtime)
    server = DrainingServer(uvicorn.Config(
        app, host=config.host, port=config.port, access_log=config.access_log,
        log_level="info", lifespan="on", timeout_keep_alive=config.keep_alive_s,
        timeout_graceful_shutdown=30), runtime)
    logger.info("serving %s on http://%s:%d (%d tasks from %s)", config.preset, config.host,
                config.port, len(runtime.registry.current()), config.prompts)
    server.run()
    if runtime.failed:
        return 1
    return 0 if server.started else 1
