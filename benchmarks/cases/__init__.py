"""What a worker can set up and time.

A case is created from JSON parameters (`make_case`), sets itself up once (models built,
compiled, warmed), then times one of its *variants* per `run` call, returning at least
``{"seconds": ...}``. Cases are named ``keras.*`` (any keras backend), ``hf.*``
(transformers + PEFT, torch) and ``matmul`` (the dense-matmul peak, per framework).
"""

from __future__ import annotations

import importlib
import os
import resource
import time

#: case name -> "module:class" (imported lazily: the hf worker never imports keras)
CASES = {
    "keras.train_step": "benchmarks.cases.keras_cases:TrainStep",
    "keras.model_tuning_step": "benchmarks.cases.keras_cases:ModelTuningStep",
    "keras.buckets": "benchmarks.cases.keras_cases:BucketSteps",
    "keras.labels": "benchmarks.cases.keras_cases:LabelEval",
    "keras.builtin_labels": "benchmarks.cases.keras_cases:BuiltinLabelEval",
    "keras.serving": "benchmarks.cases.keras_cases:Serving",
    "keras.decode": "benchmarks.cases.keras_cases:Decode",
    "hf.peft_train": "benchmarks.cases.hf_cases:PeftTrain",
    "hf.full_finetune": "benchmarks.cases.hf_cases:FullFineTune",
    "hf.peft_padded": "benchmarks.cases.hf_cases:PeftPaddedStep",
    "hf.checkpoint": "benchmarks.cases.hf_cases:Checkpoint",
    "hf.generate": "benchmarks.cases.hf_cases:Generate",
    "matmul": "benchmarks.cases.peak:Matmul",
}


def make_case(name: str, params: dict):
    if name not in CASES:
        raise ValueError(f"unknown benchmark case {name!r}: expected one of {', '.join(CASES)}")
    module, attr = CASES[name].split(":")
    return getattr(importlib.import_module(module), attr)(**params)


class Case:
    """Base class: `setup` once, then `run(variant)` per timed call."""

    variants: tuple[str, ...] = ()

    def setup(self) -> dict:
        return {}

    def run(self, variant: str) -> dict:
        method = getattr(self, "time_" + variant.split(":")[0], None)
        if method is None:
            raise ValueError(f"{type(self).__name__} has no variant {variant!r}")
        arg = variant.split(":", 1)[1] if ":" in variant else None
        started = time.perf_counter()
        extra = (method(arg) if arg is not None else method()) or {}
        return {"seconds": time.perf_counter() - started, **extra}

    def info(self) -> dict:
        return memory()


# ------------------------------------------------------------------------- memory
#: Train steps a train-step case takes in `setup` after restarting the resident-memory
#: high-water mark (the first one, which compiles, included), so that the peak its `info`
#: reports is that of steps the allocator has settled into: PEFT's and softprompt's grow by
#: 30 to 60 MiB over their first three steps, by ~10 over the next four (T5-small, 1 thread).
MEMORY_STEPS = 3

def _status(field: str) -> float | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024.0  # kB -> MiB
    except OSError:
        pass
    return None


def rss_mb() -> float | None:
    """Resident memory of this process now, MiB (Linux)."""
    return _status("VmRSS")


def reset_peak_rss() -> bool:
    """Restart the kernel's resident-memory high-water mark (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float:
    """This process' resident-memory high-water mark, MiB."""
    peak = _status("VmHWM")
    if peak is None:  # not Linux: lifetime maximum
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return peak


def memory() -> dict:
    return {"rss_mb": rss_mb(), "peak_rss_mb": peak_rss_mb(), "pid": os.getpid()}
