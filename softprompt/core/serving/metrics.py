"""The server's Prometheus metrics (``GET /metrics``), in a registry of its own.

| metric | kind | labels | what |
|---|---|---|---|
| ``softprompt_requests_total`` | counter | task, endpoint, status | answered requests |
| ``softprompt_request_seconds`` | histogram | endpoint | request latency |
| ``softprompt_queue_wait_seconds`` | histogram | | a row's wait before its batch ran |
| ``softprompt_batch_compute_seconds`` | histogram | method | one model call |
| ``softprompt_queue_rows`` | gauge | | rows waiting |
| ``softprompt_batch_rows`` | histogram | method | real rows per model call |
| ``softprompt_batch_tasks`` | histogram | method | distinct tasks per model call |
| ``softprompt_batch_padding_ratio`` | histogram | method | padded share of a call's input positions (filler rows and pad tokens) |
| ``softprompt_batch_shapes`` | gauge | | distinct shapes run so far (compiled backends compile each once) |
| ``softprompt_tasks`` | gauge | | tasks served |
| ``softprompt_prompt_files_total`` | counter | result | prompt files loaded, refused, removed |
| ``softprompt_requests_in_flight`` | gauge | | requests accepted and not yet answered |
| ``softprompt_ready`` | gauge | | 1 when loaded, warmed up and not draining |

Example:
    >>> metrics = ServerMetrics(max_batch_size=32)
    >>> metrics.request("boolq", "/v1/generate", 200, 0.012)
    >>> metrics.exposition()[:40]
"""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

from softprompt.core.serving.shapes import row_buckets

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                   30.0, 60.0)
RATIO_BUCKETS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
CONTENT_TYPE = CONTENT_TYPE_LATEST


class ServerMetrics:
    """Every metric of one server (see the module docstring); the batcher's observer."""

    def __init__(self, max_batch_size: int = 32):
        disable_created_metrics()  # no ``*_created`` series beside every counter and histogram
        self.registry = CollectorRegistry()
        r = self.registry
        sizes = tuple(float(x) for x in row_buckets(max_batch_size))
        self.requests = Counter("softprompt_requests", "Answered requests.",
                                ["task", "endpoint", "status"], registry=r)
        self.request_seconds = Histogram("softprompt_request_seconds", "Request latency.",
                                         ["endpoint"], buckets=LATENCY_BUCKETS, registry=r)
        self.queue_wait = Histogram("softprompt_queue_wait_seconds",
                                    "How long a row waited before its batch ran.",
                                    buckets=LATENCY_BUCKETS, registry=r)
        self.compute = Histogram("softprompt_batch_compute_seconds", "One model call.",
                                 ["method"], buckets=LATENCY_BUCKETS, registry=r)
        self.queue_rows = Gauge("softprompt_queue_rows", "Rows waiting.", registry=r)
        self.batch_rows = Histogram("softprompt_batch_rows", "Real rows per model call.",
                                    ["method"], buckets=sizes, registry=r)
        self.batch_tasks = Histogram("softprompt_batch_tasks",
                                     "Distinct tasks per model call.", ["method"],
                                     buckets=sizes, registry=r)
        self.padding = Histogram("softprompt_batch_padding_ratio",
                                 "Padded share of a model call's input positions.",
                                 ["method"], buckets=RATIO_BUCKETS, registry=r)
        self.shapes = Gauge("softprompt_batch_shapes", "Distinct batch shapes run so far.",
                            registry=r)
        self.tasks = Gauge("softprompt_tasks", "Tasks served.", registry=r)
        self.prompt_files = Counter("softprompt_prompt_files", "Prompt files read.",
                                    ["result"], registry=r)
        self.in_flight = Gauge("softprompt_requests_in_flight",
                               "Requests accepted and not yet answered.", registry=r)
        self.ready = Gauge("softprompt_ready", "1 when the server takes requests.", registry=r)

    # ------------------------------------------------------------------ the app
    def request(self, task: str, endpoint: str, status: int, seconds: float) -> None:
        self.requests.labels(task, endpoint, str(status)).inc()
        self.request_seconds.labels(endpoint).observe(seconds)

    def prompts_read(self, loaded: int, refused: int, removed: int, served: int) -> None:
        """The registry's ``on_change``."""
        for result, count in (("loaded", loaded), ("refused", refused), ("removed", removed)):
            if count:
                self.prompt_files.labels(result).inc(count)
        self.tasks.set(served)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    # ------------------------------------------------------------------ the batcher
    def on_queue(self, rows: int) -> None:
        self.queue_rows.set(rows)

    def on_batch(self, group, tasks, stats, waits, seconds: float) -> None:
        method = str(group[0])
        for wait in waits:
            self.queue_wait.observe(wait)
        self.compute.labels(method).observe(seconds)
        self.batch_rows.labels(method).observe(len(tasks))
        self.batch_tasks.labels(method).observe(len(set(tasks)))
        if stats is not None:
            self.padding.labels(method).observe(stats.padding)
