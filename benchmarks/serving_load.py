"""Serving load benchmark: mixed-task batching against one task per batch, on loopback.

For each number of tasks (1, 8, 64) one server (`benchmarks.serving.server`: the app of
``softprompt serve`` over a random T5-small) serves a closed loop of concurrent
``/v1/generate`` requests whose tasks follow a uniform or a Zipf popularity. The two
contenders are the same process switched between ``--batching mixed`` and
``--batching per-task`` (what one-adapter-per-batch servers do), in interleaved rounds
after an untimed warm-up (compiles happen there); ratios are medians of per-round ratios.
Reported: requests/s, p50/p99 latency, batch occupancy (real rows / max batch size),
distinct tasks per batch; the resident memory of the server holding 64 prompts against 64
copies of the model (computed from its weights); and the resident memory of a server of
the embedded model over a soak of steady load.

    python -m benchmarks.serving_load                          # about 30 minutes
    python -m benchmarks.serving_load --tasks 8 --rounds 1 --soak-minutes 0   # a quick look
    python -m benchmarks.serving_load --backend torch --out /tmp/serving

Writes ``results.json``, ``results.md`` and ``lscpu.txt`` to ``benchmarks/results/serving``
(git-ignored) or ``--out``; server logs to ``<out>/logs``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np

from benchmarks.harness.workload import random_texts
from benchmarks.serving.client import run_phase, uniform, zipf

ROOT = Path(__file__).resolve().parents[1]
MODES = ("mixed", "per-task")
POPULARITY = {"uniform": uniform, "zipf": zipf}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """`benchmarks.serving.server` in a subprocess on 127.0.0.1."""

    def __init__(self, out: Path, backend: str, model: str, tasks: int, *extra: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.info_path = out / f"info-{model}-{tasks}.json"
        (out / "logs").mkdir(parents=True, exist_ok=True)
        self.log = open(out / "logs" / f"server-{model}-{tasks}.log", "wb")
        env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3",
               "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.serving.server", "--model", model, "--tasks",
             str(tasks), "--port", str(self.port), "--info", str(self.info_path), *extra],
            stdout=self.log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)

    def wait_ready(self, timeout: float = 1800) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited {self.process.returncode}; see "
                                   f"{self.log.name}")
            try:
                if httpx.get(self.url + "/ready", timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(1)
        raise RuntimeError("the server did not get ready")

    def tasks(self) -> list[str]:
        return sorted(m["id"] for m in httpx.get(self.url + "/v1/models").json()["data"])

    def set_mode(self, mode: str) -> None:
        httpx.post(self.url + "/bench/batching", json={"mode": mode}).raise_for_status()

    def rss_mb(self) -> float:
        import psutil

        return psutil.Process(self.process.pid).memory_info().rss / 2**20

    def shapes(self) -> float:
        """Distinct batch shapes run so far (each compiled once)."""
        from benchmarks.serving.client import metric_value

        return metric_value(httpx.get(self.url + "/metrics").text, "softprompt_batch_shapes")

    def info(self) -> dict:
        return json.loads(self.info_path.read_text())

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        self.log.close()
        return code


def texts_for(n: int, seed: int = 0) -> list[str]:
    """Inputs of 20 to 31 tokens (the 32-token width bucket) for `WordTokenizer`."""
    rng = np.random.default_rng(seed)
    return random_texts(rng.integers(20, 32, size=n), seed=seed)


def compare(args, out: Path, tasks: int, log) -> dict:
    server = Server(out, args.backend, args.model, tasks, "--max-batch-size",
                    str(args.max_batch_size), "--prompt-length", str(args.prompt_length))
    try:
        server.wait_ready()
        names = server.tasks()
        texts = texts_for(256)
        phase = dict(concurrency=args.concurrency, max_new_tokens=args.max_new_tokens,
                     max_batch_size=args.max_batch_size)
        for attempt in range(8):  # until a pass compiles nothing new (no new batch shape)
            shapes = server.shapes()
            for mode in MODES:
                for weights in POPULARITY.values():
                    server.set_mode(mode)
                    asyncio.run(run_phase(server.url, names, weights(len(names)), texts,
                                          seconds=args.warmup, seed=100 + attempt, **phase))
            log(f"  warm-up pass {attempt + 1}: {server.shapes():.0f} batch shapes")
            if server.shapes() == shapes:
                break
        rounds = []
        for r in range(args.rounds):
            order = [(m, p) for p in POPULARITY for m in MODES]
            order = order[r % len(order):] + order[:r % len(order)]
            results = {}
            for mode, popularity in order:
                server.set_mode(mode)
                result = asyncio.run(run_phase(server.url, names,
                                               POPULARITY[popularity](len(names)), texts,
                                               seconds=args.seconds, seed=r, **phase))
                results[f"{mode}/{popularity}"] = result
                log(f"  {tasks} tasks, round {r + 1}, {mode:8s} {popularity:7s}: "
                    f"{result['requests_per_s']:6.2f} req/s, p50 {result['p50_s']:.2f} s, "
                    f"p99 {result['p99_s']:.2f} s, {result['rows_per_batch']:.1f} rows and "
                    f"{result['tasks_per_batch']:.1f} tasks per batch, {result['statuses']}")
            rounds.append(results)
        rss = server.rss_mb()
        info = server.info()
    finally:
        code = server.stop()
    return {"tasks": tasks, "rounds": rounds, "rss_mb": rss, "info": info, "exit_code": code}


def summarize(runs: list[dict]) -> list[dict]:
    rows = []
    for run in runs:
        for popularity in POPULARITY:
            per = {m: [r[f"{m}/{popularity}"] for r in run["rounds"]] for m in MODES}
            med = {m: {k: statistics.median(x[k] for x in per[m]) for k in
                       ("requests_per_s", "p50_s", "p99_s", "occupancy", "tasks_per_batch",
                        "rows_per_batch")} for m in MODES}
            ratios = [a["requests_per_s"] / b["requests_per_s"]
                      for a, b in zip(per["mixed"], per["per-task"])]
            rows.append({"tasks": run["tasks"], "popularity": popularity, **{
                f"{m}_{k}": v for m in MODES for k, v in med[m].items()},
                "throughput_ratio": statistics.median(ratios), "ratios": ratios})
    return rows


async def _soak(url, names, texts, minutes, concurrency, sample) -> list[tuple[float, float]]:
    samples: list[tuple[float, float]] = []
    start = time.monotonic()

    async def sampler():
        while time.monotonic() - start < minutes * 60:
            samples.append((time.monotonic() - start, sample()))
            await asyncio.sleep(10)

    await asyncio.gather(sampler(), run_phase(url, names, uniform(len(names)), texts,
                                              seconds=minutes * 60, concurrency=concurrency,
                                              max_new_tokens=8, max_batch_size=32))
    return samples


def soak(args, out: Path, log) -> dict:
    server = Server(out, args.backend, "softprompt_tiny", 8)
    try:
        server.wait_ready()
        texts = [" ".join(["the cow walks to the barn near the river"] * k) for k in (1, 2, 3)]
        samples = asyncio.run(_soak(server.url, server.tasks(), texts, args.soak_minutes, 16,
                                    server.rss_mb))
    finally:
        code = server.stop()
    summary = soak_summary(samples)
    log(f"soak: {len(samples)} samples, RSS {summary['half_mb']:.0f} MB at half time, "
        f"{summary['last_mb']:.0f} MB at the end (max {summary['max_mb']:.0f}), "
        f"{summary['slope_mb_per_min']:+.2f} MB/min over the second half")
    return {"minutes": args.soak_minutes, "samples": samples, "exit_code": code, **summary}


def soak_summary(samples) -> dict:
    """Resident memory of a soak: at the start, at half time, at the end, the largest, and
    the slope over the second half (the first holds the warm-up: compiling, caches filling)."""
    t = np.array([s[0] for s in samples]) / 60.0
    rss = np.array([s[1] for s in samples])
    late = t >= t[-1] / 2
    slope = float(np.polyfit(t[late], rss[late], 1)[0]) if late.sum() >= 2 else float("nan")
    return {"start_mb": float(rss[0]), "half_mb": float(rss[late][0]),
            "last_mb": float(rss[-1]), "max_mb": float(rss.max()), "slope_mb_per_min": slope}


def markdown(meta: dict, rows: list[dict], runs: list[dict], soaked: dict | None) -> str:
    lines = [f"# Serving load benchmark ({meta['model']}, {meta['backend']})", "",
             f"CPU: {meta['machine']['cpu']} ({meta['machine']['cores']} cores); "
             f"load average before/after: {meta['load_before']} / {meta['load_after']}; "
             f"{meta['machine']['versions']}", "",
             f"Closed loop of {meta['concurrency']} concurrent clients, `/v1/generate` with one "
             f"input of 20-31 tokens, {meta['max_new_tokens']} new tokens, prompts of "
             f"{meta['prompt_length']} tokens, batches of up to {meta['max_batch_size']} rows; "
             f"{meta['rounds']} interleaved rounds of {meta['seconds']:g} s per contender "
             "(medians).", "",
             "| tasks | popularity | mixed req/s | per-task req/s | mixed / per-task | "
             "p50 mixed / per-task (s) | p99 mixed / per-task (s) | occupancy mixed / per-task "
             "| tasks per batch mixed / per-task |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['tasks']} | {r['popularity']} | {r['mixed_requests_per_s']:.2f} | "
            f"{r['per-task_requests_per_s']:.2f} | **{r['throughput_ratio']:.2f}x** | "
            f"{r['mixed_p50_s']:.2f} / {r['per-task_p50_s']:.2f} | "
            f"{r['mixed_p99_s']:.2f} / {r['per-task_p99_s']:.2f} | "
            f"{r['mixed_occupancy']:.2f} / {r['per-task_occupancy']:.2f} | "
            f"{r['mixed_tasks_per_batch']:.1f} / {r['per-task_tasks_per_batch']:.1f} |")
    lines += ["", "| resident memory | MB |", "|---|---|"]
    for run in runs:
        info = run["info"]
        copies = info["tasks"] * info["weight_bytes"] / 2**20
        lines.append(f"| one server, {info['tasks']} prompts ({info['prompt_bytes'] / 2**20:.1f} "
                     f"MB of prompts, measured RSS) | {run['rss_mb']:.0f} |")
        lines.append(f"| {info['tasks']} copies of the model's weights "
                     f"({info['parameters'] / 1e6:.1f} M parameters, float32; computed) | "
                     f"{copies:.0f} |")
    if soaked:
        lines += ["", f"Soak ({soaked['minutes']:g} min, embedded model, 8 tasks, 16 clients): "
                      f"RSS {soaked['start_mb']:.0f} MB at the start, {soaked['half_mb']:.0f} "
                      f"MB at half time, {soaked['last_mb']:.0f} MB at the end (max "
                      f"{soaked['max_mb']:.0f}); {soaked['slope_mb_per_min']:+.2f} MB/min over "
                      "the second half."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default=os.environ.get("KERAS_BACKEND", "jax"))
    parser.add_argument("--model", default="t5-small")
    parser.add_argument("--tasks", default="1,8,64")
    parser.add_argument("--prompt-length", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--max-batch-size", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--warmup", type=float, default=8.0,
                        help="seconds of each warm-up phase (repeated until nothing compiles)")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--soak-minutes", type=float, default=10.0)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "serving")
    parser.add_argument("--report", action="store_true",
                        help="only write results.md again from <out>/results.json")
    args = parser.parse_args(argv)
    from benchmarks.run import machine_info

    out = args.out
    if args.report:
        kept = json.loads((out / "results.json").read_text())
        soaked = kept["soak"] and {**kept["soak"], **soak_summary(kept["soak"]["samples"])}
        text = markdown(kept["meta"], kept["summary"], kept["runs"], soaked)
        (out / "results.md").write_text(text)
        print(text)
        return
    out.mkdir(parents=True, exist_ok=True)
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    (out / "lscpu.txt").write_text(lscpu)
    load_before = "/".join(f"{v:.1f}" for v in os.getloadavg())

    def log(text):
        print(text, flush=True)

    runs = []
    for tasks in [int(x) for x in args.tasks.split(",")]:
        log(f"{tasks} tasks:")
        runs.append(compare(args, out, tasks, log))
    rows = summarize(runs)
    soaked = soak(args, out, log) if args.soak_minutes > 0 else None
    meta = {"backend": args.backend, "model": args.model, "machine": machine_info(),
            "lscpu_flags": next((x.split(":", 1)[1].strip() for x in lscpu.splitlines()
                                 if x.startswith("Flags")), ""),
            "load_before": load_before,
            "load_after": "/".join(f"{v:.1f}" for v in os.getloadavg()),
            **{k: getattr(args, k) for k in ("concurrency", "max_batch_size", "max_new_tokens",
                                             "prompt_length", "seconds", "rounds")}}
    (out / "results.json").write_text(json.dumps(
        {"meta": meta, "summary": rows, "runs": runs, "soak": soaked}, indent=2))
    text = markdown(meta, rows, runs, soaked)
    (out / "results.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
