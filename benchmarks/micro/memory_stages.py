"""Where a train-step worker's resident memory goes, stage by stage.

Runs in one process (the backend from ``KERAS_BACKEND`` or ``--backend``) what the train-step
benchmark's worker runs (`benchmarks.cases.keras_cases.TrainStep`), and prints after each
stage the process's resident memory (``VmRSS``), its anonymous part (``RssAnon``: heap,
tensors), its file-backed part (``RssFile``: shared libraries), the high-water mark
(``VmHWM``) and what the stage added: imports (the framework, keras, keras-hub, softprompt),
building the random backbone, the prompted model, ``compile``, the first ``train_on_batch``
(compiles happen there) and later steps. ``--peft`` measures the same stages of the PEFT
worker (`benchmarks.cases.hf_cases.PeftTrain`) instead.

Run (one backend per process, about a minute each on 2 cores)::

    KERAS_BACKEND=torch python -m benchmarks.micro.memory_stages
    python -m benchmarks.micro.memory_stages --backend jax --profile short
    python -m benchmarks.micro.memory_stages --backend torch --only-backend
    python -m benchmarks.micro.memory_stages --peft
    python -m benchmarks.micro.memory_stages --json out.json   # the rows, as JSON too

Prints one markdown table per run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

FIELDS = ("VmRSS", "RssAnon", "RssFile", "VmHWM")


def status() -> dict[str, float]:
    """``FIELDS`` of ``/proc/self/status`` in MiB (Linux)."""
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in FIELDS:
                out[key] = int(rest.split()[0]) / 1024.0
    return out


class Stages:
    """Records `status` after each named stage."""

    def __init__(self):
        self.rows: list[dict] = []
        self.mark("start")

    def mark(self, stage: str) -> None:
        self.rows.append({"stage": stage, **status(), "time": time.perf_counter()})

    def table(self) -> list[str]:
        lines = ["| stage | RSS | +RSS | anon | file | peak (VmHWM) | +peak | s |",
                 "|---|---|---|---|---|---|---|---|"]
        prev = self.rows[0]
        for row in self.rows:
            lines.append(
                f"| {row['stage']} | {row['VmRSS']:.0f} | {row['VmRSS'] - prev['VmRSS']:+.0f} | "
                f"{row['RssAnon']:.0f} | {row['RssFile']:.0f} | {row['VmHWM']:.0f} | "
                f"{row['VmHWM'] - prev['VmHWM']:+.0f} | {row['time'] - prev['time']:.1f} |")
            prev = row
        return lines


def keras_stages(stages: Stages, profile, steps: int, dtype: str) -> None:
    backend = os.environ["KERAS_BACKEND"]
    from softprompt.backends.base import keep_freed_memory

    keep_freed_memory()  # what the worker's adapter does before any tensor
    framework = __import__({"tensorflow": "tensorflow", "torch": "torch", "jax": "jax"}[backend])
    if backend == "torch":
        framework.set_num_threads(int(os.environ["SOFTPROMPT_BENCH_THREADS"]))
    stages.mark(f"import {backend}")
    import keras

    stages.mark("import keras")
    import keras_hub  # noqa: F401

    stages.mark("import keras_hub")
    import softprompt  # noqa: F401
    from softprompt import backends

    backends.current()
    stages.mark("import softprompt")

    from benchmarks.cases import keras_cases

    spec = profile.train_model.to_dict()
    keras_cases.backbone_for(spec)
    stages.mark("build backbone")
    model = keras_cases.prompted(spec, profile.prompt_length, dtype=dtype)
    stages.mark("PromptedT5")
    model.compile(optimizer=keras_cases._adafactor())
    stages.mark("compile")
    x, y, w = keras_cases.train_batch(profile.batch, profile.input_length,
                                      profile.target_length, spec["vocabulary_size"])
    stages.mark("batch")
    model.train_on_batch(x, y, sample_weight=w)
    stages.mark("first step")
    model.test_on_batch(x, y, sample_weight=w)
    stages.mark("first forward")
    for _ in range(steps):
        model.train_on_batch(x, y, sample_weight=w)
    stages.mark(f"{steps} more steps")
    print(f"keras {keras.version()} on {backend}", file=sys.stderr)


def peft_stages(stages: Stages, profile, steps: int, dtype: str) -> None:
    from softprompt.backends.base import keep_freed_memory

    keep_freed_memory()
    import torch

    torch.set_num_threads(int(os.environ["SOFTPROMPT_BENCH_THREADS"]))
    stages.mark("import torch")
    import peft  # noqa: F401
    import transformers  # noqa: F401

    stages.mark("import transformers, peft")
    from benchmarks.cases.hf_cases import PeftTrain

    case = PeftTrain(model=profile.train_model.to_dict(), batch=profile.batch,
                     input_length=profile.input_length, prompt_length=profile.prompt_length,
                     target_length=profile.target_length, dtype=dtype)
    case.setup()  # builds, then one step
    stages.mark("build + first step")
    for _ in range(steps):
        case.run("step")
    stages.mark(f"{steps} more steps")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=("jax", "torch", "tensorflow"))
    parser.add_argument("--peft", action="store_true", help="the PEFT worker instead")
    parser.add_argument("--profile", default="short")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--only-backend", action="store_true",
                        help="keep the other backends' frameworks out (SOFTPROMPT_ONLY_BACKEND=1)")
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args(argv)
    if args.backend:
        os.environ["KERAS_BACKEND"] = args.backend
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    if args.only_backend:
        os.environ["SOFTPROMPT_ONLY_BACKEND"] = "1"
    # as the benchmark's workers run (`benchmarks.harness.worker`): confined to the first cores
    os.environ["SOFTPROMPT_BENCH_THREADS"] = str(args.threads)
    os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[: args.threads])
    from benchmarks.profiles import PROFILES

    profile = PROFILES[args.profile]
    stages = Stages()
    (peft_stages if args.peft else keras_stages)(stages, profile, args.steps, args.dtype)
    title = "peft" if args.peft else os.environ["KERAS_BACKEND"]
    if args.only_backend:
        title += ", only its framework"
    print(f"**{title}** ({args.profile}, {args.dtype}, {args.threads} thread(s)), MiB\n")
    print("\n".join(stages.table()))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"who": title, "rows": stages.rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
