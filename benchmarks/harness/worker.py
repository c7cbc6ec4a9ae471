"""A benchmark worker: ``python -m benchmarks.harness.worker NAME`` (started by `pool`).

Reads JSON lines on stdin, answers one JSON line each on stdout::

    {"op": "setup", "key": "train", "case": "keras.train_step", "params": {...}}
    {"op": "run", "key": "train", "variant": "step"}      -> {"ok": true, "seconds": ...}
    {"op": "info", "key": "train"}
    {"op": "drop", "key": "train"}
    {"op": "exit"}

Anything the libraries print goes to stderr (the worker's log), never into the protocol.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import traceback
import warnings


def main(argv=None) -> int:
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # library output -> the log
    sys.stdout = sys.stderr
    warnings.filterwarnings("ignore")
    threads = os.environ.get("SOFTPROMPT_BENCH_THREADS")
    if threads and hasattr(os, "sched_setaffinity"):
        # XLA's CPU runtime ignores its thread flags (measured: 1.2 CPU-s per wall-s with
        # them), so the worker is also confined to its first `threads` cores.
        cores = sorted(os.sched_getaffinity(0))[: int(threads)]
        os.sched_setaffinity(0, cores)
    # every contender, PEFT's included, under the allocator policy softprompt's adapters set
    # (`keep_freed_memory`), so that no side pays page faults the other does not
    from softprompt.backends.base import keep_freed_memory

    keep_freed_memory()
    if threads and (argv or sys.argv[1:2]) in (["hf"], ["torch"]):
        import torch

        torch.set_num_threads(int(threads))
    from benchmarks.cases import make_case

    cases = {}
    for line in sys.stdin:
        if not line.strip():
            continue
        message = json.loads(line)
        op = message.get("op")
        if op == "exit":
            break
        try:
            key = message.get("key")
            if op == "setup":
                cases.pop(key, None)
                gc.collect()
                case = make_case(message["case"], message.get("params", {}))
                cases[key] = case
                reply = case.setup() or {}
            elif op == "run":
                reply = cases[key].run(message["variant"])
            elif op == "info":
                reply = cases[key].info()
            elif op == "drop":
                cases.pop(key, None)
                gc.collect()
                reply = {}
            else:
                raise ValueError(f"unknown op {op!r}")
            protocol.write(json.dumps({"ok": True, **reply}) + "\n")
        except Exception as err:  # noqa: BLE001 - reported to the coordinator
            traceback.print_exc()
            text = " ".join(str(err).split())[:500]
            protocol.write(json.dumps({"ok": False, "error": f"{type(err).__name__}: {text}"}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
