"""Run the benchmark suite: ``python -m benchmarks.run [--full] [--backends ...] [--out DIR]``.

Short by default (a few minutes per backend on a 2-core CPU); ``--full`` runs T5-small's
sizes in every comparison. Writes ``results.json`` (every repeat, every derived number) and
``results.md`` (the tables) to ``benchmarks/results/`` or ``--out``, and prints the tables.

Example:
    python -m benchmarks.run --backends jax --suites train,decode
    python -m benchmarks.run --full --out /tmp/bench
    python -m benchmarks.run --tables benchmarks/reference/amd-epyc-2core/suite.json
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import platform
import sys
import time
from pathlib import Path

from benchmarks.comparisons import SUITES, markdown
from benchmarks.harness.context import Context
from benchmarks.harness.pool import HF, ROOT, Pool
from benchmarks.profiles import PROFILES
from softprompt.backends.base import DTYPES  # the train step's dtypes

BACKENDS = ("jax", "torch", "tensorflow")
DEFAULT_OUT = ROOT / "benchmarks" / "results"
#: CPU flags that decide which kernels the frameworks can use (recorded with every run)
CPU_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16",
             "amx_tile", "amx_bf16", "amx_int8", "avx_vnni", "neon", "asimd", "sve")


def installed_backends() -> list[str]:
    modules = {"jax": "jax", "torch": "torch", "tensorflow": "tensorflow"}
    return [b for b in BACKENDS if importlib.util.find_spec(modules[b]) is not None]


def peft_available() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("torch", "transformers", "peft"))


def parse_list(text: str | None, allowed, what: str) -> list[str] | None:
    if text is None:
        return None
    items = [t.strip() for t in text.split(",") if t.strip()]
    bad = [t for t in items if t not in allowed]
    if bad or not items:
        raise ValueError(f"unknown {what} {', '.join(bad) or repr(text)}: expected a comma-"
                         f"separated list of {', '.join(allowed)}")
    return items


def machine_info() -> dict:
    import numpy as np

    cpu, flags = None, None
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = (s.strip() for s in line.partition(":"))
                if key == "model name" and cpu is None:
                    cpu = value
                elif key in ("flags", "Features") and flags is None:
                    flags = [f for f in CPU_FLAGS if f in value.split()]
    except OSError:
        pass
    cpu = cpu or platform.processor() or platform.machine()
    versions = [f"Python {platform.python_version()}", f"numpy {np.__version__}"]
    for name in ("keras", "keras_hub", "jax", "torch", "tensorflow", "transformers", "peft"):
        spec = importlib.util.find_spec(name)
        if spec is not None:
            try:
                from importlib.metadata import version

                versions.append(f"{name.replace('_', '-')} {version(name.replace('_', '-'))}")
            except Exception:  # noqa: BLE001
                pass
    return {"cpu": cpu, "cpu_flags": " ".join(flags or []), "cores": os.cpu_count(),
            "gpus": gpu_names(), "platform": platform.platform(),
            "versions": ", ".join(versions)}


def gpu_names() -> list[str]:
    """The CUDA GPUs `nvidia-smi` lists (name, memory), or [] on a machine without one.

    Asked of the driver's tool rather than a framework, so the coordinator imports none.
    """
    import shutil
    import subprocess

    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total",
                              "--format=csv,noheader"], capture_output=True, text=True,
                             timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.splitlines() if line.strip()]


def _load() -> str:
    try:
        return "/".join(f"{v:.1f}" for v in os.getloadavg())
    except OSError:
        return "?"


def run(profile: str = "short", backends=None, out=None, suites=None, rounds=None,
        torch_compile: bool = False, baselines: bool = True, threads: int | None = None,
        dtypes=None, only_backend: bool = True, log=None) -> tuple[dict, str, Path]:
    """Run the suites; returns ``(results, markdown, out_dir)`` after writing both files.

    Args:
        profile: ``toy``, ``short`` or ``full`` (`benchmarks.profiles`).
        backends: keras backends to run (default: every installed one).
        out: output directory (default ``benchmarks/results``).
        suites: names from ``train, varlen, rank, serving, decode`` (default: all).
        rounds: override every suite's number of timed rounds.
        torch_compile: add ``torch.compile`` (keras ``jit_compile=True``) to the train step.
        baselines: run PEFT/transformers when they are installed.
        threads: pin every worker to this many intra-op threads (default: the profile's,
            which is each framework's own default except in the toy profile).
        dtypes: the train step's dtypes, from ``float32, bfloat16, mixed_bfloat16``
            (default: the profile's, float32 and bfloat16).
        only_backend: keep the other keras backends' frameworks out of each keras worker
            (``SOFTPROMPT_ONLY_BACKEND=1``), as PEFT's process never loads them; False lets
            keras and keras-hub import every installed framework, as they do by default.
        log: a ``str -> None`` for progress (default: stderr).
    """
    import dataclasses

    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}: expected one of {', '.join(PROFILES)}")
    log = log or (lambda s: print(s, file=sys.stderr, flush=True))
    available = installed_backends()
    backends = list(backends or available)
    missing = [b for b in backends if b not in available]
    if missing:
        raise ValueError(f"backend {', '.join(missing)} is not installed")
    suites = list(suites or SUITES)
    prof = PROFILES[profile]
    if rounds is not None:
        if rounds < 1:
            raise ValueError(f"rounds must be at least 1, got {rounds}")
        prof = dataclasses.replace(prof, **{f: rounds for f in (
            "train_rounds", "varlen_rounds", "eval_rounds", "serve_rounds", "decode_rounds")})
    if threads is not None:
        if threads < 1:
            raise ValueError(f"threads must be at least 1, got {threads}")
        prof = dataclasses.replace(prof, threads=threads)
    if dtypes is not None:
        dtypes = list(dtypes)
        unknown = [d for d in dtypes if d not in DTYPES]
        if unknown or not dtypes:
            raise ValueError(f"unknown dtype {', '.join(unknown) or '(none)'}: expected some of "
                             f"{', '.join(DTYPES)}")
        prof = dataclasses.replace(prof, train_dtypes=tuple(dtypes))
    out = Path(out) if out else DEFAULT_OUT
    out.mkdir(parents=True, exist_ok=True)
    hf = baselines and peft_available()
    machine = machine_info()
    machine["load_before"] = _load()
    results = {"profile": profile, "backends": backends, "peft_baseline": hf,
               "only_backend": bool(only_backend),
               "started": datetime.datetime.now().isoformat(timespec="seconds"),
               "machine": machine, "settings": prof.to_dict(), "suites": {}, "seconds": {}}
    if not hf and baselines:
        log("transformers/peft not installed: the PEFT baselines are skipped")
    with Pool(out / "logs", prof.threads, only_backend) as pool:
        pool.start(backends + ([HF] if hf else []))
        ctx = Context(pool, prof, backends, hf, out / "cache", log, torch_compile)
        for name in suites:
            log(f"[{time.strftime('%H:%M:%S')}] suite {name} (load {_load()})")
            started = time.perf_counter()
            results["suites"][name] = SUITES[name].measure(ctx)
            results["seconds"][name] = round(time.perf_counter() - started, 1)
    machine["load_after"] = _load()
    text = markdown(results)
    (out / "results.json").write_text(json.dumps(results, indent=1, default=str))
    (out / "results.md").write_text(text)
    return results, text, out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true",
                        help="T5-small's sizes in every comparison")
    parser.add_argument("--profile", choices=sorted(PROFILES), default=None,
                        help="toy | short | full (--full is --profile full)")
    parser.add_argument("--backends", default=None,
                        help="comma-separated keras backends (default: all installed)")
    parser.add_argument("--suites", default=None, help=f"comma-separated: {', '.join(SUITES)}")
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds per comparison")
    parser.add_argument("--torch-compile", action="store_true",
                        help="also time the torch train step under torch.compile")
    parser.add_argument("--no-baselines", action="store_true", help="skip PEFT/transformers")
    parser.add_argument("--threads", type=int, default=None,
                        help="pin every worker to N intra-op threads (default: all cores)")
    parser.add_argument("--dtypes", default=None,
                        help=f"train step dtypes, comma-separated: {', '.join(DTYPES)} "
                             "(default: float32,bfloat16)")
    parser.add_argument("--all-frameworks", action="store_true",
                        help="let each keras worker import every installed framework (default: "
                             "only its backend's, SOFTPROMPT_ONLY_BACKEND=1)")
    parser.add_argument("--out", default=None, help=f"output directory (default {DEFAULT_OUT})")
    parser.add_argument("--tables", metavar="RESULTS_JSON", default=None,
                        help="measure nothing: print the tables of a results.json written "
                             "earlier (e.g. one in benchmarks/reference/)")
    args = parser.parse_args(argv)
    if args.tables:
        try:
            print(markdown(json.loads(Path(args.tables).read_text())), end="")
        except (OSError, ValueError, KeyError) as err:
            parser.error(f"cannot read the results in {args.tables}: {err}")
        return 0
    try:
        _, text, out = run(
            profile=args.profile or ("full" if args.full else "short"),
            backends=parse_list(args.backends, BACKENDS, "backend"),
            out=args.out, suites=parse_list(args.suites, tuple(SUITES), "suite"),
            rounds=args.rounds, torch_compile=args.torch_compile,
            baselines=not args.no_baselines, threads=args.threads,
            dtypes=parse_list(args.dtypes, DTYPES, "dtype"),
            only_backend=not args.all_frameworks,
        )
    except ValueError as err:
        parser.error(str(err))
    print(text)
    print(f"results: {out / 'results.json'}, {out / 'results.md'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
