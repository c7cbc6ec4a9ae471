"""Cross-backend agreement: fixtures, hypothesis settings and the deviation table.

These tests start their own worker process for each backend (JAX, PyTorch,
TensorFlow) whatever ``KERAS_BACKEND`` the pytest process has, so run them
once (``nox -s agreement``: ``python -m pytest tests/agreement -q``), not in
each per-backend session (those deselect them with ``-m "not agreement"``).

Environment:
    SOFTPROMPT_AGREEMENT_PROFILE  ``ci`` (default: >= 100 examples per
        cross-backend property, derandomized), ``dev`` (20, quick), or
        ``thorough`` (500, shapes drawn freely).
    SOFTPROMPT_AGREEMENT_EXAMPLES  overrides the number of examples (cross-backend;
        in-backend gets a quarter).
    SOFTPROMPT_AGREEMENT_IN_BACKEND_EXAMPLES  overrides the in-backend number.
    SOFTPROMPT_AGREEMENT_BACKENDS  comma-separated subset (default all three).
    SOFTPROMPT_AGREEMENT_REPORT    where to write the table (``.md``; the
        JSON goes beside it). Default: the pytest temp directory.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from . import harness
from .strategies import profile_name

EXAMPLES = {"dev": (20, 5), "ci": (100, 25), "thorough": (500, 100)}

_STATE: dict = {}


def agreement_settings(in_backend: bool = False, examples: int | None = None) -> settings:
    """The hypothesis settings of the active profile (cross-backend or in-backend)."""
    cross, inside = EXAMPLES[profile_name()]
    if os.environ.get("SOFTPROMPT_AGREEMENT_EXAMPLES"):  # a quick look at any profile
        cross = int(os.environ["SOFTPROMPT_AGREEMENT_EXAMPLES"])
        inside = max(1, cross // 4)
    if os.environ.get("SOFTPROMPT_AGREEMENT_IN_BACKEND_EXAMPLES"):
        inside = int(os.environ["SOFTPROMPT_AGREEMENT_IN_BACKEND_EXAMPLES"])
    return settings(
        max_examples=examples or (inside if in_backend else cross),
        deadline=None,
        derandomize=profile_name() != "thorough",
        database=None,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                               HealthCheck.filter_too_much],
    )


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "agreement: cross-backend agreement tests (spawn all backends; run once)"
    )


@pytest.fixture(scope="session")
def report() -> harness.Report:
    return _STATE.setdefault("report", harness.Report())


@pytest.fixture(scope="session")
def pool(tmp_path_factory, report):
    names = os.environ.get("SOFTPROMPT_AGREEMENT_BACKENDS", ",".join(harness.BACKENDS))
    backends = [b.strip() for b in names.split(",") if b.strip()]
    log_dir = tmp_path_factory.mktemp("agreement-workers")
    _STATE["basetemp"] = tmp_path_factory.getbasetemp()
    _STATE["started"] = time.perf_counter()
    pool = harness.Pool(backends, log_dir)
    _STATE["pool"] = pool
    _STATE["info"] = {b: dict(w.info) for b, w in pool.workers.items()}
    _STATE["startup_s"] = pool.startup_s
    yield pool
    _STATE["busy_s"] = {b: w.busy_s for b, w in pool.workers.items()}
    _STATE["op_s"] = {b: w.op_s for b, w in pool.workers.items()}
    _STATE["cpu_s"] = {b: w.cpu_s for b, w in pool.workers.items()}
    pool.close()


@pytest.fixture(scope="session")
def preset_dir(pool, tmp_path_factory):
    """A tiny preset with a sentencepiece tokenizer, built once by the first worker."""
    path = tmp_path_factory.mktemp("agreement-preset")
    first = pool.backends[0]
    pool.run({"op": "build_preset", "path": str(path), "texts": corpus(), "config": "test",
              "style": "t5.1.0", "vocab_size": 120, "seed": 0}, backends=[first])
    return str(path)


WORDS = (
    "the a an quick brown fox jumps over lazy dog cat sat on mat river bank money water "
    "good bad great terrible movie film story plot true false yes no question passage "
    "answer premise hypothesis entailment contradiction neutral positive negative red "
    "green blue one two three four five six seven eight nine ten apple banana cherry"
).split()


def corpus(n: int = 400, seed: int = 0) -> list[str]:
    """Deterministic pseudo-sentences for the tokenizer of `preset_dir`."""
    import random

    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 12))) for _ in range(n)]


def _report_paths() -> tuple[Path, Path] | None:
    target = os.environ.get("SOFTPROMPT_AGREEMENT_REPORT")
    if target:
        md = Path(target)
        if md.suffix == ".json":
            md = md.with_suffix(".md")
    elif "basetemp" in _STATE:
        md = Path(_STATE["basetemp"]) / "agreement-report.md"
    else:
        return None
    return md, md.with_suffix(".json")


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    rep = _STATE.get("report")
    if rep is None or not rep.rows:
        return
    import json

    elapsed = time.perf_counter() - _STATE.get("started", time.perf_counter())
    busy = _STATE.get("busy_s") or {
        b: w.busy_s for b, w in getattr(_STATE.get("pool"), "workers", {}).items()
    }
    cpu = _STATE.get("cpu_s") or {
        b: w.cpu_s for b, w in getattr(_STATE.get("pool"), "workers", {}).items()
    }
    header = (f"profile={profile_name()}  wall since workers started={elapsed:.0f}s  "
              f"worker startup={_STATE.get('startup_s', 0):.0f}s  worker busy (wall): "
              + ", ".join(f"{b}={s:.0f}s" for b, s in busy.items())
              + "  worker CPU (incl. import): "
              + ", ".join(f"{b}={s:.0f}s" for b, s in cpu.items()))
    table = rep.markdown()
    tr = terminalreporter
    tr.write_sep("=", "cross-backend agreement: largest deviation per property and pair")
    tr.write_line(header)
    for line in table.splitlines():
        tr.write_line(line)
    paths = _report_paths()
    if paths:
        md, js = paths
        md.parent.mkdir(parents=True, exist_ok=True)
        md.write_text(f"{header}\n\n{table}\n")
        js.write_text(json.dumps({"profile": profile_name(), "elapsed_s": elapsed,
                                  "startup_s": _STATE.get("startup_s"), "busy_s": busy,
                                  "op_s": _STATE.get("op_s"), "cpu_s": cpu,
                                  "samples": rep.samples,
                                  "versions": _STATE.get("info"), "rows": rep.rows},
                                 indent=1, sort_keys=True, default=str))
        tr.write_line(f"agreement report: {md} and {js}")
