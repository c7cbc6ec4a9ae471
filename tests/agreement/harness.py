"""The parent side: one worker process per backend, the same request to each.

`Pool` starts ``worker.py`` once per backend (``KERAS_BACKEND`` set in its
environment), sends every request to all of them before reading any reply
(so the three backends compute concurrently), and returns the replies by
backend name. `Report` keeps the largest deviation seen per property and
backend pair for the end-of-session table.

Example:
    >>> pool = Pool(["jax", "torch", "tensorflow"], log_dir)
    >>> out = pool.run({"op": "forward", "case": case})     # {"jax": {...}, ...}
    >>> pool.close()
"""

from __future__ import annotations

import itertools
import json
import os
import pickle
import select
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

BACKENDS = ("jax", "torch", "tensorflow")
#: Seconds one request may take before its worker is declared hung.
TIMEOUT_S = float(os.environ.get("SOFTPROMPT_AGREEMENT_TIMEOUT", "900"))
WORKER = Path(__file__).with_name("worker.py")
REPO = Path(__file__).resolve().parents[2]


class WorkerError(RuntimeError):
    """A worker raised (the message holds its traceback) or died."""


class Worker:
    """One backend's worker process."""

    def __init__(self, backend: str, log_dir: Path):
        self.backend = backend
        self.log_path = Path(log_dir) / f"worker-{backend}.log"
        env = dict(os.environ)
        env["KERAS_BACKEND"] = backend
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(REPO), env.get("PYTHONPATH", "")) if p
        )
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, str(WORKER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self._log, env=env, cwd=str(REPO),
        )
        self.info: dict = {}
        self.busy_s = 0.0  # time spent computing, as the worker measured it
        self.op_s: dict[str, list] = {}  # op -> [count, seconds, cpu seconds]
        self.cpu_s = 0.0
        self._pending = ""

    def send(self, request) -> None:
        try:
            pickle.dump(request, self.proc.stdin, protocol=pickle.HIGHEST_PROTOCOL)
            self.proc.stdin.flush()
            self._pending = request.get("op", "")
        except (BrokenPipeError, OSError) as err:
            raise WorkerError(self._died(f"cannot send to the {self.backend} worker: {err}")) from err

    def receive(self):
        # One reply per request and nothing after it, so the pipe's buffer is
        # empty here and `select` sees whether the reply has begun to arrive.
        ready, _, _ = select.select([self.proc.stdout], [], [], TIMEOUT_S)
        if not ready:
            self.proc.kill()
            raise WorkerError(self._died(f"the {self.backend} worker hung for {TIMEOUT_S:.0f}s"))
        try:
            reply = pickle.load(self.proc.stdout)
        except EOFError as err:
            raise WorkerError(self._died(f"the {self.backend} worker died")) from err
        seconds = reply.get("seconds", 0.0)
        self.busy_s += seconds
        cpu = reply.get("cpu_s", 0.0)
        self.cpu_s += cpu
        stat = self.op_s.setdefault(self._pending, [0, 0.0, 0.0])
        stat[0] += 1
        stat[1] += seconds
        stat[2] += cpu
        if "error" in reply:
            raise WorkerError(f"[{self.backend}] {reply['error']}")
        return reply["ok"]

    def _died(self, what: str) -> str:
        self._log.flush()
        tail = self.log_path.read_text(errors="replace")[-3000:]
        return f"{what} (exit code {self.proc.poll()}); log {self.log_path}:\n{tail}"

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.send({"op": "exit"})
                self.proc.stdin.close()
                self.proc.wait(timeout=30)
            except (WorkerError, subprocess.TimeoutExpired, OSError):
                self.proc.kill()
                self.proc.wait()
        self._log.close()


