"""The machine's dense-matmul peak, measured with each framework in the same run.

A float32 (or bfloat16) ``n x n @ n x n`` product (``2 n^3`` FLOPs), `repeats` times per
timed call, compiled where the framework compiles (jax.jit; TensorFlow's graph; torch eager,
which calls its BLAS directly). In bfloat16 each framework's fast form: JAX asks for a
float32 result (``preferred_element_type``, as `JaxAdapter.matmul` does), torch and
TensorFlow multiply bfloat16 tensors. Nothing large is copied back: torch and TensorFlow
sum the result on the device, JAX reads one element of it (see `_jax`). On an accelerator
the size is raised to 8192 so that the product fills it.
"""

from __future__ import annotations

from benchmarks.cases import Case


class Matmul(Case):
    def __init__(self, framework, size=2048, repeats=3, seed=0, dtype="float32"):
        self.framework, self.size, self.repeats, self.seed = framework, size, repeats, seed
        self.dtype = dtype

    def setup(self):
        import numpy as np

        rng = np.random.default_rng(self.seed)
        self.fn = getattr(self, "_" + self.framework)
        accelerated = self._accelerated()
        if accelerated:
            self.size = max(self.size, 8192)
        a = rng.standard_normal((self.size, self.size), dtype=np.float32)
        b = rng.standard_normal((self.size, self.size), dtype=np.float32)
        self.a, self.b = self.fn(a, b, prepare=True)
        self.time_matmul()  # compile / warm
        return {"size": self.size, "repeats": self.repeats, "accelerated": accelerated,
                "flops_per_call": 2 * self.size**3 * self.repeats, "dtype": self.dtype}

    def _accelerated(self) -> bool:
        if self.framework == "jax":
            import jax

            return jax.devices()[0].platform != "cpu"
        if self.framework == "torch":
            import torch

            return torch.cuda.is_available()
        import tensorflow as tf

        return bool(tf.config.list_logical_devices("GPU"))

    def _jax(self, a, b, prepare=False):
        import jax
        import jax.numpy as jnp

        if prepare:
            # the product alone: XLA fuses a following `sum` into the dot and then runs it
            # at less than half the speed (bfloat16 2048^3 on one core: 76 vs 175 GFLOP/s)
            result = jnp.float32 if self.dtype != "float32" else None
            self._jit = jax.jit(lambda x, y: jnp.matmul(x, y, preferred_element_type=result))
            return jnp.asarray(a, self.dtype), jnp.asarray(b, self.dtype)
        return float(self._jit(a, b).block_until_ready()[0, 0])

    def _torch(self, a, b, prepare=False):
        import torch

        if prepare:
            dev = "cuda" if torch.cuda.is_available() else "cpu"
            dtype = getattr(torch, self.dtype)
            return (torch.tensor(a, device=dev, dtype=dtype),
                    torch.tensor(b, device=dev, dtype=dtype))
        return float(torch.sum(a @ b, dtype=torch.float32))

    def _tensorflow(self, a, b, prepare=False):
        import tensorflow as tf

        if prepare:
            self._graph = tf.function(
                lambda x, y: tf.reduce_sum(tf.cast(tf.matmul(x, y), tf.float32)))
            return tf.cast(tf.constant(a), self.dtype), tf.cast(tf.constant(b), self.dtype)
        return float(self._graph(a, b))

    def time_matmul(self):
        for _ in range(self.repeats):
            self.fn(self.a, self.b)
        return {"flops": 2 * self.size**3 * self.repeats}
