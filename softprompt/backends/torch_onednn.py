"""float32 products on the CPU through oneDNN, for the torch adapter's `matmul`.

torch runs a float32 ``x @ kernel`` on the CPU through MKL's ``sgemm`` (``aten::mm``).
oneDNN, which torch also ships (and TensorFlow uses for the same products), runs
T5's shapes faster on one and on two threads: 1.07-1.17× for the ``1824 × 512 × 512``
and feed-forward products of a T5-small train step, 1.5-1.8× for the LM head's
``64 × 512 × 32128`` (`python -m benchmarks.micro.step_bound --framework torch-onednn`
against ``--framework torch``; docs/performance.md). `onednn_matmul` computes ``x @ kernel`` with oneDNN's inner
product (``torch.ops.mkldnn._linear_pointwise``, the op torch's own compiler emits for
CPU linears), with a backward pass that runs the input gradient the same way; the
kernel's gradient, when it needs one (model tuning), is ``aten::mm``.

The results are float32 products summed in another order than MKL's: equal to
``x @ kernel`` to float32 rounding (relative error ~1e-6), not bit for bit.

Example:
    >>> y = onednn_matmul(x, kernel)     # x (..., k) float32 CPU, kernel (k, n)
"""

from __future__ import annotations

import functools


@functools.cache
def available() -> bool:
    """Whether this torch build has oneDNN's inner product for CPU tensors."""
    import torch

    return bool(torch.backends.mkldnn.is_available()
                and hasattr(torch.ops.mkldnn, "_linear_pointwise"))


def _linear(x, weight):
    """``x @ weight.T`` by oneDNN (`weight` is ``(out, in)``, any strides)."""
    import torch

    return torch.ops.mkldnn._linear_pointwise(x, weight, None, "none", [], "")


@functools.cache
def _function():
    import torch

    class OneDnnMatmul(torch.autograd.Function):
        """``x @ kernel`` forward and input-gradient backward by oneDNN."""

        @staticmethod
        def forward(ctx, x, kernel):
            ctx.save_for_backward(x if kernel.requires_grad else None, kernel)
            return _linear(x, kernel.t())

        @staticmethod
        def backward(ctx, grad):
            x, kernel = ctx.saved_tensors
            grad_x = grad_kernel = None
            if ctx.needs_input_grad[0]:
                grad_x = _linear(grad.contiguous(), kernel)
            if ctx.needs_input_grad[1]:
                rows = grad.reshape(-1, grad.shape[-1])
                grad_kernel = x.reshape(-1, x.shape[-1]).t() @ rows
            return grad_x, grad_kernel

    return OneDnnMatmul


def usable(x, kernel) -> bool:
    """Whether `onednn_matmul` applies: float32 CPU tensors, a 2-D kernel, rows in `x`."""
    import torch

    return (x.dtype == torch.float32 and kernel.dtype == torch.float32
            and x.device.type == "cpu" and kernel.device.type == "cpu"
            and kernel.ndim == 2 and x.ndim >= 2 and x.shape[-1] == kernel.shape[0]
            and x.numel() > 0 and available())


def onednn_matmul(x, kernel):
    """``x @ kernel`` (`kernel` 2-D) by oneDNN, differentiable in both; see the module doc."""
    return _function().apply(x, kernel)
