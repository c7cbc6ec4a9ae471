"""A closed-loop async load generator for the serving benchmark (loopback only).

`concurrency` clients each send a request, wait for the answer, and send the next, for
`seconds`; each request picks its task by `weights` (uniform, or Zipf's law) and one
input. The server's own metrics, read before and after, give the batches it ran.

Example:
    >>> phase = asyncio.run(run_phase("http://127.0.0.1:8123", tasks, zipf(len(tasks)),
    ...                               texts, seconds=20, concurrency=64))
    >>> phase["requests_per_s"], phase["p99_s"], phase["tasks_per_batch"]
"""

from __future__ import annotations

import asyncio
import time

import httpx
import numpy as np
from prometheus_client.parser import text_string_to_metric_families

#: Zipf's exponent of the skewed popularity.
ZIPF_S = 1.1


def uniform(n: int) -> np.ndarray:
    return np.full(n, 1.0 / n)


def zipf(n: int, s: float = ZIPF_S) -> np.ndarray:
    """Task k (0-based) is asked with probability proportional to ``1 / (k + 1) ** s``."""
    w = 1.0 / np.arange(1, n + 1) ** s
    return w / w.sum()


def metric_value(text: str, name: str) -> float:
    """The value of the unlabeled sample `name` in a ``/metrics`` page (0 when absent)."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                return sample.value
    return 0.0


def batch_counters(text: str, method: str = "decode") -> dict[str, float]:
    """Sums and counts of the batch histograms in a ``/metrics`` page."""
    out = {}
    for family in text_string_to_metric_families(text):
        if family.name in ("softprompt_batch_rows", "softprompt_batch_tasks",
                           "softprompt_batch_padding_ratio"):
            for sample in family.samples:
                if sample.labels.get("method") == method and sample.name.endswith(
                        ("_sum", "_count")):
                    out[sample.name] = sample.value
    return out


async def run_phase(url: str, tasks: list[str], weights, texts: list[str], *, seconds: float,
                    concurrency: int, max_new_tokens: int = 8, max_batch_size: int = 32,
                    seed: int = 0) -> dict:
    """Drive the server for `seconds`; returns throughput, latency and batch figures."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=600, limits=limits) as client:
        before = batch_counters((await client.get("/metrics")).text)
        start = time.perf_counter()
        end = start + seconds

        async def worker(k: int):
            local = np.random.default_rng([seed, k])
            while time.perf_counter() < end:
                task = tasks[int(local.choice(len(tasks), p=weights))]
                body = {"task": task, "inputs": [texts[int(local.integers(len(texts)))]],
                        "max_new_tokens": max_new_tokens}
                t0 = time.perf_counter()
                reply = await client.post("/v1/generate", json=body)
                statuses[reply.status_code] = statuses.get(reply.status_code, 0) + 1
                if reply.status_code == 200:
                    latencies.append(time.perf_counter() - t0)

        await asyncio.gather(*[worker(k) for k in range(concurrency)])
        elapsed = time.perf_counter() - start
        after = batch_counters((await client.get("/metrics")).text)
    delta = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after}
    calls = max(delta.get("softprompt_batch_rows_count", 0.0), 1.0)
    rows = delta.get("softprompt_batch_rows_sum", 0.0) / calls
    lat = np.asarray(latencies) if latencies else np.asarray([np.nan])
    return {
        "requests": int(sum(statuses.values())), "ok": len(latencies),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "seconds": elapsed, "requests_per_s": len(latencies) / elapsed,
        "p50_s": float(np.percentile(lat, 50)), "p99_s": float(np.percentile(lat, 99)),
        "batches": int(calls), "rows_per_batch": rows, "occupancy": rows / max_batch_size,
        "tasks_per_batch": delta.get("softprompt_batch_tasks_sum", 0.0) / calls,
        "padding": delta.get("softprompt_batch_padding_ratio_sum", 0.0) / calls,
    }
