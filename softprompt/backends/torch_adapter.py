"""PyTorch adapter (CPU, CUDA): data parallel with `torch.distributed` under ``torchrun``.

Keras 3 has no `keras.distribution` for torch, so data parallel is done the
DDP way, by hand and for the one trainable variable: ``torchrun`` starts one
process per device, every process holds the whole (frozen) model and feeds its
rows of each global batch (`Distribution.shard_batch`), and `Distribution.prepare`

- sends rank 0's prompt to every process,
- registers a hook on the prompt's torch tensor that all-reduces its gradient
  and divides by the number of processes, and
- scales softprompt's loss by ``processes * local_tokens / global_tokens``,

so the averaged gradient is exactly the gradient of the global batch's mean
token loss, as one process computes it; the loss value every process reports
is that global loss too. The process group uses ``nccl`` on
GPUs and ``gloo`` on CPU. `TorchAdapter.launch` re-runs a command under
``torchrun`` (``softprompt train --devices N``).
"""

from __future__ import annotations

import atexit
import os
import subprocess
import sys

from softprompt.backends.base import (
    Adapter,
    Device,
    Distribution,
    install_global_token_loss,
    parse_mesh,
    pick_kind,
)

#: Set by torchrun in every process it starts.
_TORCHRUN_ENV = ("WORLD_SIZE", "RANK", "LOCAL_RANK")


def under_torchrun() -> bool:
    """Whether this process was started by ``torchrun`` (or another env:// launcher)."""
    return all(name in os.environ for name in _TORCHRUN_ENV)


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1")) if under_torchrun() else 1


def _use_local_gpu() -> None:
    """Pin this process to its GPU (LOCAL_RANK) before keras creates tensors on "cuda"."""
    import torch

    if under_torchrun() and torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))


def _join_process_group() -> int:
    """Join torchrun's process group (once per process; left at exit); returns the rank.

    A group cannot be re-created reliably after ``destroy_process_group`` in
    the same process, so it lives as long as the process does.
    """
    import torch
    import torch.distributed as dist

    _use_local_gpu()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        atexit.register(_leave_process_group)
    return dist.get_rank()


def _leave_process_group() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


def _process_sum(value):
    """Sum a tensor over the processes (a detached copy; the graph is not touched)."""
    import torch.distributed as dist

    total = value.detach().clone()
    dist.all_reduce(total)
    return total


class TorchDistribution(Distribution):
    """One process of a torchrun job (or the single process) with softprompt's bookkeeping.

    ``kind="data"`` with several processes joins the process group and splits
    batches; ``kind="none"`` under torchrun lets every process train alone on
    whole batches (rank 0 still the only writer).
    """

    def __init__(self, kind, world: int):
        self.kind = kind
        self.num_processes = world
        self.num_replicas = world if kind == "data" else 1
        self.rank = int(os.environ.get("RANK", "0")) if world > 1 else 0
        self._hooks = []
        if self.num_replicas > 1:
            self.rank = _join_process_group()

    def prepare(self, model):
        if self.num_replicas == 1 or getattr(model, "_softprompt_ddp", False):
            return model
        import torch
        import torch.distributed as dist

        world = self.num_replicas

        def average(grad):
            grad = grad.detach().clone()
            dist.all_reduce(grad)
            return grad / world

        for variable in model.trainable_variables:
            tensor = variable.value  # the torch Parameter keras keeps
            with torch.no_grad():
                dist.broadcast(tensor.data, src=0)
            self._hooks.append(tensor.register_hook(average))
        install_global_token_loss(model, _process_sum, grad_scale=float(world))
        model._softprompt_ddp = True
        return model

    def _process_shards(self) -> tuple[int, int]:
        return self.num_replicas, self.rank

    def barrier(self) -> None:
        if self.num_replicas > 1:
            import torch.distributed as dist

            dist.barrier()

    def close(self) -> None:
        """Remove the gradient hooks; the process group stays until the process exits."""
        for hook in self._hooks:
            hook.remove()
        self._hooks = []


def sdpa_attention(query, key, value, bias):
    """T5's attention core through ``torch.nn.functional.scaled_dot_product_attention``.

    Queries ``(batch, q, heads, dim)``, keys and values ``(batch, k, heads, dim)``, `bias`
    broadcastable to ``(batch, heads, q, k)``; T5's scores are unscaled (``scale=1``).
    Called directly rather than through ``keras.ops.dot_product_attention``, which
    copies the queries, keys, values and a batch-broadcast bias into contiguous
    tensors first: torch's CPU kernel reads the heads-first views as they are.

    Example:
        >>> out = sdpa_attention(q, k, v, position_bias)   # (batch, q, heads, dim)
    """
    import torch

    out = torch.nn.functional.scaled_dot_product_attention(
        query.transpose(1, 2), key.transpose(1, 2), value.transpose(1, 2),
        attn_mask=bias.to(query.dtype), scale=1.0)
    return out.transpose(1, 2)


