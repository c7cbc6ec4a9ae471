"""The interface every backend adapter implements, and the `Distribution` it hands out.

An `Adapter` is what the backend-neutral core and CLI may ask of a framework;
a `Distribution` is one way of spreading training over devices, made by
`Adapter.distribute`. Every framework uses its own machinery (no engine of
ours): `keras.distribution` on JAX, `tf.distribute.MirroredStrategy` on
TensorFlow, `torch.distributed` under ``torchrun`` on PyTorch.

The training loop calls, in this order::

    from softprompt import backends

    backends.select(name)                      # 0. before keras is imported (CLI --backend)
    adapter = backends.current()
    if adapter.needs_launch(devices):          # 1. torch only: re-run under torchrun
        sys.exit(adapter.launch(devices, sys.argv))
    adapter.configure(cpu_devices=None, dtype="float32")   # 2. before the framework starts
    dist = adapter.distribute("auto", mesh=None, devices=None)  # 3. devices, processes
    adapter.seed(seed)                         # 4. same seed on every process
    with dist.scope():                         # 5. create, compile and train inside
        model = PromptedT5.from_preset(...)
        dist.prepare(model)                    # 6. after the model exists, before training
        model.compile(optimizer=Adafactor(learning_rate=0.3))
        # global_batches: a sequence of (x, y, sample_weight), the SAME on every process
        model.fit(dist.dataset(global_batches), shuffle=False, epochs=..., callbacks=...)
        # or, step by step: model.train_on_batch(*dist.shard_batch(x, y, w))
        if dist.is_writer:                     # 7. rank 0 alone writes files and logs
            model.save_prompt(path)
        dist.barrier()                         #    the others wait before reading them
    dist.close()

The result equals one device given the same global batch: each process feeds
its part of it (`dataset` / `shard_batch`), the gradient of the prompt is
summed over replicas and the loss is divided by the number of real target
tokens in the *global* batch (`prepare` installs that where it is needed).
Callbacks run in every process; those that write (checkpoints, CSV logs,
TensorBoard) should be given to the writer only, those that decide (early
stopping on a dev metric computed from the same prompt) to every process, so
that all stop together.

Why this module is long: it is the whole contract between the core and the
adapters (the `Adapter` and `Distribution` interfaces, the order of calls) and
the helpers every adapter's distribution shares (meshes, sharding batches, the
global token loss), so an adapter's author reads one file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import random
import re
import sys
from collections.abc import Callable

import numpy as np

from softprompt.backends.exclusive import check_environment

#: Values of ``configure(dtype=...)`` (the CLI's ``--dtype``).
DTYPES = ("float32", "bfloat16", "mixed_bfloat16")
#: Values of ``distribute(kind=...)`` (the CLI's ``--distribution``).
KINDS = ("auto", "none", "data", "model")
#: Environment variable read by `Adapter.configure` when ``cpu_devices`` is None.
CPU_DEVICES_ENV = "SOFTPROMPT_CPU_DEVICES"


@dataclasses.dataclass(frozen=True)
class Device:
    """One compute device as a backend sees it."""

    kind: str  # "cpu" | "gpu" | "tpu"
    name: str


class Distribution:
    """How training is spread over devices and processes.

    Made by `Adapter.distribute`; this base class is the single-device case
    (``kind="none"``), and each adapter subclasses it. The order of calls is
    in this module's docstring.

    Attributes:
        kind: ``"none"``, ``"data"`` or ``"model"``.
        num_replicas: how many parts the global batch is split into (data
            parallel replicas: devices for ``data``, the ``batch`` axis of the
            mesh for ``model``, processes under torchrun).
        num_processes: how many processes take part (JAX multi-host, torchrun).
        rank: this process' index, 0 .. num_processes - 1.
        is_writer: True on rank 0 only: the one process that writes
            checkpoints, prompt files and logs.
        mesh: ``(data, model)`` for ``kind="model"``, else None.

    Example:
        >>> dist = backends.current().distribute("data")
        >>> with dist.scope():
        ...     model = dist.prepare(PromptedT5.from_preset(preset, prompt_length=100))
        ...     model.compile(optimizer=Adafactor(learning_rate=0.3))
        ...     model.train_on_batch(*dist.shard_batch(x, y, target_mask))
        >>> dist.num_replicas, dist.is_writer
        (4, True)
    """

    kind: str = "none"
    num_replicas: int = 1
    num_processes: int = 1
    rank: int = 0
    mesh: tuple[int, int] | None = None

    @property
    def is_writer(self) -> bool:
        return self.rank == 0

    def scope(self):
        """Context manager: create the model, compile and fit inside it."""
        return contextlib.nullcontext()

    def prepare(self, model):
        """Make `model` train as one device would; returns `model`.

        Call once, inside `scope`, after the model exists and before it
        trains. Where replicas each see part of the batch (TensorFlow, torch)
        it makes softprompt's loss divide by the real target tokens of the
        *global* batch, so summed gradients equal one device's, and makes the
        reported loss the global batch's; on torch it also sends rank 0's
        prompt to every process and all-reduces the prompt's gradient; on
        TensorFlow it builds the model (see `shard_batch`). JAX needs nothing:
        XLA computes the global batch's loss. A loss given to
        ``compile(loss=...)`` is left as it is (replicas then average
        per-replica means: exact only when every replica holds as many target
        tokens).
        """
        return model

    def shard_batch(self, x, y=None, sample_weight=None):
        """This process' part of one global batch, for ``train_on_batch`` / ``test_on_batch``.

        `x`, `y`, `sample_weight` are numpy arrays or dicts / tuples of them
        with the batch on axis 0; returns ``(x, y, sample_weight)``. Every
        process must call it with the same global batch. JAX on one host
        returns the batch unchanged (keras splits it over the devices); under
        torchrun and on JAX multi-host each process keeps its contiguous slice
        of rows; TensorFlow returns per-replica values (one slice per
        replica), which needs `prepare` to have run.
        """
        rows = batch_rows(x)
        self.check_batch(rows)
        count, index = self._process_shards()
        if count == 1:
            return x, y, sample_weight
        start, stop = row_bounds(rows, count, index)
        cut = row_slicer(start, stop)
        return cut(x), cut(y), cut(sample_weight)

    def dataset(self, global_batches):
        """A `keras.utils.PyDataset` of this process' parts, for ``fit`` / ``evaluate``.

        `global_batches` is a sequence (``len`` and indexing, e.g. a list or a
        `keras.utils.PyDataset`) of ``(x, y, sample_weight)`` global batches,
        the same on every process. Each item is cut as `shard_batch` cuts it,
        except that on TensorFlow keras' own input pipeline splits the global
        batch over the replicas. Pass ``shuffle=False`` to ``fit`` (keras
        would shuffle the order of the batches differently in each process);
        shuffle the global batches yourself, with the same seed everywhere.
        """
        return sharded_dataset(self, global_batches)

    def check_batch(self, rows: int) -> None:
        """Raise a one-line `ValueError` if `rows` cannot be split over the replicas."""
        if rows < self.num_replicas:
            raise ValueError(
                f"a global batch of {rows} rows cannot be split over {self.num_replicas} "
                f"replicas: use a batch size of at least {self.num_replicas}"
            )

    def barrier(self) -> None:
        """Wait until every process gets here (e.g. after rank 0 wrote a checkpoint)."""

    def close(self) -> None:
        """Release what the distribution holds (torch: its gradient hooks; the process
        group itself lives until the process exits)."""

    def _process_shards(self) -> tuple[int, int]:
        """(number of process-level shards of a global batch, this process' shard)."""
        return 1, 0

    def __repr__(self):
        mesh = f", mesh={self.mesh[0]}x{self.mesh[1]}" if self.mesh else ""
        return (
            f"{type(self).__name__}(kind={self.kind!r}, replicas={self.num_replicas}, "
            f"processes={self.num_processes}, rank={self.rank}{mesh})"
        )


#: ``SOFTPROMPT_MALLOC=default`` leaves glibc's allocator as it is (see `keep_freed_memory`).
MALLOC_ENV = "SOFTPROMPT_MALLOC"


def keep_freed_memory() -> bool:
    """Make glibc's malloc reuse freed memory for large tensors instead of unmapping it.

    torch allocates CPU tensors with ``malloc``, and XLA's CPU buffers come from it too;
    glibc serves blocks over its mmap threshold (at most 32 MiB) with a fresh ``mmap``
    and unmaps them on ``free``, so every op whose output is that large page-faults on
    each of its pages. A 5-prompt ensemble of 16 T5-small inputs has 142 MiB
    feed-forward activations: a torch ReLU on one takes 80 ms with the faults and 13 ms
    without; an XLA product with a 37 MiB result, 110 ms and 90 ms (one core,
    `python -m benchmarks.micro.allocator`). Every
    `Adapter` calls it when it is made (on the first `backends.current()`). With
    ``mmap`` off (``M_MMAP_MAX=0``) and the heap trimmed only past 1 GiB, freed
    blocks are reused; the process keeps its peak memory instead of returning it.
    What ``MALLOC_MMAP_MAX_=0`` in the environment of a new process does, set from
    inside. Linux with glibc only; returns whether it was set.

    Example:
        >>> keep_freed_memory()    # once, before the first large tensor
        True
    """
    if os.environ.get(MALLOC_ENV, "") == "default" or not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl, ...)
        return False
    m_trim_threshold, m_mmap_max = -1, -4
    return bool(mallopt(m_mmap_max, 0)) and bool(mallopt(m_trim_threshold, 1 << 30))


