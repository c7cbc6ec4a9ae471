"""Worker processes, and the interleaved measurement that keeps ratios honest on a busy machine.

keras fixes its backend per process, so every backend gets a worker process of its own
(``python -m benchmarks.harness.worker`` with ``KERAS_BACKEND`` set) and PEFT/transformers another.
Workers stay alive through the run, holding their models; the coordinator talks to them in
JSON lines. `interleave` times the contenders of one comparison by alternating single
repeats across the workers (the order rotates every round), so that load from other users
hits every contender alike, and reports medians. Only one worker computes at any moment.

Example:
    >>> with Pool(out_dir) as pool:
    ...     jax = pool.worker("jax")
    ...     jax.setup("train", "keras.train_step", batch=8, ...)
    ...     results = interleave([Contender("jax step", jax, "train", "step")], rounds=5)
"""

from __future__ import annotations

import dataclasses
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

#: the repository root (the workers run there, with it on ``PYTHONPATH``)
ROOT = Path(__file__).resolve().parents[2]
#: The worker that runs transformers + PEFT (torch, no keras).
HF = "hf"


class WorkerError(RuntimeError):
    """A worker reported an error, or died."""


def thread_env(threads: int | None) -> dict:
    """Environment that pins torch and TensorFlow to `threads` intra-op threads.

    XLA's CPU runtime (JAX) ignores its thread flags, so `benchmarks.harness.worker` also
    confines every worker to that many cores (``SOFTPROMPT_BENCH_THREADS``).
    """
    if threads is None:
        return {}
    n = str(int(threads))
    return {"OMP_NUM_THREADS": n, "MKL_NUM_THREADS": n, "TF_NUM_INTRAOP_THREADS": n,
            "TF_NUM_INTEROP_THREADS": "1", "SOFTPROMPT_BENCH_THREADS": n}


class Worker:
    """One worker process: ``keras`` on a backend, or ``hf`` (transformers + PEFT)."""

    def __init__(self, name: str, log_dir: Path, env: dict | None = None):
        self.name = name
        self.log_path = Path(log_dir) / f"worker-{name}.log"
        environ = dict(os.environ)
        environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        environ["PYTHONPATH"] = os.pathsep.join(
            [str(ROOT)] + [p for p in environ.get("PYTHONPATH", "").split(os.pathsep) if p]
        )
        if name != HF:
            environ["KERAS_BACKEND"] = name
        environ.update(env or {})
        self._log = open(self.log_path, "w")  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.harness.worker", name],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
            cwd=str(ROOT), env=environ, text=True, bufsize=1,
        )
        self.cases: set[str] = set()

    def call(self, op: str, **message) -> dict:
        if self.proc.poll() is not None:
            raise WorkerError(f"worker {self.name} has exited (see {self.log_path})")
        self.proc.stdin.write(json.dumps({"op": op, **message}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise WorkerError(f"worker {self.name} died during {op!r} (see {self.log_path})")
        reply = json.loads(line)
        if not reply.pop("ok"):
            raise WorkerError(f"{self.name}: {reply.get('error')}")
        return reply

    def setup(self, key: str, case: str, **params) -> dict:
        """Create case `key` (a `benchmarks.cases` name) in the worker; returns its set-up info."""
        reply = self.call("setup", key=key, case=case, params=params)
        self.cases.add(key)
        return reply

    def run(self, key: str, variant: str) -> dict:
        return self.call("run", key=key, variant=variant)

    def info(self, key: str) -> dict:
        return self.call("info", key=key)

    def drop(self, key: str) -> None:
        if key in self.cases and self.proc.poll() is None:
            self.call("drop", key=key)
        self.cases.discard(key)

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(json.dumps({"op": "exit"}) + "\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def frameworks_env(only_backend: bool) -> dict:
    """``SOFTPROMPT_ONLY_BACKEND`` for every worker: 1 keeps the frameworks of the other keras
    backends out of each keras worker (`softprompt.backends.exclusive`), 0 lets keras and
    keras-hub import every installed one (what a process without the variable does)."""
    from softprompt.backends.exclusive import ONLY_BACKEND_ENV

    return {ONLY_BACKEND_ENV: "1" if only_backend else "0"}


class Pool:
    """The run's workers, started on first use and closed together.

    `threads` pins every worker's intra-op threads (`thread_env`); None keeps each
    framework's default. `only_backend` keeps the other backends' frameworks out of each
    keras worker (`frameworks_env`).
    """

    def __init__(self, log_dir: Path, threads: int | None = None, only_backend: bool = True):
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.env = {**thread_env(threads), **frameworks_env(only_backend)}
        self.workers: dict[str, Worker] = {}

    def worker(self, name: str) -> Worker:
        if name not in self.workers:
            self.workers[name] = Worker(name, self.log_dir, self.env)
        return self.workers[name]

    def start(self, names) -> None:
        """Start several workers at once (their imports overlap)."""
        for name in names:
            self.worker(name)

    def close(self) -> None:
        for worker in self.workers.values():
            worker.close()
        self.workers.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


@dataclasses.dataclass
class Contender:
    """One thing to time: variant `variant` of case `key` in `worker`."""

    label: str
    worker: Worker
    key: str
    variant: str
    #: untimed calls before the rounds (None: `interleave`'s `warmup`)
    warmup: int | None = None


@dataclasses.dataclass
class Measurement:
    """The repeats of one contender: seconds per call, the median, the last reply's extras."""

    label: str
    seconds: list[float] = dataclasses.field(default_factory=list)
    extra: dict = dataclasses.field(default_factory=dict)
    error: str | None = None

    @property
    def median(self) -> float | None:
        return statistics.median(self.seconds) if self.seconds else None

    def to_dict(self) -> dict:
        return {"median_s": self.median, "seconds": self.seconds, "extra": self.extra,
                "error": self.error}


def interleave(contenders: list[Contender], rounds: int, warmup: int = 1,
               log=None) -> dict[str, Measurement]:
    """Time `contenders` in alternation: `warmup` untimed calls each, then `rounds` rounds.

    Round r runs every contender once, starting at contender ``r mod n``. A contender
    that fails is recorded with its error and left out of later rounds.
    """
    results = {c.label: Measurement(c.label) for c in contenders}
    alive = list(contenders)

    def call(c: Contender, timed: bool) -> None:
        m = results[c.label]
        try:
            reply = c.worker.run(c.key, c.variant)
        except WorkerError as err:
            m.error = str(err)
            alive.remove(c)
            if log:
                log(f"  {c.label}: FAILED: {err}")
            return
        if timed:
            m.seconds.append(float(reply.pop("seconds")))
        m.extra = reply

    for i in range(max([warmup] + [c.warmup or 0 for c in contenders])):
        for c in list(alive):
            if i >= (warmup if c.warmup is None else c.warmup):
                continue
            started = time.perf_counter()
            call(c, timed=False)
            if log and c in alive:
                log(f"  warm-up {c.label}: {time.perf_counter() - started:.1f}s")
    for r in range(rounds):
        if not alive:
            break
        k = r % len(alive)
        for c in alive[k:] + alive[:k]:
            if c in alive:
                call(c, timed=True)
        if log:
            done = ", ".join(f"{lbl} {m.seconds[-1]:.3g}s" for lbl, m in results.items()
                             if m.seconds and len(m.seconds) == r + 1)
            log(f"  round {r + 1}/{rounds}: {done}")
    return results