class TorchAdapter(Adapter):
    name = "torch"
    # Attention: torch's own kernel in float32, see `attention_kernel`; in bfloat16 its
    # CPU kernel is the slower one (measure with
    # `python -m benchmarks.micro.attention_core --dtype bfloat16`).
    # Keras runs torch eagerly; torch.compile is opt-in (jit_compile=True).
    default_jit_compile = False

    def matmul(self, a, b):
        """``a @ b``; float32 products on the CPU by oneDNN (`torch_onednn`), others by torch.

        Example:
            >>> backends.current().matmul(x, dense.kernel)
        """
        from softprompt.backends import torch_onednn

        if torch_onednn.usable(a, b):
            return torch_onednn.onednn_matmul(a, b)
        return super().matmul(a, b)

    def compile_function(self, fn, variables, few_rows=False):
        """`fn` run eagerly under ``torch.no_grad()``: an inference call records no autograd
        graph, so it keeps no activations for a backward pass that never comes (the prompt
        is a trainable variable, so without it every tensor downstream of it would).

        A greedy decode of 16 x 356 tokens on the decode benchmark's model adds 140-160 MiB
        to the process's peak instead of 429 (docs/performance.md).

        Example:
            >>> encode = adapter.compile_function(model.call_encoder, model.variables)
        """
        import functools

        import torch

        @functools.wraps(fn)
        def without_autograd(*args):
            with torch.no_grad():
                return fn(*args)

        return without_autograd

    def attention_kernel(self, dtype):
        """`sdpa_attention` (torch's fused scaled-dot-product attention) for float32 inputs.

        On CPU it beats the written-out core on T5-small attention (8 x 228 tokens;
        `python -m benchmarks.micro.attention_core`, docs/performance.md); other dtypes
        get the written-out core (see the class comment).
        """
        import keras

        return sdpa_attention if keras.backend.standardize_dtype(dtype) == "float32" else None

    def single_query_kernel(self, dtype):
        """`attention_kernel`'s: torch's fused kernel beats the elementwise form for one
        query too (a decoding step of the benchmark's model: 0.14 ms against 0.33 ms for
        8 x 228 cached keys, one thread)."""
        return self.attention_kernel(dtype)

    def version(self) -> str:
        import torch

        return torch.__version__

    def devices(self) -> list[Device]:
        import torch

        if torch.cuda.is_available():
            return [
                Device(kind="gpu", name=torch.cuda.get_device_name(i))
                for i in range(torch.cuda.device_count())
            ]
        return [Device(kind="cpu", name="cpu")]

    def configure(self, cpu_devices=None, dtype="float32") -> None:
        """See `Adapter.configure`. torch shows one CPU device per process:
        ``cpu_devices`` / ``SOFTPROMPT_CPU_DEVICES`` is accepted and has no effect
        here; start that many processes with `launch` (or torchrun) instead."""
        super().configure(cpu_devices=cpu_devices, dtype=dtype)
        _use_local_gpu()

    def _set_cpu_devices(self, count: int) -> None:
        pass

    def seed(self, seed: int) -> None:
        import torch

        super().seed(seed)
        torch.manual_seed(seed)

    def small_model_threads(self) -> None:
        """Run CPU ops on one thread: for models as small as the embedded one.

        torch's OpenMP threads meet at every parallel op; for a d=128 model a
        second thread gains little when the cores are free and costs a great
        deal when other processes share them (every op then waits for a busy
        core). ``OMP_NUM_THREADS``, when set, is left to decide; GPUs are not
        affected.
        """
        import torch

        if "OMP_NUM_THREADS" not in os.environ and not torch.cuda.is_available():
            torch.set_num_threads(1)

    def prepare_full_training(self, model) -> None:
        """Make keras' torch `train_step` clear the gradient of every trainable variable.

        keras' torch layers register their variables with torch in a
        ``ParameterDict`` keyed by variable path, and `train_step` clears
        gradients with ``Module.zero_grad()``, which only reaches registered
        parameters. keras-hub's T5 gives the encoder's and the decoder's
        relative attention biases the same path (``self_attention/embeddings``),
        so one of them is not registered: its gradient is never cleared and
        accumulates over the steps (step n applies the sum of the gradients of
        steps 1..n in this process), and a resumed run, which starts a fresh
        sum, diverges from an uninterrupted one. `softprompt adapt` calls this
        on the model it trains whole; prompt tuning trains only the prompt,
        which is registered.
        """
        variables = list(model.trainable_variables)

        def zero_grad(set_to_none: bool = True) -> None:
            for variable in variables:
                tensor = variable.value
                if tensor.grad is not None:
                    if set_to_none:
                        tensor.grad = None
                    else:
                        tensor.grad.zero_()

        object.__setattr__(model, "zero_grad", zero_grad)  # bypass keras' tracking

    def distribute(self, kind="auto", mesh=None, devices=None) -> TorchDistribution:
        mesh = parse_mesh(mesh)
        world = world_size()
        if devices is not None and int(devices) != world:
            raise ValueError(
                f"torch trains on {devices} devices with {devices} processes, this job has "
                f"{world}: start it with `torchrun --nproc-per-node {devices} ...` "
                "(or `softprompt train --devices N`, which does so)"
            )
        kind = pick_kind(kind, world, mesh)
        if kind == "model":
            raise ValueError("model parallel training needs the jax backend "
                             "(KERAS_BACKEND=jax); torch offers 'data'")
        return TorchDistribution(kind, world)

    def needs_launch(self, devices) -> bool:
        return devices is not None and int(devices) > 1 and not under_torchrun()

    def launch(self, nproc: int, argv: list[str]) -> int:
        """Run ``argv`` (``sys.argv``: a Python script and its arguments) under torchrun.

        ``python -m torch.distributed.run --standalone --nproc-per-node N
        argv...``: one machine, a free local port, one process per device.
        Returns torchrun's exit code. For several machines call torchrun
        yourself (see the README).
        """
        if int(nproc) < 1:
            raise ValueError(f"nproc must be a positive integer, got {nproc!r}")
        if under_torchrun():
            raise ValueError("already running under torchrun; launch() would nest it")
        command = [
            sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc-per-node={int(nproc)}", *argv,
        ]
        return subprocess.call(command)


ADAPTER = TorchAdapter()