def release_freed_memory() -> bool:
    """Hand the memory this process has freed back to the system (glibc's ``malloc_trim``).

    `keep_freed_memory` keeps freed blocks in the heap for the next tensors, which is what a
    loop of same-shaped steps wants; but building a model frees temporaries (keras makes
    every weight through intermediate tensors) that stay resident after it: building
    T5-small (231 MiB of weights) leaves 400 MiB freed but resident on torch, 300 on JAX,
    130 on TensorFlow (`python -m benchmarks.micro.memory_stages`). torch's steps reuse
    them; XLA's do not (they allocate elsewhere), so on JAX handing them back lowers the
    train step's peak resident memory by ~180 MiB. `PromptedT5.compile` and
    `PromptedT5.from_preset` call it (through `Adapter.release_freed_memory`). Linux with
    glibc only; returns whether it ran.

    Example:
        >>> release_freed_memory()    # after building a model, before its first step
        True
    """
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        trim = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc
        return False
    trim(0)
    return True


class Adapter:
    """What the backend-neutral core may ask of a backend.

    Subclasses live in ``softprompt/backends/<framework>_adapter.py``; the core
    reaches them through `softprompt.backends.current()`. The order of calls
    is in this module's docstring.

    Example:
        >>> adapter = backends.current()
        >>> adapter.configure(dtype="mixed_bfloat16")   # before the first computation
        >>> adapter.devices()
        [Device(kind='cpu', name='TFRT_CPU_0')]
        >>> adapter.seed(0)
        >>> dist = adapter.distribute("auto")
    """

    name: str = ""
    #: `jit_compile` value to give `keras.Model.compile` by default.
    default_jit_compile: bool | str = "auto"

    def __init__(self) -> None:
        # once per process: each adapter module makes its one `ADAPTER` on import
        keep_freed_memory()
        check_environment(self.name)

    def version(self) -> str:
        raise NotImplementedError

    def devices(self) -> list[Device]:
        raise NotImplementedError

    # ----------------------------------------------------------------- set-up
    def configure(self, cpu_devices: int | None = None, dtype: str = "float32") -> None:
        """Set what must be set before the framework starts its runtime.

        Call it before anything creates a tensor (importing keras is fine).

        Args:
            cpu_devices: present this many CPU devices (JAX: simulated host
                devices, TensorFlow: logical CPU devices; torch: one device
                per process, start N processes with torchrun instead). None
                reads ``SOFTPROMPT_CPU_DEVICES``; unset keeps the default.
            dtype: ``float32``, ``bfloat16`` (weights and compute) or
                ``mixed_bfloat16`` (float32 weights, bfloat16 compute): the
                global keras dtype policy for models made afterwards. The
                prompt (`SoftPrompt` is always float32) and softprompt's
                Adafactor state stay float32.
        """
        count = cpu_devices_from_env() if cpu_devices is None else _positive(cpu_devices)
        if count is not None:
            self._set_cpu_devices(count)
        self.set_dtype(dtype)

    def set_dtype(self, dtype: str) -> None:
        """Set keras' global dtype policy (see `configure`)."""
        if dtype not in DTYPES:
            raise ValueError(f"unknown dtype {dtype!r}: expected one of {', '.join(DTYPES)}")
        import keras

        keras.config.set_dtype_policy(dtype)

    def _set_cpu_devices(self, count: int) -> None:
        raise NotImplementedError

    def seed(self, seed: int) -> None:
        """Seed python, numpy, keras and the framework so runs repeat exactly."""
        import keras

        random.seed(seed)
        np.random.seed(seed % (2**32))
        keras.utils.set_random_seed(seed)

    # ----------------------------------------------------------- distribution
    def distribute(self, kind: str = "auto", mesh=None, devices: int | None = None
                   ) -> Distribution:
        """A `Distribution` over this backend's devices.

        Args:
            kind: ``auto`` (data parallel when more than one device or
                process, model parallel when `mesh` has a model axis > 1),
                ``none``, ``data`` or ``model`` (JAX only).
            mesh: ``"DATAxMODEL"`` (e.g. ``"2x4"``) or a ``(data, model)``
                pair, for ``model``; default: every device on the model axis.
            devices: use only the first N devices (default: all).
        """
        raise NotImplementedError

    def needs_launch(self, devices: int | None) -> bool:
        """Whether training on `devices` devices needs `launch` first (torch only)."""
        return False

    def launch(self, nproc: int, argv: list[str]) -> int:
        """Run `argv` (``sys.argv``-like) in `nproc` processes; returns the exit code."""
        raise ValueError(
            f"backend {self.name!r} drives all its devices from one process; "
            "launching processes is for the torch backend"
        )

    def argmax_tokens(self, logits) -> np.ndarray:
        """Argmax over the last axis, returned as numpy int32."""
        import keras

        return np.asarray(keras.ops.convert_to_numpy(keras.ops.argmax(logits, axis=-1)), np.int32)

    # ---------------------------------------------------------- inference
    # Greedy decoding and rank classification run outside keras' compiled
    # train/predict functions, one small call per generated token; compiling those
    # calls is the adapter's business.
    #: Whether `compile_function` compiles (then callers pass step indices as tensors
    #: and keep shapes few, since every new shape compiles once).
    compiles_functions: bool = False

    def small_model_threads(self) -> None:
        """Set CPU threading for a model as small as the embedded one (default: leave it).

        Example:
            >>> backends.current().small_model_threads()   # before the demo trains
        """

    def release_freed_memory(self) -> None:
        """Give the memory freed so far back to the system (`release_freed_memory`).

        Example:
            >>> backends.current().release_freed_memory()   # a model was just built
        """
        release_freed_memory()

    def prepare_full_training(self, model) -> None:
        """Anything a backend needs before `model` trains every weight (default: nothing).

        `softprompt adapt` calls it after ``compile``; prompt tuning does not need it.
        """

    def matmul(self, a, b):
        """``a @ b`` for the T5 blocks' products (default: `keras.ops.matmul`).

        A backend overrides it where its framework needs a hint to use its fast
        reduced-precision kernel; in float32 every backend computes `keras.ops.matmul`.

        Example:
            >>> backends.current().matmul(x, kernel)
        """
        import keras

        return keras.ops.matmul(a, b)

    def attention_kernel(self, dtype) -> Callable | None:
        """The backend's own T5 attention core for `dtype` inputs, or None (the default).

        A kernel is ``kernel(query, key, value, bias) -> output`` with queries
        ``(batch, q, heads, dim)``, keys and values ``(batch, k, heads, dim)``, unscaled
        scores and `bias` broadcastable to ``(batch, heads, q, k)``; it must compute
        ``softmax(Q K^T + bias) V`` and its gradient. `softprompt.core.model.t5_blocks` uses
        it where no attention dropout is active; measure a kernel against the written-out
        core with `benchmarks/micro/attention_core.py [--dtype D]`.

        Example:
            >>> kernel = backends.current().attention_kernel("float32")
        """
        return None

    def single_query_kernel(self, dtype) -> Callable | None:
        """The attention core for one query position (a cached decoding step), or None.

        Called like `attention_kernel`'s kernels, with one query. None (the default)
        leaves it to `t5_blocks.single_query_attention`, products summed over an axis in
        the cache's own layout, which copies no keys or values: faster than a matmul per
        head where the framework would copy them heads-first first (XLA, TensorFlow).

        Example:
            >>> kernel = backends.current().single_query_kernel("float32")
        """
        return None

    def compile_function(self, fn: Callable, variables, few_rows: bool = False) -> Callable:
        """`fn(*tensors)` compiled for repeated inference calls; it reads keras `variables`.

        `fn` takes and returns tensors (or tuples of them), calls keras layers whose
        weights are among `variables`, and changes no variable. The default runs it
        eagerly; torch runs it eagerly without autograd, JAX jits it, TensorFlow traces it.
        `few_rows`: `fn`'s matrix products have few rows (a decoding step's, one per
        sequence), which lets a backend pick kernels for that shape.

        Example:
            >>> step = adapter.compile_function(decode_step, model.variables, few_rows=True)
        """
        return fn


