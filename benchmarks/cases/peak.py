"""The machine's dense-matmul peak, measured with each framework in the same run.

A float32 ``n x n @ n x n`` product (``2 n^3`` FLOPs), `repeats` times per timed call,
compiled where the framework compiles (jax.jit; TensorFlow's graph; torch eager, which
calls its BLAS directly). The result is summed on the device so nothing large is copied
back. On an accelerator the size is raised to 8192 so that the product fills it.
"""

from __future__ import annotations

from benchmarks.cases import Case


class Matmul(Case):
    def __init__(self, framework, size=2048, repeats=3, seed=0):
        self.framework, self.size, self.repeats, self.seed = framework, size, repeats, seed

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
                "flops_per_call": 2 * self.size**3 * self.repeats}

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
            self._jit = jax.jit(lambda x, y: jnp.sum(x @ y))
            return jnp.asarray(a), jnp.asarray(b)
        return float(self._jit(a, b))

    def _torch(self, a, b, prepare=False):
        import torch

        if prepare:
            dev = "cuda" if torch.cuda.is_available() else "cpu"
            return torch.tensor(a, device=dev), torch.tensor(b, device=dev)
        return float(torch.sum(a @ b))

    def _tensorflow(self, a, b, prepare=False):
        import tensorflow as tf

        if prepare:
            self._graph = tf.function(lambda x, y: tf.reduce_sum(tf.matmul(x, y)))
            return tf.constant(a), tf.constant(b)
        return float(self._graph(a, b))

    def time_matmul(self):
        for _ in range(self.repeats):
            self.fn(self.a, self.b)
        return {"flops": 2 * self.size**3 * self.repeats}
