"""Where TensorFlow's train step spends its time, operator type by operator type.

Runs the train-step comparison's step (`benchmarks.cases.keras_cases.TrainStep`, the
profile's T5 shape) on keras' TensorFlow backend, one thread, under TensorFlow's profiler,
reads the trace it writes (``*.xplane.pb``, TensorFlow's own protobuf) and prints, per
operator type, the time per step and the calls per step (the matrix products and transposes
with forward and backward apart). The step is one graph run by one thread, so the operators'
times add up to about the step.

Run (about a minute; from a checkout with ``.[bench]``)::

    python -m benchmarks.micro.tf_step_profile
    python -m benchmarks.micro.tf_step_profile --steps 3 --rows 20 --core 1

Prints a markdown table.
"""

from __future__ import annotations

import argparse
import collections
import os
import tempfile
import time
from pathlib import Path

#: Operator types that are matrix products.
PRODUCTS = ("_MklMatMul", "MatMul", "_MklBatchMatMulV2", "BatchMatMulV2", "_MklEinsum",
            "Einsum", "_MklFusedMatMul")


def op_times(trace: Path, steps: int) -> tuple[dict, dict]:
    """``({op type (+ fwd/bwd for products): seconds per step}, {same: calls per step})``
    from a TensorFlow profiler trace (an ``XSpace`` protobuf)."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    space = xplane_pb2.XSpace()
    space.ParseFromString(trace.read_bytes())
    seconds, calls = collections.Counter(), collections.Counter()
    for plane in space.planes:
        for line in plane.lines:
            if not line.name.startswith("tf_Compute"):
                continue
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name
                if ":" not in name or "::" in name:  # the executor's spans, not operators
                    continue
                kind = name.rsplit(":", 1)[1]
                if kind in PRODUCTS or "Transpose" in kind:
                    kind += " (backward)" if name.startswith("gradient_tape") else " (forward)"
                seconds[kind] += event.duration_ps / 1e12 / steps
                calls[kind] += 1 / steps
    return dict(seconds), dict(calls)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="short", help="benchmark profile (shapes)")
    parser.add_argument("--steps", type=int, default=2, help="profiled steps")
    parser.add_argument("--rows", type=int, default=14, help="operator types shown")
    parser.add_argument("--core", type=int, default=None, help="pin to this CPU core")
    args = parser.parse_args(argv)
    os.environ["KERAS_BACKEND"] = "tensorflow"
    os.environ.setdefault("SOFTPROMPT_ONLY_BACKEND", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if args.core is not None:
        os.sched_setaffinity(0, {args.core})
    import softprompt  # noqa: F401  # isort: skip - first: it applies SOFTPROMPT_ONLY_BACKEND
    import tensorflow as tf

    from benchmarks.cases.keras_cases import TrainStep
    from benchmarks.profiles import PROFILES
    from benchmarks.run import machine_info

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    profile = PROFILES[args.profile]
    case = TrainStep(profile.train_model.to_dict(), profile.batch, profile.input_length,
                     profile.prompt_length, profile.target_length)
    case.setup()
    for _ in range(2):
        case.time_step()
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        started = time.perf_counter()
        for _ in range(args.steps):
            case.time_step()
        step_s = (time.perf_counter() - started) / args.steps
        tf.profiler.experimental.stop()
        trace = next(Path(logdir).rglob("*.xplane.pb"))
        seconds, calls = op_times(trace, args.steps)
    total = sum(seconds.values())
    machine = machine_info()
    print(f"TensorFlow {tf.__version__}, one thread, {machine['cpu']} ({machine['cpu_flags']}); "
          f"profile "
          f"{args.profile}: step {step_s:.3f} s under the profiler, operators {total:.3f} s\n")
    print("| operator type | ms per step | share | calls per step |")
    print("|---|---|---|---|")
    for kind, value in sorted(seconds.items(), key=lambda kv: -kv[1])[:args.rows]:
        print(f"| {kind} | {1000 * value:.2f} | {100 * value / total:.1f}% | "
              f"{calls[kind]:.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