# --------------------------------------------------------------------- helpers
def cpu_devices_from_env() -> int | None:
    """``SOFTPROMPT_CPU_DEVICES`` as a positive int, or None when unset or empty."""
    value = os.environ.get(CPU_DEVICES_ENV, "").strip()
    if not value:
        return None
    try:
        return _positive(int(value))
    except ValueError:
        raise ValueError(
            f"{CPU_DEVICES_ENV}={value!r} is not a positive integer"
        ) from None


def _positive(count) -> int:
    if int(count) != count or int(count) < 1:
        raise ValueError(f"cpu_devices must be a positive integer, got {count!r}")
    return int(count)


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"unknown distribution {kind!r}: expected one of {', '.join(KINDS)}")
    return kind


def parse_mesh(mesh) -> tuple[int, int] | None:
    """``"2x4"`` / ``(2, 4)`` → ``(2, 4)`` (data, model); None stays None."""
    if mesh is None:
        return None
    if isinstance(mesh, str):
        match = re.fullmatch(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*", mesh)
        parts = (int(match[1]), int(match[2])) if match else None
    else:
        try:
            parts = tuple(int(n) for n in mesh)
        except (TypeError, ValueError):
            parts = None
    if not parts or len(parts) != 2 or min(parts) < 1:
        raise ValueError(f"mesh {mesh!r} is not DATAxMODEL with positive sizes, e.g. '2x4'")
    return parts


def pick_kind(kind: str, count: int, mesh: tuple[int, int] | None) -> str:
    """Resolve ``auto`` and check `mesh` against the kind."""
    check_kind(kind)
    if kind == "auto":
        if mesh is not None and mesh[1] > 1:
            return "model"
        return "data" if count > 1 else "none"
    if mesh is not None and kind != "model":
        raise ValueError(f"a mesh ({mesh[0]}x{mesh[1]}) is only for distribution 'model', "
                         f"not {kind!r}")
    return kind


def first_devices(found: list, devices: int | None) -> list:
    """The first `devices` of `found` (all when None)."""
    if devices is None:
        return list(found)
    if int(devices) < 1 or int(devices) > len(found):
        hint = "" if len(found) > 1 else f" (set {CPU_DEVICES_ENV}=N to simulate N CPU devices)"
        raise ValueError(f"asked for {devices} devices, {len(found)} available{hint}")
    return list(found)[: int(devices)]


def sharded_dataset(dist: Distribution, global_batches, cut: Callable | None = None):
    import keras

    cut = cut or dist.shard_batch

    class ShardedBatches(keras.utils.PyDataset):
        """Each process' part of a sequence of global batches (see `Distribution.dataset`)."""

        def __init__(self):
            super().__init__()

        def __len__(self):
            return len(global_batches)

        def __getitem__(self, index):
            return cut(*global_batches[index])

        def on_epoch_end(self):
            hook = getattr(global_batches, "on_epoch_end", None)
            if hook is not None:
                hook()

    return ShardedBatches()


def batch_rows(x) -> int:
    leaves = _leaves(x)
    if not leaves:
        raise ValueError("shard_batch got a batch without arrays")
    return int(np.shape(leaves[0])[0])


def _leaves(x) -> list:
    if x is None:
        return []
    if isinstance(x, dict):
        return [leaf for value in x.values() for leaf in _leaves(value)]
    if isinstance(x, (list, tuple)):
        return [leaf for value in x for leaf in _leaves(value)]
    return [x]


def row_bounds(rows: int, count: int, index: int) -> tuple[int, int]:
    """Rows ``[start, stop)`` of shard `index` when `rows` are cut into `count` (as array_split)."""
    base, extra = divmod(rows, count)
    start = index * base + min(index, extra)
    return start, start + base + (1 if index < extra else 0)


def row_slicer(start: int, stop: int) -> Callable:
    def cut(x):
        if x is None:
            return None
        if isinstance(x, dict):
            return {k: cut(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return type(x)(cut(v) for v in x)
        return x[start:stop]

    return cut


def install_global_token_loss(model, global_sum: Callable, grad_scale: float = 1.0,
                              value_scale: float = 1.0) -> None:
    """Make `model`'s loss the global-batch token mean, computed from one replica's part.

    softprompt's loss is the mean over the real target tokens of the batch a
    replica sees (``n_local`` of them). Multiplied by ``n_local / n_global``
    (a constant for autodiff) it becomes this replica's share of the global
    mean, so the SUM of the replicas' gradients is one device's gradient.

    Args:
        model: the model whose `compute_loss` is replaced (on the instance).
        global_sum: adds a scalar over the replicas (outside autodiff).
        grad_scale: multiplies the share for autodiff (torch passes the number
            of processes, because it averages gradients; TensorFlow 1, it sums).
        value_scale: the loss *value* each replica returns is the global mean
            loss times this (TensorFlow passes ``1 / replicas``, because keras
            multiplies the reported value back), so logs show one device's loss.

    Only softprompt's own loss is changed (a model compiled with
    ``loss=...`` keeps keras' per-replica mean). Idempotent.
    """
    from keras import ops

    if getattr(model, "_softprompt_global_loss", False):
        return
    local_loss = model.compute_loss  # the bound method of the model's class

    def compute_loss(x=None, y=None, y_pred=None, sample_weight=None, training=True):
        loss = local_loss(x, y, y_pred, sample_weight, training=training)
        if not getattr(model, "uses_token_loss", False) or y is None:
            return loss
        if sample_weight is None:
            local = ops.cast(ops.size(y), "float32")
        else:
            local = ops.sum(ops.cast(sample_weight, "float32"))
        local = ops.stop_gradient(local)
        total = ops.stop_gradient(global_sum(local))
        share = loss * ops.cast(ops.maximum(local, 1.0) / ops.maximum(total, 1.0), loss.dtype)
        value = ops.stop_gradient(global_sum(ops.stop_gradient(share))) * value_scale
        scaled = share * grad_scale
        # The gradient of `scaled`, the value of the global loss.
        return scaled + ops.stop_gradient(value - scaled)

    model.compute_loss = compute_loss
    model._softprompt_global_loss = True