class Pool:
    """The workers of several backends, used together."""

    def __init__(self, backends=BACKENDS, log_dir: Path | None = None):
        log_dir = Path(log_dir or ".")
        started = time.perf_counter()
        self.workers = {b: Worker(b, log_dir) for b in backends}
        try:
            for w in self.workers.values():
                w.info = w.receive()
            hellos = self.run({"op": "hello"})
        except BaseException:
            self.close()
            raise
        for b, w in self.workers.items():
            w.info.update(hellos[b])
        self.startup_s = time.perf_counter() - started

    @property
    def backends(self) -> tuple[str, ...]:
        return tuple(self.workers)

    def pairs(self):
        return list(itertools.combinations(self.backends, 2))

    def run(self, request, backends=None) -> dict:
        """Send `request` to every worker (or `backends`), then collect the replies."""
        names = list(backends or self.workers)
        for b in names:
            self.workers[b].send(request)
        out, first_error = {}, None
        for b in names:  # read every reply, even after an error, to stay in step
            try:
                out[b] = self.workers[b].receive()
            except WorkerError as err:
                first_error = first_error or err
        if first_error is not None:
            raise first_error
        return out

    def close(self) -> None:
        for w in self.workers.values():
            w.close()


# ---------------------------------------------------------------------- deviations
def max_abs(a, b) -> float:
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b))) if a.size else 0.0


def rel_scalar(a, b) -> float:
    scale = max(abs(float(a)), abs(float(b)))
    return abs(float(a) - float(b)) / scale if scale else 0.0


def rel_to_max(a, b) -> float:
    """Max abs difference relative to the larger of the two arrays' max magnitudes."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    scale = max(float(np.max(np.abs(a))), float(np.max(np.abs(b)))) if a.size else 0.0
    return max_abs(a, b) / scale if scale else 0.0


def record(report: Report, prop: str, who: str, value: float, derived: float,
           contract: float | None = None, detail: str = "") -> float:
    """Record `value` and its ratio to the error model's `derived` bound; return the limit.

    Two rows go to the table: the value itself (against the `contract` bound
    where there is one) and ``value / derived`` (against 1), which reads the same on
    every CPU and case size. The limit a test asserts is the smaller of the two bounds.
    """
    report.add(prop, who, value, contract, unit="" if contract is not None else "per case",
               detail=detail)
    ratio = value / derived if derived > 0 else (0.0 if value == 0 else float("inf"))
    report.add(f"{prop} / error-model bound", who, ratio, 1.0, detail=detail)
    return derived if contract is None else min(derived, contract)


class Report:
    """Largest deviation per (property, pair); plus counters (e.g. near-tie flips)."""

    def __init__(self):
        self.rows: dict[str, dict] = {}
        self.samples: dict[str, list] = {}  # per-case records for the JSON report

    def sample(self, prop: str, record: dict) -> None:
        self.samples.setdefault(prop, []).append(record)

    def add(self, prop: str, pair: str, value: float, bound: float | None = None,
            unit: str = "", detail: str = "") -> None:
        row = self.rows.setdefault(prop, {"bound": bound, "unit": unit, "pairs": {}})
        cell = row["pairs"].setdefault(pair, {"max": 0.0, "n": 0, "detail": ""})
        cell["n"] += 1
        if value > cell["max"] or cell["n"] == 1:
            cell["max"] = float(value)
            if detail:
                cell["detail"] = detail

    def count(self, prop: str, pair: str, counter: str, k: int = 1) -> None:
        row = self.rows.setdefault(prop, {"bound": None, "unit": "", "pairs": {}})
        cell = row["pairs"].setdefault(pair, {"max": 0.0, "n": 0, "detail": ""})
        cell[counter] = cell.get(counter, 0) + k

    def pair_names(self) -> list[str]:
        names = []
        for row in self.rows.values():
            for p in row["pairs"]:
                if p not in names:
                    names.append(p)
        return names

    def markdown(self) -> str:
        pairs = self.pair_names()
        lines = ["| property | bound | " + " | ".join(pairs) + " |",
                 "|---|---|" + "---|" * len(pairs)]
        for prop, row in self.rows.items():
            cells = []
            for p in pairs:
                cell = row["pairs"].get(p)
                if cell is None:
                    cells.append("")
                    continue
                text = f"{cell['max']:.2e}" if cell["max"] else "0"
                extras = [f"{k}={v}" for k, v in cell.items() if k not in ("max", "n", "detail")]
                text += f" (n={cell['n']}" + "".join(", " + e for e in extras) + ")"
                cells.append(text)
            bound = "" if row["bound"] is None else f"{row['bound']:g}"
            if row["unit"]:
                bound = f"{bound} {row['unit']}".strip()
            lines.append(f"| {prop} | {bound} | " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def to_json(self) -> str:
        return json.dumps(self.rows, indent=1, sort_keys=True)
