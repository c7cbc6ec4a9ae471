"""JAX's products and attention core, several ways, in one train step.

The measurement behind `JaxAdapter.matmul` and `JaxAdapter.attention_kernel`. The
train-step comparison's step (T5-small shape, batch 8, 128 input tokens + prompt 100, 8 targets),
built once per variant in one process, each traced with different adapter hooks:

- ``adapter``: what softprompt does: in bfloat16, float32 accumulation
  (``preferred_element_type``) forward, and the backward products written out the same
  way (`reduced_matmul`); the attention core is `softmax_attention` (float32, its
  backward written out);
- ``xla-attention``: the same products, but the written-out attention core of
  `t5_blocks` differentiated by XLA (no `attention_kernel`);
- ``autodiff`` (bfloat16 only): float32 accumulation forward, JAX's own transpose for the
  backward (whose products are plain bfloat16 ``dot``s);
- ``plain`` (bfloat16 only): ``keras.ops.matmul`` on bfloat16 operands throughout.

``--dtype float32`` runs the first two with a float32 backbone.

Steps are timed round-robin (`--rounds` rounds after one warm-up each) and printed as the
median step time and its ratio to ``adapter``'s, both from this one run.

Run: ``python -m benchmarks.micro.jax_products [--rounds 5] [--dtype D]`` (a few minutes on one
core).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time


def _variants(dtype):
    import jax.numpy as jnp
    import keras

    from softprompt.backends.jax_adapter import JaxAdapter

    adapter_matmul = JaxAdapter.matmul

    def autodiff(self, a, b):
        if str(a.dtype) == "bfloat16" and str(b.dtype) == "bfloat16" and a.ndim >= 2:
            return jnp.matmul(a, b, preferred_element_type=jnp.float32).astype(a.dtype)
        return keras.ops.matmul(a, b)

    def plain(self, a, b):
        return keras.ops.matmul(a, b)

    kernel = JaxAdapter.attention_kernel
    variants = {"adapter": (adapter_matmul, kernel),
                "xla-attention": (adapter_matmul, lambda self, dtype: None)}
    if dtype != "float32":
        variants.update(autodiff=(autodiff, kernel), plain=(plain, kernel))
    return variants


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="bfloat16")
    args = parser.parse_args(argv)
    os.environ["KERAS_BACKEND"] = "jax"
    from benchmarks.cases.keras_cases import TrainStep
    from benchmarks.profiles import PROFILES
    from softprompt.backends.jax_adapter import JaxAdapter

    p = PROFILES["short"]
    cases = {}
    original = JaxAdapter.matmul, JaxAdapter.attention_kernel
    try:
        for name, (matmul, kernel) in _variants(args.dtype).items():
            JaxAdapter.matmul, JaxAdapter.attention_kernel = matmul, kernel
            case = TrainStep(p.train_model.to_dict(), p.batch, p.input_length, p.prompt_length,
                             p.target_length, dtype=args.dtype)
            case.setup()  # traces and compiles the step with these hooks
            case.time_step()
            cases[name] = case
    finally:
        JaxAdapter.matmul, JaxAdapter.attention_kernel = original
    times = {name: [] for name in cases}
    for _ in range(args.rounds):
        for name, case in cases.items():
            started = time.perf_counter()
            case.time_step()
            times[name].append(time.perf_counter() - started)
    base = statistics.median(times["adapter"])
    print(f"JAX train step, {args.dtype} backbone, T5-small shape; median of {args.rounds} rounds")
    for name, t in times.items():
        median = statistics.median(t)
        print(f"{name:13s} {median:7.3f} s   {median / base:5.2f}x the adapter's time")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
