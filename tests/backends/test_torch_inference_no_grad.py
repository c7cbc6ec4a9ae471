"""The torch adapter's inference functions record no autograd graph.

`TorchAdapter.compile_function` runs its function under ``torch.no_grad()``: a decode or a
scoring pass reads the trainable prompt, and without it every tensor downstream would carry
a graph (and keep the activations it saves) until the result is dropped. Runs under the
torch backend only.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

from softprompt import backends

pytestmark = pytest.mark.skipif(backends.current().name != "torch",
                                reason="torch's autograd (KERAS_BACKEND=torch)")


def _trainable_product():
    prompt = keras.Variable(np.ones((3, 4), "float32"), trainable=True)
    x = np.arange(8, dtype="float32").reshape(2, 4)

    def fn(inputs):
        return keras.ops.matmul(inputs, keras.ops.transpose(prompt.value))

    return fn, prompt, x


def test_a_plain_call_would_record_a_graph():
    fn, _, x = _trainable_product()
    assert fn(keras.ops.convert_to_tensor(x)).requires_grad  # what the wrapper prevents


def test_compiled_functions_record_none_and_compute_the_same():
    fn, prompt, x = _trainable_product()
    compiled = backends.current().compile_function(fn, [prompt])
    out = compiled(keras.ops.convert_to_tensor(x))
    assert not out.requires_grad and out.grad_fn is None
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(out),
                                  keras.ops.convert_to_numpy(fn(keras.ops.convert_to_tensor(x))))
    assert compiled.__wrapped__ is fn


def test_autograd_is_back_on_after_the_call():
    import torch

    fn, prompt, x = _trainable_product()
    backends.current().compile_function(fn, [prompt], few_rows=True)(
        keras.ops.convert_to_tensor(x))
    assert torch.is_grad_enabled()
