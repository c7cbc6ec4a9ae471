"""How fast a train step can be: its matrix products alone, each timed on its own.

The train-step comparison's step (T5-small shape, batch 8, 128 input tokens + prompt 100,
8 targets) is a list of matrix products (`step_products`: the forward pass and the
input-gradient backward pass the prompt needs, exactly the FLOPs of
`benchmarks.harness.flops.step_flops`). Timing each distinct product alone, in a loop,
with its operands in memory, and summing over the list gives a bound: no implementation
of the step in that framework can be faster than its products, with every norm, softmax,
activation, copy and the optimizer left out. PEFT's step is timed in the same torch
process, interleaved with the products, so the ratio ``PEFT step / bound`` is the most
any torch implementation of the same FLOPs can gain on PEFT here.

Run: ``python -m benchmarks.micro.step_bound [--framework F] [--rounds 5]`` with F one of
``torch`` (``aten::mm``, MKL: what PEFT runs), ``torch-onednn`` (oneDNN: what softprompt's
torch adapter runs), ``jax``, ``tensorflow``
(a minute or two; threads: each framework's default).
"""

from __future__ import annotations

import argparse
import collections
import os
import statistics
import time


def step_products(*, batch, prompt_length, input_length, target_length, hidden_dim,
                  num_layers, num_heads, key_value_dim, intermediate_dim, vocabulary_size,
                  gated) -> collections.Counter:
    """``{(batches, m, k, n): count}``: the products of one step (see the module doc).

    Their FLOPs, ``2 * batches * m * k * n`` each, add up to `step_flops`'s ``step``.
    """
    b, p, t, d, h = batch, prompt_length, target_length, hidden_dim, num_heads
    s, dk, ff = prompt_length + input_length, key_value_dim, intermediate_dim
    inner = h * dk
    out: collections.Counter = collections.Counter()

    def add(m, k, n, count=1, batches=1):
        out[(batches, m, k, n)] += count

    def dense(rows, n_in, n_out, count=1):
        add(rows, n_in, n_out, count)

    def dense_grad(rows, n_in, n_out, count=1):  # dX = dY @ W^T
        add(rows, n_out, n_in, count)

    def attention(q, k, grads=0):
        """Scores and weighted values; `grads` operands' gradients of each (0, 1 or 2)."""
        bh = b * h
        if grads == 0:
            add(q, dk, k, batches=bh)                  # Q K^T
            add(q, k, dk, batches=bh)                  # P V
            return
        add(q, k, dk, batches=bh)                      # dQ = dS K
        add(q, dk, k, batches=bh)                      # dP = dO V^T
        if grads == 2:
            add(k, q, dk, batches=bh, count=2)         # dK = dS^T Q, dV = P^T dO

    def feed_forward(rows, grad=False):
        f = dense_grad if grad else dense
        f(rows, d, ff, 2 if gated else 1)
        f(rows, ff, d)

    for _ in range(num_layers):  # forward
        dense(b * s, d, inner, 3)
        attention(s, s)
        dense(b * s, inner, d)
        feed_forward(b * s)
        dense(b * t, d, inner, 3)
        attention(t, t)
        dense(b * t, inner, d)
        dense(b * t, d, inner)
        dense(b * s, d, inner, 2)
        attention(t, s)
        dense(b * t, inner, d)
        feed_forward(b * t)
    dense(b * t, d, vocabulary_size)
    dense_grad(b * t, d, vocabulary_size)  # backward from here
    for layer in range(num_layers):
        first = layer == 0
        # encoder: in the first layer only the prompt rows' q/k/v input gradients count
        dense_grad(b * p if first else b * s, d, inner, 3)
        attention(s, s, grads=2)
        dense_grad(b * s, inner, d)
        feed_forward(b * s, grad=True)
        # decoder
        if not first:  # the first layer's self-attention does not depend on the prompt
            dense_grad(b * t, d, inner, 3)
            attention(t, t, grads=2)
            dense_grad(b * t, inner, d)
        dense_grad(b * s, d, inner, 2)
        if first:  # the cross-attention scores need only the keys' gradient
            add(s, t, dk, batches=b * h)
            add(t, dk, s, batches=b * h)
            add(s, t, dk, batches=b * h)
        else:
            dense_grad(b * t, d, inner)
            attention(t, s, grads=2)
        dense_grad(b * t, inner, d)
        feed_forward(b * t, grad=True)
    return out


