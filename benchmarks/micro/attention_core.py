"""T5 attention core, several ways, on each backend: the measurement behind the T5 blocks.

softmax(Q K^T + bias) V for T5-small's encoder shape (batch 8, 228 tokens, 8 heads of 64):

- ``keras-hub``: the values weighted by ``einsum("bnqk,bknd->bqnd")``, as keras-hub writes it;
- ``heads-first``: that product as a heads-first batched matmul (what `t5_blocks` does);
- ``fused``: ``keras.ops.dot_product_attention`` (the backend's fused kernel as keras
  calls it);
- ``t5_blocks``: `softprompt.core.model.t5_blocks.attention_core` itself: the adapter's own
  kernel where it has one (`Adapter.attention_kernel`: torch's scaled-dot-product
  attention called directly in float32; on a CPU, JAX's float32 core with a written-out
  backward), else the heads-first core (in bfloat16 the products go through
  `Adapter.matmul` and the softmax runs in float32);
- ``plain-products`` (``--dtype bfloat16`` only): the same with plain ``ops.matmul``
  products, i.e. without the adapter's hint (on JAX: float32 accumulation and its own
  VJP; on torch and TensorFlow the two are the same).

``--dtype bfloat16`` runs every variant on bfloat16 queries, keys, values and bias.

Each backend runs in its own process (keras fixes its backend at import); every variant is
timed forward and forward + gradient (w.r.t. queries, keys and values), best of `--repeats`,
and printed as milliseconds and as a ratio to keras-hub's form measured in the same process.

Run: ``python -m benchmarks.micro.attention_core [--backends jax,torch,tensorflow] [--dtype D]
[--repeats 15]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from benchmarks.harness.timing import best_ms

SHAPE = (8, 228, 8, 64)  # batch, length, heads, head_dim


def _variants(ops, dtype="float32"):
    def scores(q, k, b):
        return ops.softmax(ops.einsum("bqnd,bknd->bnqk", q, k) + b, axis=-1)

    def keras_hub(q, k, v, b):
        return ops.einsum("bnqk,bknd->bqnd", scores(q, k, b), v)

    def heads_first(q, k, v, b):
        out = ops.matmul(scores(q, k, b), ops.transpose(v, (0, 2, 1, 3)))
        return ops.transpose(out, (0, 2, 1, 3))

    def fused(q, k, v, b):
        return ops.dot_product_attention(q, k, v, bias=b, scale=1.0)

    from softprompt.core.model import t5_blocks

    def ours(q, k, v, b):
        return t5_blocks.attention_core(q, k, v, b)

    variants = {"keras-hub": keras_hub, "heads-first": heads_first, "fused": fused,
                "t5_blocks": ours}
    if dtype != "float32":
        def plain_products(q, k, v, b):
            scores = ops.matmul(ops.transpose(q, (0, 2, 1, 3)), ops.transpose(k, (0, 2, 3, 1)))
            scores = ops.cast(scores, "float32") + ops.cast(b, "float32")
            weights = ops.cast(ops.softmax(scores, axis=-1), v.dtype)
            return ops.transpose(ops.matmul(weights, ops.transpose(v, (0, 2, 1, 3))),
                                 (0, 2, 1, 3))

        variants["plain-products"] = plain_products
    return variants


def _compile(backend, fn):
    """`(forward, forward+gradient)` callables returning something to block on."""
    if backend == "jax":
        import jax
        import jax.numpy as jnp

        grad = jax.grad(lambda q, k, v, b: jnp.sum(fn(q, k, v, b).astype("float32") ** 2),
                        argnums=(0, 1, 2))
        return jax.jit(fn), jax.jit(grad)
    if backend == "tensorflow":
        import tensorflow as tf

        def grad(q, k, v, b):
            with tf.GradientTape() as tape:
                tape.watch([q, k, v])
                loss = tf.reduce_sum(tf.cast(fn(q, k, v, b), tf.float32) ** 2)
            return tape.gradient(loss, [q, k, v])

        return tf.function(fn), tf.function(grad)
    import torch

    def torch_grad(q, k, v, b):
        q, k, v = (t.detach().requires_grad_() for t in (q, k, v))
        return torch.autograd.grad((fn(q, k, v, b).float() ** 2).sum(), (q, k, v))

    return fn, torch_grad


def measure(backend: str, repeats: int, dtype: str = "float32") -> dict:
    os.environ["KERAS_BACKEND"] = backend
    import numpy as np
    from keras import ops

    rng = np.random.default_rng(0)
    q, k, v = (ops.cast(rng.standard_normal(SHAPE, dtype=np.float32), dtype) for _ in range(3))
    b, s, h, _ = SHAPE
    bias = ops.cast(rng.standard_normal((b, h, s, s), dtype=np.float32), dtype)

    def best(f):
        def block():
            sums = [ops.sum(ops.cast(t, "float32")) for t in _flat(f())]
            ops.convert_to_numpy(ops.sum(ops.stack(sums)))

        return best_ms(block, repeats)

    out = {}
    for name, fn in _variants(ops, dtype).items():
        forward, grad = _compile(backend, fn)
        out[name] = {"forward_ms": best(lambda f=forward: f(q, k, v, bias)),
                     "with_gradient_ms": best(lambda g=grad: g(q, k, v, bias))}
    return out


def _flat(x):
    return list(x) if isinstance(x, (list, tuple)) else [x]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="jax,torch,tensorflow")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(measure(args.worker, args.repeats, args.dtype)))
        return 0
    print(f"attention core, {args.dtype}, shape (batch, length, heads, head_dim) = {SHAPE}; best of "
          f"{args.repeats}; ratio = keras-hub's time / this variant's (same process)")
    print(f"{'backend':11s} {'variant':12s} {'forward ms':>10s} {'ratio':>6s} "
          f"{'fwd+grad ms':>11s} {'ratio':>6s}")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    for backend in args.backends.split(","):
        done = subprocess.run([sys.executable, "-m", "benchmarks.micro.attention_core", "--worker",
                               backend, "--repeats", str(args.repeats), "--dtype", args.dtype],
                              capture_output=True, text=True, env=env, check=True)
        rows = json.loads(done.stdout.strip().splitlines()[-1])
        base = rows["keras-hub"]
        for name, row in rows.items():
            print(f"{backend:11s} {name:12s} {row['forward_ms']:10.2f} "
                  f"{base['forward_ms'] / row['forward_ms']:6.2f} "
                  f"{row['with_gradient_ms']:11.2f} "
                  f"{base['with_gradient_ms'] / row['with_gradient_ms']:6.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
