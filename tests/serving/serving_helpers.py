"""Prompts, servers and clients shared by the serving tests (a module of its own, so that
test files import it by a name no other directory uses)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

LABELS = ["meat", "fish", "seeds", "grass", "nuts", "bugs"]
#: Five tasks with prompts of different lengths (right-aligned in the served variable);
#: ``animal_food`` is the name the API's examples use.
TASKS = {"alpha": 4, "beta": 6, "gamma": 8, "delta": 10, "animal_food": 5}
#: What every in-process test server is limited to (few shapes: quick to compile).
LIMITS = {"max_batch_size": 4, "max_input_length": 32, "max_new_tokens_limit": 16}
WORDS = ("the cow dog cat fox bird walks runs to from a barn river field tree eats "
         "sleeps near green red big small").split()


def inputs(n: int, seed: int = 0) -> list[str]:
    """`n` short sentences (one input width bucket)."""
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=int(rng.integers(3, 7)))) + "." for _ in range(n)]


def write_prompt(folder: Path, name: str, model, length: int, seed: int, **extra) -> Path:
    """A prompt of `length` vocabulary embeddings, saved as training saves one (its sidecar
    names the model, the labels and the decoding length)."""
    from softprompt.core.io.prompt_files import save_prompt

    rng = np.random.default_rng(seed)
    array = model.embedding_matrix()[rng.integers(3, model.backbone.vocabulary_size, length)]
    meta = {"backbone": model.identity(), "prompt_length": length, "task": "animal_food",
            "labels": LABELS, "max_target_length": 6, **extra}
    return save_prompt(folder / f"{name}.npy", array, **meta)


def config(folder, **overrides):
    from softprompt.core.serving.config import ServeConfig

    options = {"preset": "softprompt_tiny", "prompts": folder, "batch_timeout_ms": 50.0,
               "queue_timeout_ms": 600_000.0, **LIMITS, **overrides}
    return ServeConfig(**options)


@contextlib.asynccontextmanager
async def served(runtime, ready: bool = True):
    """The app of `runtime` in-process (its lifespan running) and an httpx client for it."""
    import httpx

    from softprompt.core.serving.app import create_app

    app = create_app(runtime)
    async with app.router.lifespan_context(app):
        if ready:
            for _ in range(600):
                if runtime.ready:
                    break
                await asyncio.sleep(0.1)
            assert runtime.ready, "the in-process server did not warm up"
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver",
                                     timeout=120) as client:
            yield client


def metric(text: str, name: str, **labels) -> float:
    """The sum of the Prometheus samples `name` whose labels include `labels`."""
    from prometheus_client.parser import text_string_to_metric_families

    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


def offline_predict(folder: Path, records: list[dict], method: str, tmp: Path,
                    max_target_length: int | None = None) -> list[dict]:
    """What ``softprompt predict`` answers for `records` with every prompt in `folder`."""
    from click.testing import CliRunner

    from softprompt.cli.main import cli

    tmp.mkdir(parents=True, exist_ok=True)
    source = tmp / f"requests-{method}-{max_target_length}.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in records))
    out = tmp / f"predictions-{method}-{max_target_length}.jsonl"
    args = ["predict", "--prompt", str(folder), "--input", str(source), "--output", str(out),
            "--method", method, "--batch-size", "4", "--max-input-length",
            str(LIMITS["max_input_length"])]
    if max_target_length is not None:
        args += ["--max-target-length", str(max_target_length)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in out.read_text().splitlines()]


# ---------------------------------------------------------------------- a real server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """``softprompt serve`` in a subprocess on 127.0.0.1 (the suite's backend)."""

    def __init__(self, folder: Path, log: Path, *args: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[2]),
                                             env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        command = [sys.executable, "-m", "softprompt.cli.main", "serve", "--preset",
                   "softprompt_tiny", "--prompts", str(folder), "--host", "127.0.0.1",
                   "--port", str(self.port), *args]
        self._log = open(log, "wb")
        self.process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT,
                                        env=env)

    def wait_ready(self, timeout: float = 300) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the server exited {self.process.returncode}:\n"
                                     + self.log())
            try:
                if httpx.get(self.url + "/ready", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise AssertionError("the server did not get ready:\n" + self.log())

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)
        self._log.close()
