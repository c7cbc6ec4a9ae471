"""The same app on Ray Serve: N replicas, each the whole server (model, every prompt).

Replicas are stateless — each holds the frozen model and every prompt of the folder (so
the folder must be readable where they run) — and Ray's proxy spreads requests over
them. Each replica batches its own requests; ``/metrics`` through the proxy shows the
replica that answered (scrape replicas directly, or use Ray's own metrics, for all).
Needs ``pip install 'softprompt[ray]'``.

Example:
    >>> serve_with_ray(ServeConfig(preset="softprompt_tiny", prompts="prompts/", ray=True,
    ...                            replicas=2))
    >>> # or inside a Ray application of your own:
    >>> serve.run(deployment(config), route_prefix="/")
"""

from __future__ import annotations

import logging
import math
import os
import signal
import threading

from softprompt import backends
from softprompt.core.serving.config import ServeConfig

logger = logging.getLogger("softprompt.serve")


def _ray():
    try:
        import ray
        from ray import serve
    except ImportError:
        raise ValueError("--ray needs Ray Serve: pip install 'softprompt[ray]'") from None
    return ray, serve


class SoftpromptReplica:
    """One replica: a `Runtime` and its app (Ray Serve builds the app per replica)."""

    def __init__(self, config: ServeConfig, dtype: str = "float32"):
        from softprompt import backends
        from softprompt.core.serving.runtime import Runtime
        from softprompt.core.serving.server import configure_logging

        configure_logging()
        if dtype != "float32":
            backends.current().set_dtype(dtype)
        self.runtime = Runtime(config)

    def __serve_build_asgi_app__(self):
        from softprompt.core.serving.app import create_app

        return create_app(self.runtime)

    async def check_health(self) -> None:
        if self.runtime.failed:
            raise RuntimeError("the warm-up failed")


def deployment(config: ServeConfig, dtype: str = "float32", backend: str | None = None,
               actor_options: dict | None = None):
    """A bound Ray Serve deployment of ``config.replicas`` replicas, for ``serve.run``.

    Replicas reserve no CPU by default; `actor_options` adds Ray actor options, e.g.
    ``{"num_gpus": 1}`` to give each replica a GPU of its own.
    """
    _, serve = _ray()
    env = {**backends.child_environment(backend),
           "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3")}
    if os.environ.get("PYTHONPATH"):
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    replica = serve.deployment(serve.ingress()(SoftpromptReplica), name="softprompt")
    return replica.options(
        num_replicas=config.replicas, health_check_period_s=5, graceful_shutdown_timeout_s=60,
        max_ongoing_requests=config.max_queue,
        ray_actor_options={"num_cpus": 0, "runtime_env": {"env_vars": env},
                           **(actor_options or {})},
    ).bind(config, dtype)


def serve_with_ray(config: ServeConfig) -> int:
    """Start (or join, with ``RAY_ADDRESS``) a Ray cluster, serve until SIGTERM/SIGINT."""
    ray, serve = _ray()
    import keras

    from softprompt import backends
    from softprompt.core.serving.server import configure_logging

    configure_logging()
    dtype = keras.config.dtype_policy().name
    ray.init(address=os.environ.get("RAY_ADDRESS"), include_dashboard=False,
             logging_level=logging.WARNING)
    serve.start(http_options={"host": config.host, "port": config.port,
                              "keep_alive_timeout_s": math.ceil(config.keep_alive_s)})
    serve.run(deployment(config, dtype, backends.name()), name="softprompt", route_prefix="/")
    logger.info("serving %s with Ray Serve on http://%s:%d (%d replicas)", config.preset,
                config.host, config.port, config.replicas)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    logger.info("shutting down: the replicas finish their accepted requests")
    serve.shutdown()
    ray.shutdown()
    return 0
