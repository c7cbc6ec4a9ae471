"""Which matrix units bfloat16 reaches in each framework, and its peak against float32.

For PyTorch, TensorFlow and JAX, a child process multiplies two ``N × N`` matrices in float32
and in bfloat16 (alternating, best of `--repeats` each) and reports GFLOP/s and the
bfloat16 ÷ float32 ratio, measured in that process. PyTorch and TensorFlow run their
products through oneDNN; the child turns on ``ONEDNN_VERBOSE`` and reports the
implementation oneDNN chose for each dtype (for example ``brg_matmul:avx512_core_amx`` on a
CPU with AMX-BF16, ``brg_matmul:avx512_core_bf16`` on one with AVX512-BF16, a float32 ``gemm``
where bfloat16 is emulated). JAX's products are XLA's own unless ``XLA_FLAGS`` hands its dots
to oneDNN: the row ``jax-onednn`` runs JAX that way and reports what reached oneDNN.

Run: ``python -m benchmarks.micro.bf16_units [--size 2048] [--repeats 5]`` (about a minute);
``--threads 1`` pins each framework to one core. Prints the CPU model and its matrix flags,
a table, and writes it to ``benchmarks/results/bf16-units.txt``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

from benchmarks.harness.timing import best_ms

FRAMEWORKS = ("torch", "tensorflow", "jax")
#: JAX again, with XLA asked to hand its dots to oneDNN (the row ``jax-onednn``).
JAX_ONEDNN = "--xla_cpu_use_onednn=true --xla_cpu_experimental_onednn_fusion_type=dot"
ROWS = (*FRAMEWORKS, "jax-onednn")


def _products(framework: str, size: int, threads: int | None):
    """`{dtype: product()}` for one framework; each call returns a finished result."""
    import numpy as np

    rng = np.random.default_rng(0)
    a32 = rng.standard_normal((size, size), dtype=np.float32)
    b32 = rng.standard_normal((size, size), dtype=np.float32)
    if framework == "torch":
        import torch

        if threads:
            torch.set_num_threads(threads)
        pairs = {d: (torch.from_numpy(a32).to(d), torch.from_numpy(b32).to(d))
                 for d in (torch.float32, torch.bfloat16)}
        return {str(d).split(".")[1]: (lambda a=a, b=b: torch.matmul(a, b))
                for d, (a, b) in pairs.items()}
    if framework == "tensorflow":
        import tensorflow as tf

        if threads:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
        out = {}
        for name in ("float32", "bfloat16"):
            a, b = tf.cast(a32, name), tf.cast(b32, name)
            out[name] = lambda a=a, b=b: tf.linalg.matmul(a, b).numpy()
        return out
    import jax
    import jax.numpy as jnp

    product = jax.jit(jnp.matmul)
    out = {}
    for name in ("float32", "bfloat16"):
        a, b = jnp.asarray(a32, name), jnp.asarray(b32, name)
        out[name] = lambda a=a, b=b: product(a, b).block_until_ready()
    return out


def _child(framework: str, size: int, repeats: int, threads: int | None) -> dict:
    products = _products(framework, size, threads)
    best = {name: float("inf") for name in products}
    for _ in range(repeats):  # alternate the dtypes so that both see the same machine
        for name, fn in products.items():
            best[name] = min(best[name], best_ms(fn, 1))
    flops = 2 * size**3
    return {name: flops / (ms * 1e-3) / 1e9 for name, ms in best.items()}


def _implementations(log: str) -> dict:
    """oneDNN's chosen matmul/inner-product implementation per data type, from its verbose log."""
    seen: dict[str, set] = {}
    for line in log.splitlines():
        if not line.startswith("onednn_verbose") or ",exec," not in line:
            continue
        fields = line.split(",")
        kind = next((f for f in fields if f in ("matmul", "inner_product", "convolution",
                                                 "matmul_post_ops")), None)
        if kind is None:
            continue
        impl = fields[fields.index(kind) + 1]
        dtype = "bfloat16" if re.search(r"\bbf16\b", line) else "float32"
        if kind == "matmul_post_ops":  # oneDNN's graph API (XLA): the fused op, not a kernel
            continue
        seen.setdefault(dtype, set()).add(impl)
    return {dtype: ", ".join(sorted(impls)) for dtype, impls in seen.items()}


def measure(framework: str, size: int, repeats: int, threads: int | None) -> dict:
    env = {**os.environ, "ONEDNN_VERBOSE": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    if framework == "jax-onednn":
        framework, env["XLA_FLAGS"] = "jax", f"{env.get('XLA_FLAGS', '')} {JAX_ONEDNN}".strip()
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.micro.bf16_units", "--child", framework,
         "--size", str(size), "--repeats", str(repeats), *(["--threads", str(threads)]
                                                           if threads else [])],
        capture_output=True, text=True, env=env, check=False)
    result = next((json.loads(line) for line in reversed(done.stdout.splitlines())
                   if line.startswith("{")), None)
    if result is None:
        return {"error": (done.stderr.strip().splitlines() or ["no output"])[-1]}
    return {"gflops": result, "onednn": _implementations(done.stdout + done.stderr)}


def _cpu() -> str:
    from benchmarks.run import machine_info

    info = machine_info()
    return f"{info['cpu']}, {info['cores']} cores; flags: {info['cpu_flags'] or 'none listed'}"


def table(results: dict, size: int) -> str:
    lines = [f"CPU: {_cpu()}; load average {'/'.join(f'{v:.1f}' for v in os.getloadavg())}",
             f"{size}^3 products, best of the alternating repeats", "",
             "| framework | float32 GFLOP/s | bfloat16 GFLOP/s | bfloat16 ÷ float32 "
             "| oneDNN float32 | oneDNN bfloat16 |", "|---|---|---|---|---|---|"]
    for framework, r in results.items():
        if "error" in r:
            lines.append(f"| {framework} | error: {r['error']} | | | | |")
            continue
        g, impl = r["gflops"], r["onednn"]
        lines.append(f"| {framework} | {g['float32']:.0f} | {g['bfloat16']:.0f} | "
                     f"{g['bfloat16'] / g['float32']:.2f}× | {impl.get('float32', '—')} | "
                     f"{impl.get('bfloat16', '—')} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--frameworks", default=",".join(ROWS),
                        help=f"comma-separated, of {', '.join(ROWS)}")
    parser.add_argument("--child", choices=FRAMEWORKS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_child(args.child, args.size, args.repeats, args.threads)))
        return 0
    results = {f: measure(f, args.size, args.repeats, args.threads)
               for f in args.frameworks.split(",")}
    text = table(results, args.size)
    print(text)
    out = Path("benchmarks/results")
    out.mkdir(parents=True, exist_ok=True)
    (out / "bf16-units.txt").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
