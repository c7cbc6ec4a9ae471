"""Run the README's main command, ``softprompt train`` with no arguments, and check its outputs.

For each backend, in a new scratch directory, the ``softprompt`` on PATH is started exactly as
a user types it (``KERAS_BACKEND=<backend> softprompt train``), and what the command promises
is checked:

- exit code 0, and no error or "tensorboard is not installed" on stderr;
- ``best.npy``: a finite float32 (P, d) prompt, loadable without pickles;
- ``checkpoints/``: ``latest.json`` and a ``step-N.npy`` per evaluation;
- ``metrics.jsonl``: one record per evaluation with the dev metric;
- ``train.csv``: one row per training step, finite losses;
- ``tensorboard/``: event files that hold ``dev/<metric>`` at the same steps and values as
  ``metrics.jsonl`` and ``train/loss`` (read with tensorboard's ``EventAccumulator``);
- ``curve.png``: a PNG image;
- ``config.json``: the run's options, resolved values and the backend it ran on.

Prints one line per check and the wall time of each run; exits 1 if a check failed, 2 if
``softprompt`` is not installed. CI runs it before the test suite (``nox -s main-command``);
run it yourself the same way::

    python scripts/check_main_command.py                     # jax, torch and tensorflow
    python scripts/check_main_command.py --backend jax --keep
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BACKENDS = ("jax", "torch", "tensorflow")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class Checks:
    """Collects named pass/fail results for one run."""

    def __init__(self, backend: str):
        self.backend = backend
        self.failed: list[str] = []

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        mark = "ok  " if ok else "FAIL"
        print(f"  [{mark}] {self.backend}: {name}" + (f" ({detail})" if detail else ""),
              flush=True)
        if not ok:
            self.failed.append(name)
        return ok


#: The environment the main command runs in: this process's, as it was started.
USER_ENV = dict(os.environ)


def run_main_command(command: list[str], backend: str, scratch: Path) -> tuple[int, float]:
    """``softprompt train`` in `scratch` on `backend`; its output goes to files there."""
    env = {**USER_ENV, "KERAS_BACKEND": backend}
    started = time.perf_counter()
    with open(scratch / "stdout.txt", "w") as out, open(scratch / "stderr.txt", "w") as err:
        code = subprocess.call([*command, "train"], cwd=scratch, env=env, stdout=out,
                               stderr=err)
    return code, time.perf_counter() - started


def check_outputs(checks: Checks, scratch: Path, code: int, stderr: str) -> None:
    """Check the run that `softprompt train` wrote somewhere under `scratch`."""
    import numpy as np

    checks.check("exit code 0", code == 0, f"exit code {code}" if code else "")
    checks.check("no error on stderr", "Error:" not in stderr and "Traceback" not in stderr)
    checks.check("TensorBoard available", "tensorboard is not installed" not in stderr)
    configs = sorted(scratch.rglob("config.json"))
    if not checks.check("config.json", len(configs) == 1,
                        ", ".join(str(p.relative_to(scratch)) for p in configs) or "none"):
        return
    run = configs[0].parent
    config = json.loads(configs[0].read_text())
    checks.check("config.json names the backend", config.get("backend") == checks.backend,
                 str(config.get("backend")))
    metric = (config.get("resolved") or {}).get("metric") or config["options"].get("metric")
    checks.check("config.json names the dev metric", bool(metric), str(metric))

    best = run / "best.npy"
    if checks.check("best.npy", best.is_file()):
        prompt = np.load(best, allow_pickle=False)
        checks.check("best.npy is a finite float32 (P, d) prompt",
                     prompt.ndim == 2 and prompt.dtype == np.float32
                     and bool(np.isfinite(prompt).all()), f"{prompt.dtype} {prompt.shape}")

    records = []
    if checks.check("metrics.jsonl", (run / "metrics.jsonl").is_file()):
        records = [json.loads(line) for line in
                   (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
        checks.check("metrics.jsonl has the dev metric at every evaluation",
                     bool(records) and all(metric in r and "step" in r for r in records),
                     f"{len(records)} evaluations")

    steps = [r["step"] for r in records if "step" in r]
    checkpoints = run / "checkpoints"
    if checks.check("checkpoints/", checkpoints.is_dir()):
        missing = [s for s in steps if not (checkpoints / f"step-{s}.npy").is_file()]
        checks.check("checkpoints/ holds latest.json and a prompt per evaluation",
                     (checkpoints / "latest.json").is_file() and not missing,
                     f"missing steps {missing}" if missing else f"{len(steps)} prompts")

    if checks.check("train.csv", (run / "train.csv").is_file()):
        with open(run / "train.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        total = config["options"].get("steps")
        losses = [float(r["loss"]) for r in rows]
        checks.check("train.csv has a finite loss for every step",
                     len(rows) == total and all(math.isfinite(x) for x in losses),
                     f"{len(rows)} rows for {total} steps")

    check_tensorboard(checks, run / "tensorboard", metric, records)

    curve = run / "curve.png"
    if checks.check("curve.png", curve.is_file()):
        data = curve.read_bytes()
        checks.check("curve.png is a PNG image", data.startswith(PNG_SIGNATURE)
                     and len(data) > 1000, f"{len(data)} bytes")


def check_tensorboard(checks: Checks, logdir: Path, metric: str, records: list) -> None:
    events = sorted(logdir.glob("events.out.tfevents.*"))
    if not checks.check("TensorBoard event files", bool(events), f"{len(events)} in {logdir}"):
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # tensorboard may load TensorFlow
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(logdir), size_guidance={"scalars": 0})
    accumulator.Reload()
    tags = accumulator.Tags().get("scalars", [])
    tag = f"dev/{metric}"
    if not checks.check(f"TensorBoard holds {tag}", tag in tags, ", ".join(tags)):
        return
    logged = {e.step: e.value for e in accumulator.Scalars(tag)}
    expected = {r["step"]: float(r[metric]) for r in records if metric in r}
    same = set(logged) == set(expected) and all(
        math.isclose(logged[s], expected[s], rel_tol=1e-6, abs_tol=1e-6) for s in expected)
    checks.check(f"TensorBoard {tag} equals metrics.jsonl", same,
                 f"steps {sorted(logged)}")
    checks.check("TensorBoard holds train/loss", "train/loss" in tags and
                 len(accumulator.Scalars("train/loss")) > 0)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", action="append", choices=BACKENDS,
                        help="backend to run (repeatable; default: all three)")
    parser.add_argument("--keep", action="store_true",
                        help="keep every scratch directory (failed runs are always kept)")
    args = parser.parse_args(argv)
    executable = shutil.which("softprompt")
    if executable is None:
        print("Error: no `softprompt` on PATH: install it first "
              '(pip install "torch==2.13.0" -e ".[all,test]")', file=sys.stderr)
        return 2
    print(f"main command: {executable} train", flush=True)
    summary, failed = [], False
    for backend in args.backend or BACKENDS:
        scratch = Path(tempfile.mkdtemp(prefix=f"main-command-{backend}-"))
        print(f"{backend}: softprompt train in {scratch}", flush=True)
        code, seconds = run_main_command([executable], backend, scratch)
        checks = Checks(backend)
        check_outputs(checks, scratch, code, (scratch / "stderr.txt").read_text(errors="replace"))
        summary.append((backend, seconds, checks.failed))
        if checks.failed:
            failed = True
            tail = (scratch / "stderr.txt").read_text(errors="replace")[-3000:]
            print(f"{backend}: stderr (last 3000 characters):\n{tail}", flush=True)
            print(f"{backend}: kept {scratch}", flush=True)
        elif args.keep:
            print(f"{backend}: kept {scratch}", flush=True)
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    print("main command `softprompt train`, wall time per backend:")
    for backend, seconds, problems in summary:
        verdict = "all outputs checked" if not problems else "FAILED: " + "; ".join(problems)
        print(f"  {backend:<11} {seconds:7.1f} s  {verdict}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