def product_flops(products) -> int:
    return sum(2 * bt * m * k * n * count for (bt, m, k, n), count in products.items())


def _timer(framework: str):
    """``make(batches, m, k, n) -> call`` (one product of fresh random float32 operands)."""
    if framework in ("torch", "torch-onednn"):
        import torch

        from softprompt.backends.torch_onednn import onednn_matmul

        single = onednn_matmul if framework == "torch-onednn" else torch.mm

        def make(bt, m, k, n):
            a, w = torch.randn(bt, m, k), torch.randn(bt, k, n)
            if bt == 1:
                a, w = a[0], w[0]
                return lambda: single(a, w)
            return lambda: torch.bmm(a, w)
        return make
    if framework == "jax":
        import jax

        product = jax.jit(lambda a, w: a @ w)

        def make(bt, m, k, n):
            a = jax.random.normal(jax.random.key(0), (bt, m, k) if bt > 1 else (m, k))
            w = jax.random.normal(jax.random.key(1), (bt, k, n) if bt > 1 else (k, n))
            return lambda: product(a, w).block_until_ready()
        return make
    import tensorflow as tf

    product = tf.function(lambda a, w: tf.matmul(a, w))

    def make(bt, m, k, n):
        a = tf.random.normal((bt, m, k) if bt > 1 else (m, k))
        w = tf.random.normal((bt, k, n) if bt > 1 else (k, n))
        return lambda: product(a, w).numpy()
    return make


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--framework", choices=["torch", "torch-onednn", "jax", "tensorflow"],
                        default="torch",
                        help="torch-onednn: torch, its 2-D products by oneDNN as softprompt's "
                             "torch adapter runs them (batched ones stay torch.bmm)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5, help="calls per product per round")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from benchmarks.harness.flops import step_flops
    from benchmarks.profiles import PROFILES

    p = PROFILES["short"]
    shape = dict(batch=p.batch, prompt_length=p.prompt_length, input_length=p.input_length,
                 target_length=p.target_length, hidden_dim=512, num_layers=6, num_heads=8,
                 key_value_dim=64, intermediate_dim=2048, vocabulary_size=32128, gated=False)
    products = step_products(**shape)
    flops = product_flops(products)
    assert flops == step_flops(**shape)["step"], (flops, step_flops(**shape))
    make = _timer(args.framework)
    calls = {key: make(*key) for key in products}
    peft = None
    if args.framework.startswith("torch"):
        from benchmarks.cases.hf_cases import PeftTrain

        peft = PeftTrain(p.train_model.to_dict(), p.batch, p.input_length, p.prompt_length,
                         p.target_length)
        peft.setup()
    for call in calls.values():
        call()
    bounds, peft_steps = [], []
    per_product = collections.defaultdict(list)
    for _ in range(args.rounds):
        total = 0.0
        for key, call in calls.items():
            started = time.perf_counter()
            for _ in range(args.repeats):
                call()
            seconds = (time.perf_counter() - started) / args.repeats
            per_product[key].append(seconds)
            total += seconds * products[key]
        bounds.append(total)
        if peft is not None:
            peft_steps.append(peft.run("step")["seconds"])
    bound = statistics.median(bounds)
    print(f"{args.framework}: {flops / 1e9:.1f} GFLOP in {sum(products.values())} products "
          f"({len(products)} shapes); their sum, each timed alone: {bound:.3f} s "
          f"({flops / bound / 1e9:.0f} GFLOP/s); median of {args.rounds} rounds; "
          f"load {os.getloadavg()[0]:.2f}")
    if peft_steps:
        ratio = statistics.median([s / b for s, b in zip(peft_steps, bounds)])
        print(f"PEFT's whole step in the same rounds: {statistics.median(peft_steps):.3f} s; "
              f"PEFT step / products alone: {ratio:.2f}x (the most any torch implementation "
              "of these FLOPs can gain on PEFT)")
    print("largest shares (batches, m, k, n) x count: seconds")
    shares = {k: statistics.median(v) * products[k] for k, v in per_product.items()}
    for key, seconds in sorted(shares.items(), key=lambda kv: -kv[1])[:8]:
        bt, m, k, n = key
        print(f"  {bt:3d} x {m:5d} x {k:5d} x {n:5d}  x{products[key]:3d}: {seconds:.3f} s "
              f"({2 * bt * m * k * n / statistics.median(per_product[key]) / 1e9:.0f} GFLOP/s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
