"""Every knob of `softprompt serve`, with its default, in one place (the CLI imports them).

Example:
    >>> config = ServeConfig(preset="softprompt_tiny", prompts="runs/prompts", max_batch_size=16)
    >>> config.batch_timeout_s
    0.01
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

#: ``--batching``: ``mixed`` puts rows of any tasks in one batch; ``per-task`` only rows of
#: one task (what one-adapter-per-batch servers do; the benchmark's baseline).
BATCHING = ("mixed", "per-task")


@dataclasses.dataclass(frozen=True)
class ServeConfig:
    """What one server runs with.

    Attributes:
        preset: the frozen model (anything `PromptedT5.from_preset` takes).
        prompts: the folder of prompt files; ``NAME.npy`` (with its sidecar) is task ``NAME``.
        host, port: where uvicorn listens.
        max_batch_size: rows (input x prompt) per model call at most.
        batch_timeout_ms: how long the oldest queued row waits for companions.
        max_queue: rows that may wait at once; more is refused with 429.
        queue_timeout_ms: a row that waited longer is answered 504.
        max_input_length: the longest input in tokens (``</s>`` included); longer is 422.
        max_new_tokens_limit: the most tokens a request may ask to decode.
        watch: reload prompt files added, replaced or removed while serving.
        batching: ``mixed`` or ``per-task`` (`BATCHING`).
        allow_mismatch: serve prompts whose sidecar names another backbone.
        keep_alive_s: how long an idle HTTP/1.1 connection stays open; set it above the
            idle timeout of any proxy or load balancer in front (60 s for AWS ALB), or that
            proxy may send a request on a connection the server is closing.
        access_log: uvicorn's per-request log lines.
        ray: serve with Ray Serve (``replicas`` copies of the app).
        replicas: Ray Serve replicas.
    """

    preset: str
    prompts: Path
    host: str = "127.0.0.1"
    port: int = 8000
    max_batch_size: int = 32
    batch_timeout_ms: float = 10.0
    max_queue: int = 1024
    queue_timeout_ms: float = 30_000.0
    max_input_length: int = 512
    max_new_tokens_limit: int = 256
    watch: bool = False
    batching: str = "mixed"
    allow_mismatch: bool = False
    keep_alive_s: float = 5.0
    access_log: bool = False
    ray: bool = False
    replicas: int = 1

    def __post_init__(self):
        object.__setattr__(self, "prompts", Path(self.prompts))
        positive = ("max_batch_size", "max_queue", "max_input_length", "max_new_tokens_limit",
                    "replicas")
        for name in positive:
            if int(getattr(self, name)) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be at least 1, "
                                 f"got {getattr(self, name)}")
        if self.batch_timeout_ms < 0 or self.queue_timeout_ms <= 0:
            raise ValueError("--batch-timeout-ms must be >= 0 and --queue-timeout-ms > 0")
        if not self.keep_alive_s > 0:
            raise ValueError(f"--keep-alive-s must be > 0, got {self.keep_alive_s}")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"--port must be in 0..65535, got {self.port}")
        if self.batching not in BATCHING:
            raise ValueError(f"--batching must be one of {', '.join(BATCHING)}, "
                             f"got {self.batching!r}")
        if self.max_queue < self.max_batch_size:
            raise ValueError(f"--max-queue ({self.max_queue}) must hold at least one batch "
                             f"(--max-batch-size {self.max_batch_size})")

    @property
    def batch_timeout_s(self) -> float:
        return self.batch_timeout_ms / 1000.0

    @property
    def queue_timeout_s(self) -> float:
        return self.queue_timeout_ms / 1000.0

    def check_prompts_dir(self) -> None:
        """Raise a one-line error when the prompt folder is missing."""
        if not self.prompts.is_dir():
            raise NotADirectoryError(f"--prompts {self.prompts}: no such directory")
