"""JAX's attention kernel (`jax_adapter.softmax_attention`): T5's core and its gradient.

Its backward pass is written by hand, so it is checked against JAX's autodiff of the
written-out core, for the queries, keys, values and the bias, with a padding mask
folded into the bias as `t5_blocks` does. Runs under the JAX backend only.
"""

from __future__ import annotations

import numpy as np
import pytest

from softprompt import backends

pytestmark = pytest.mark.skipif(backends.current().name != "jax",
                                reason="JAX's own kernel (KERAS_BACKEND=jax)")


def _inputs(dtype, masked=True, seed=0):
    import jax.numpy as jnp

    rng = np.random.default_rng(seed)
    q = rng.standard_normal((2, 5, 3, 4))
    k, v = rng.standard_normal((2, 7, 3, 4)), rng.standard_normal((2, 7, 3, 4))
    bias = rng.standard_normal((1, 3, 5, 7))
    mask = np.ones((2, 1, 1, 7))
    mask[1, ..., 4:] = 0  # the second row's last three keys are padding
    if masked:  # (2, 3, 5, 7); unmasked, the position bias alone: (1, 3, 5, 7)
        bias = bias + (1.0 - mask) * -1e9
    return tuple(jnp.asarray(x, dtype) for x in (q, k, v, bias))


def _written_out(q, k, v, bias):
    import jax
    import jax.numpy as jnp

    scores = jnp.einsum("bqnd,bknd->bnqk", q, k) + bias
    return jnp.einsum("bnqk,bknd->bqnd", jax.nn.softmax(scores, axis=-1), v)


def _value_and_grads(fn, args, weights):
    import jax
    import jax.numpy as jnp

    def loss(*a):
        return jnp.sum(fn(*a).astype(jnp.float32) * weights)

    out = jax.jit(fn)(*args)
    grads = jax.jit(jax.grad(loss, argnums=(0, 1, 2, 3)))(*args)
    return out, grads


def test_kernel_and_its_gradient_equal_autodiff_in_float32():
    from softprompt.backends.jax_adapter import softmax_attention

    weights = np.random.default_rng(1).standard_normal((2, 5, 3, 4)).astype("float32")
    for masked in (False, True):
        args = _inputs("float32", masked)
        out, grads = _value_and_grads(softmax_attention(), args, weights)
        ref_out, ref_grads = _value_and_grads(_written_out, args, weights)
        np.testing.assert_allclose(np.asarray(out), np.asarray(ref_out), rtol=1e-5, atol=1e-6)
        for name, got, want in zip(("query", "key", "value", "bias"), grads, ref_grads):
            np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5,
                                       atol=1e-6, err_msg=f"{name}, masked={masked}")
        # a bias broadcast over the batch gets its gradient summed over the batch
        assert grads[3].shape == args[3].shape == ((2,) if masked else (1,)) + (3, 5, 7)
    # padded keys get no attention, hence no gradient
    np.testing.assert_array_equal(np.asarray(grads[1])[1, 4:], 0.0)
    np.testing.assert_array_equal(np.asarray(grads[2])[1, 4:], 0.0)


def test_bfloat16_inputs_run_in_float32_and_return_bfloat16():
    import jax.numpy as jnp

    from softprompt.backends.jax_adapter import softmax_attention

    args = _inputs("bfloat16")
    weights = np.random.default_rng(1).standard_normal((2, 5, 3, 4)).astype("float32")
    out, grads = _value_and_grads(softmax_attention(), args, weights)
    assert out.dtype == jnp.bfloat16 and all(g.dtype == jnp.bfloat16 for g in grads)
    # the float32 computation on the same (bfloat16-rounded) values, rounded once
    exact = tuple(a.astype(jnp.float32) for a in args)
    ref_out, ref_grads = _value_and_grads(_written_out, exact, weights)
    for got, want in zip((out,) + tuple(grads), (ref_out,) + tuple(ref_grads)):
        got, want = np.asarray(got, np.float32), np.asarray(want)
        np.testing.assert_allclose(got, want, rtol=2 ** -7, atol=2 ** -7 * np.abs(want).max())


def test_the_adapter_offers_it_on_cpu():
    import jax

    from softprompt.backends.jax_adapter import softmax_attention

    kernel = backends.current().attention_kernel("float32")
    if jax.default_backend() == "cpu":
        assert kernel is softmax_attention()
    else:
        assert kernel is None
