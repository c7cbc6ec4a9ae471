"""The torch adapter's float32 CPU products by oneDNN (`torch_onednn.onednn_matmul`).

Its backward pass is written by hand, so the product and both gradients are checked
against torch's own ``x @ kernel`` and autograd, over random shapes (hypothesis), and
the adapter is checked to use it exactly where it applies. Runs under torch only.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from softprompt import backends

pytestmark = pytest.mark.skipif(backends.current().name != "torch",
                                reason="torch's own products (KERAS_BACKEND=torch)")


def _pair(lead, k, n, seed, kernel_grad):
    import torch

    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(*lead, k, generator=gen, requires_grad=True)
    kernel = torch.randn(k, n, generator=gen, requires_grad=kernel_grad)
    weights = torch.randn(*lead, n, generator=gen)
    return x, kernel, weights


def _value_and_grads(product, x, kernel, weights):

    x.grad = kernel.grad = None
    out = product(x, kernel)
    (out * weights).sum().backward()
    grads = (x.grad.clone(), None if kernel.grad is None else kernel.grad.clone())
    return out.detach(), grads


@settings(max_examples=25, deadline=None)
@given(lead=st.lists(st.integers(1, 9), min_size=1, max_size=3), k=st.integers(1, 70),
       n=st.integers(1, 70), seed=st.integers(0, 2**16), kernel_grad=st.booleans())
def test_product_and_gradients_equal_torch(lead, k, n, seed, kernel_grad):
    import torch

    from softprompt.backends.torch_onednn import onednn_matmul, usable

    x, kernel, weights = _pair(lead, k, n, seed, kernel_grad)
    assert usable(x, kernel)
    out, (grad_x, grad_kernel) = _value_and_grads(onednn_matmul, x, kernel, weights)
    ref, (ref_x, ref_kernel) = _value_and_grads(torch.matmul, x, kernel, weights)
    assert out.shape == ref.shape and out.dtype == torch.float32
    scale = float(np.sqrt(k))  # float32 sums of k terms, in another order than MKL's
    np.testing.assert_allclose(out.numpy(), ref.numpy(), rtol=1e-5, atol=1e-5 * scale)
    np.testing.assert_allclose(grad_x.numpy(), ref_x.numpy(), rtol=1e-5,
                               atol=1e-5 * float(np.sqrt(n)))
    if kernel_grad:
        np.testing.assert_allclose(grad_kernel.numpy(), ref_kernel.numpy(), rtol=1e-5,
                                   atol=1e-4 * float(np.sqrt(np.prod(lead))))
    else:
        assert grad_kernel is None


def test_strided_inputs_and_no_grad_mode():
    import torch

    from softprompt.backends.torch_onednn import onednn_matmul

    x = torch.randn(4, 33, 17).transpose(1, 2)          # (4, 17, 33), not contiguous
    kernel = torch.randn(64, 33).t()                     # (33, 64), transposed view
    with torch.no_grad():
        out = onednn_matmul(x, kernel)
    np.testing.assert_allclose(out.numpy(), (x @ kernel).numpy(), rtol=1e-5, atol=1e-4)


def test_adapter_routes_only_float32_cpu_products_to_onednn(monkeypatch):
    import torch

    from softprompt.backends import torch_onednn

    calls = []
    real = torch_onednn.onednn_matmul
    monkeypatch.setattr(torch_onednn, "onednn_matmul",
                        lambda a, b: calls.append((a.dtype, b.dtype)) or real(a, b))
    adapter = backends.current()
    x, kernel = torch.randn(3, 5, 8), torch.randn(8, 4)
    np.testing.assert_allclose(adapter.matmul(x, kernel).numpy(), (x @ kernel).numpy(),
                               rtol=1e-5, atol=1e-5)
    assert calls == [(torch.float32, torch.float32)]
    adapter.matmul(x.bfloat16(), kernel.bfloat16())      # bfloat16: torch's own kernel
    adapter.matmul(x, torch.randn(3, 8, 4))              # batched kernel: torch.matmul
    assert len(calls) == 1
