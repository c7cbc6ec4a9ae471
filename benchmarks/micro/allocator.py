"""Large activations with and without `keep_freed_memory`: the measurement behind it.

Two ops whose outputs are over glibc's 32 MiB mmap threshold, each timed (best of
`--repeats`, a fresh output every call) in two child processes, one with
``SOFTPROMPT_MALLOC=default`` (glibc as it is) and one with freed memory kept:

- torch: a ReLU over ``(80, 228, 2048)`` float32, the 142 MiB feed-forward activation of a
  5-prompt ensemble of 16 T5-small inputs;
- JAX: a jitted ``(4560, 512) @ (512, 2048)`` float32 product (a 37 MiB result).

Prints milliseconds per op and the ratio default / kept, both measured in this run.

Run: ``taskset -c 0 python -m benchmarks.micro.allocator [--repeats 10]`` (under a minute).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from benchmarks.harness.timing import best_ms


def _child(repeats: int) -> dict:
    """Runs in a child process: the allocator setting comes from the environment."""
    from softprompt.backends.base import keep_freed_memory

    kept = keep_freed_memory()
    import jax
    import numpy as np
    import torch

    torch.set_num_threads(1)
    x = torch.randn(80, 228, 2048)
    rng = np.random.default_rng(0)
    a = jax.numpy.asarray(rng.standard_normal((4560, 512)), "float32")
    b = jax.numpy.asarray(rng.standard_normal((512, 2048)), "float32")
    product = jax.jit(lambda a, b: a @ b)
    return {"kept": kept,
            "torch relu 142 MiB": best_ms(lambda: torch.relu(x), repeats),
            "jax product 37 MiB": best_ms(lambda: product(a, b).block_until_ready(), repeats)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_child(args.repeats)))
        return 0
    results = {}
    for mode in ("default", "kept"):
        env = {k: v for k, v in os.environ.items() if k != "SOFTPROMPT_MALLOC"}
        if mode == "default":
            env["SOFTPROMPT_MALLOC"] = "default"
        out = subprocess.run([sys.executable, "-m", "benchmarks.micro.allocator", "--child",
                              "--repeats", str(args.repeats)], env=env, check=True,
                             capture_output=True, text=True).stdout
        results[mode] = json.loads(out.strip().splitlines()[-1])
    print(f"large outputs, best of {args.repeats}, ms (freed memory kept: "
          f"{results['kept']['kept']})")
    for op in ("torch relu 142 MiB", "jax product 37 MiB"):
        default, kept = results["default"][op], results["kept"][op]
        print(f"  {op:20s} default {default:7.1f}  kept {kept:7.1f}  default/kept "
              f"{default / kept:5.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
