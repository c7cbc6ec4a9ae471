"""JAX's `compile_function(..., few_rows=True)`: a decoding step's products outside YNNPACK.

The option must reach XLA (the compiled program has no YNNPACK fusion where the default
one has), must not change a result beyond float32 rounding, and must never fail where XLA
does not know it. Runs under the JAX backend only.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

from softprompt import backends

pytestmark = pytest.mark.skipif(backends.current().name != "jax",
                                reason="JAX's compiler options (KERAS_BACKEND=jax)")


def _layer_and_inputs():
    dense = keras.layers.Dense(1024, use_bias=False)
    x = np.random.default_rng(0).standard_normal((8, 256)).astype("float32")
    dense.build((None, 256))
    return dense, x


def test_few_rows_is_the_same_function():
    dense, x = _layer_and_inputs()
    adapter = backends.current()
    plain = adapter.compile_function(lambda v: dense(v), dense.weights)
    few = adapter.compile_function(lambda v: dense(v), dense.weights, few_rows=True)
    np.testing.assert_allclose(np.asarray(few(x)), np.asarray(plain(x)), rtol=1e-5, atol=1e-5)
    dense.kernel.assign(dense.kernel * 2.0)  # weights are arguments, read on each call
    np.testing.assert_allclose(np.asarray(few(x)), np.asarray(plain(x)), rtol=1e-5, atol=1e-5)


def test_the_option_reaches_xla():
    import jax

    from softprompt.backends.jax_adapter import few_rows_compiler_options

    options = few_rows_compiler_options()
    if jax.default_backend() != "cpu":
        assert options is None
        return
    w = np.ones((256, 1024), np.float32)
    x = np.ones((8, 256), np.float32)

    def hlo(**kwargs):
        return jax.jit(lambda a, b: a @ b, **kwargs).lower(x, w).compile().as_text()

    if "ynn_fusion" not in hlo():
        pytest.skip("this XLA runs no YNNPACK fusions")
    assert options == {"xla_cpu_experimental_ynn_fusion_type": ""}
    assert "ynn_fusion" not in hlo(compiler_options=options)


def test_an_unknown_option_gives_none(monkeypatch):
    """An XLA that refuses the option (older jaxlib): plain compilation, no error."""
    import jax

    from softprompt.backends import jax_adapter

    real_jit = jax.jit

    def refusing_jit(fn, **kwargs):
        if "compiler_options" in kwargs:
            raise jax.errors.JaxRuntimeError("INVALID_ARGUMENT: no such option")
        return real_jit(fn, **kwargs)

    jax_adapter.few_rows_compiler_options.cache_clear()
    monkeypatch.setattr(jax, "jit", refusing_jit)
    try:
        assert jax_adapter.few_rows_compiler_options() is None
        dense, x = _layer_and_inputs()
        step = backends.current().compile_function(lambda v: dense(v), dense.weights,
                                                   few_rows=True)
        assert np.asarray(step(x)).shape == (8, 1024)
    finally:
        jax_adapter.few_rows_compiler_options.cache_clear()
