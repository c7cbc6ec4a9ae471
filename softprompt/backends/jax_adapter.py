"""JAX adapter (XLA: CPU, GPU, TPU): `keras.distribution` for data and model parallel.

One process drives all local devices. Data parallel is
`keras.distribution.DataParallel` (the prompt replicated, the batch split on
its first axis); model parallel is `keras.distribution.ModelParallel` over a
``(batch, model)`` mesh with `t5_layout_map` (embedding, attention and
feed-forward kernels split over ``model``). Both compute exactly what one
device computes on the global batch: XLA partitions the one jitted step, so
the loss is the global mean without any help from `Distribution.prepare`.

Several hosts (a TPU pod slice, multi-node GPUs) run the same command on every
host; `keras.distribution.initialize()` joins them when the environment says so
(see `multihost_requested`), each host feeds its own rows of every global
batch (`shard_batch`), and rank 0 writes the files.

Why this module is long: besides the adapter and its `Distribution`, it holds
the JAX attention core with its written-out backward pass (`softmax_attention`),
which belongs to no other backend.
"""

from __future__ import annotations

import functools
import os
import warnings

from softprompt.backends.base import (
    Adapter,
    Device,
    Distribution,
    first_devices,
    parse_mesh,
    pick_kind,
)

#: ``SOFTPROMPT_MULTIHOST=1`` forces `keras.distribution.initialize()`, ``0`` prevents it.
MULTIHOST_ENV = "SOFTPROMPT_MULTIHOST"


def multihost_requested() -> bool:
    """Whether this process is one of several JAX processes to be joined.

    True when ``SOFTPROMPT_MULTIHOST=1``, or when a launcher left its mark:
    keras' ``KERAS_DISTRIBUTION_*`` variables, JAX's ``JAX_COORDINATOR_ADDRESS``,
    SLURM with more than one task, Open MPI's ``mpirun``, or a multi-host TPU
    (``TPU_WORKER_HOSTNAMES`` listing several hosts, ``MEGASCALE_*``).
    ``SOFTPROMPT_MULTIHOST=0`` turns it off.
    """
    env = os.environ
    forced = env.get(MULTIHOST_ENV, "").strip().lower()
    if forced in ("0", "false", "no"):
        return False
    if forced in ("1", "true", "yes"):
        return True
    if int(env.get("KERAS_DISTRIBUTION_NUM_PROCESSES", "1") or 1) > 1:
        return True
    if env.get("KERAS_DISTRIBUTION_JOB_ADDRESSES") or env.get("JAX_COORDINATOR_ADDRESS"):
        return True
    if env.get("SLURM_JOB_ID") and int(env.get("SLURM_NTASKS", "1") or 1) > 1:
        return True
    if env.get("OMPI_MCA_orte_hnp_uri"):
        return True
    if "," in env.get("TPU_WORKER_HOSTNAMES", "") or env.get("MEGASCALE_COORDINATOR_ADDRESS"):
        return True
    return False


_joined = False


def initialize_multihost() -> bool:
    """Join the other JAX processes (once) when `multihost_requested`; returns whether joined."""
    global _joined
    import jax

    is_initialized = getattr(jax.distributed, "is_initialized", None)  # JAX >= 0.4.36
    if _joined or (is_initialized is not None and is_initialized()):
        return True
    if not multihost_requested():
        return False
    import keras

    keras.distribution.initialize()
    _joined = True
    return True


def t5_layout_map(device_mesh):
    """A `keras.distribution.LayoutMap` for keras-hub's `T5Backbone` (t5x's partitioning).

    The vocabulary axis of the embeddings, the heads of the query / key / value
    projections (and the matching input axis of the attention output), and the
    hidden axis of the feed-forward layers are split over the mesh's ``model``
    axis; layer norms, the relative position bias and the prompt are
    replicated. Keys are regular expressions over ``variable.path``.
    """
    import keras

    layout = keras.distribution.LayoutMap(device_mesh)
    layout[r".*token_embedding/embeddings"] = ("model", None)
    layout[r".*token_embedding/reverse_embeddings"] = (None, "model")
    layout[r".*attention/(query|key|value)_projector/kernel"] = (None, "model")
    layout[r".*attention/output_projector/kernel"] = ("model", None)
    layout[r".*layer_\d+/(input|gate)_projector/kernel"] = (None, "model")
    layout[r".*layer_\d+/output_projector/kernel"] = ("model", None)
    return layout


def _model_parallel_class():
    import keras

    class T5ModelParallel(keras.distribution.ModelParallel):
        """`ModelParallel` that replicates an axis the mesh does not divide (with a warning).

        A real T5's sizes divide any power-of-two mesh; a small vocabulary or
        an odd number of heads may not, and JAX cannot split unevenly.
        """

        def get_variable_layout(self, variable):
            layout = super().get_variable_layout(variable)
            sizes = dict(zip(self.device_mesh.axis_names, self.device_mesh.shape))
            axes = list(layout.axes)
            for i, axis in enumerate(axes):
                if axis is not None and variable.shape[i] % sizes[axis]:
                    warnings.warn(
                        f"{variable.path}: dimension {i} of size {variable.shape[i]} does not "
                        f"divide over {sizes[axis]} '{axis}' devices; kept whole",
                        stacklevel=2,
                    )
                    axes[i] = None
            if axes == list(layout.axes):
                return layout
            return keras.distribution.TensorLayout(axes, self.device_mesh)

    return T5ModelParallel


class JaxDistribution(Distribution):
    """A `keras.distribution.Distribution` (or none) with softprompt's bookkeeping."""

    def __init__(self, kind, keras_distribution=None, mesh=None):
        import jax

        self.kind = kind
        self.mesh = mesh
        self.keras_distribution = keras_distribution
        self.num_processes = jax.process_count()
        self.rank = jax.process_index()
        if keras_distribution is None:
            self.num_replicas = 1
        else:
            self.num_replicas = int(keras_distribution.num_model_replicas)

    def scope(self):
        if self.keras_distribution is None:
            return super().scope()
        return self.keras_distribution.scope()

    def check_batch(self, rows: int) -> None:
        if rows % self.num_replicas:
            raise ValueError(
                f"a global batch of {rows} rows does not split evenly over "
                f"{self.num_replicas} replicas: use a multiple of {self.num_replicas}"
            )

    def _process_shards(self) -> tuple[int, int]:
        dist = self.keras_distribution
        if dist is None or self.num_processes == 1:
            return 1, 0
        # Processes that hold parts of the same model replica feed the same rows.
        return min(self.num_processes, self.num_replicas), int(dist.data_shard_id)

    def barrier(self) -> None:
        if self.num_processes > 1:
            from jax.experimental import multihost_utils

            multihost_utils.sync_global_devices("softprompt")


@functools.cache
def reduced_matmul():
    """``matmul(a, b)`` for bfloat16/float16 operands of rank >= 2, float32 accumulation.

    Returns a `jax.custom_vjp` function computing ``a @ b`` (numpy broadcasting of the
    batch dimensions) with a float32 result type cast back to the operands' dtype; its
    backward pass computes ``g @ b^T`` and ``a^T @ g`` the same way (a weight matrix's
    gradient, ``b`` of rank 2, as one product over all rows), then sums away broadcast
    dimensions. Built once, on first use.

    Example:
        >>> reduced_matmul()(x.astype("bfloat16"), kernel.astype("bfloat16"))
    """
    import jax
    import jax.numpy as jnp

    def product(a, b):
        return jnp.matmul(a, b, preferred_element_type=jnp.float32).astype(a.dtype)

    def unbroadcast(x, shape):
        x = jnp.sum(x, axis=tuple(range(x.ndim - len(shape)))) if x.ndim > len(shape) else x
        axes = tuple(i for i, n in enumerate(shape) if n == 1 and x.shape[i] != 1)
        return jnp.sum(x, axis=axes, keepdims=True) if axes else x

    @jax.custom_vjp
    def matmul(a, b):
        return product(a, b)

    def forward(a, b):
        return product(a, b), (a, b)

    def backward(saved, g):
        a, b = saved
        g = g.astype(a.dtype)
        da = unbroadcast(product(g, jnp.swapaxes(b, -1, -2)), a.shape)
        if b.ndim == 2:  # a weight matrix: one (k, rows) @ (rows, n) product
            rows_a = a.reshape(-1, a.shape[-1])
            rows_g = g.reshape(-1, g.shape[-1])
            db = product(rows_a.T, rows_g)
        else:
            db = unbroadcast(product(jnp.swapaxes(a, -1, -2), g), b.shape)
        return da.astype(a.dtype), db.astype(b.dtype)

    matmul.defvjp(forward, backward)
    return matmul


@functools.cache
def softmax_attention():
    """T5's attention core ``softmax(Q K^T + bias) V`` with a written-out backward pass.

    Returns a `jax.custom_vjp` function ``attend(query, key, value, bias)``: queries
    ``(batch, q, heads, dim)``, keys and values ``(batch, k, heads, dim)``, `bias`
    broadcastable to ``(batch, heads, q, k)`` (T5's position bias with the mask folded
    in; scores are unscaled, as in T5). It runs in float32: bfloat16/float16 inputs are
    cast up, and the output is cast back to the queries' dtype.

    The backward pass is the textbook one, with every product heads-first
    (``dS = P * (dP - rowsum(dO * O))``, then ``dQ = dS K``, ``dK = dS^T Q``,
    ``dV = P^T dO``); it saves the float32 probabilities ``P`` and the output ``O``.
    XLA's autodiff of the same forward on CPU is slower (T5-small's 8 x 228 tokens,
    one quiet core, forward + gradient: 63 ms vs 41 ms in float32; with bfloat16
    inputs 47 ms for the written-out core with bfloat16 products vs 43 ms for this
    float32 one; `python -m benchmarks.micro.attention_core [--dtype bfloat16]`). Built once,
    on first use.

    Example:
        >>> out = softmax_attention()(q, k, v, position_bias)   # (batch, q, heads, dim)
    """
    import jax
    import jax.numpy as jnp
    from jax import lax

    f32 = jnp.float32

    def heads_first(x):  # (batch, length, heads, dim) <-> (batch, heads, length, dim)
        return jnp.transpose(x, (0, 2, 1, 3))

    def product(a, b, contract_a, contract_b):
        dims = (((contract_a,), (contract_b,)), ((0, 1), (0, 1)))
        return lax.dot_general(a, b, dims, preferred_element_type=f32)

    def unbroadcast(x, shape):
        axes = tuple(i for i, n in enumerate(shape) if n == 1 and x.shape[i] != 1)
        return jnp.sum(x, axis=axes, keepdims=True) if axes else x

    def forward(query, key, value, bias):
        q, k, v = (heads_first(x.astype(f32)) for x in (query, key, value))
        probs = jax.nn.softmax(product(q, k, 3, 3) + bias.astype(f32), axis=-1)
        out = product(probs, v, 3, 2)
        return heads_first(out).astype(query.dtype), (q, k, v, probs, out, bias)

    @jax.custom_vjp
    def attend(query, key, value, bias):
        return forward(query, key, value, bias)[0]

    def backward(saved, grad):
        q, k, v, probs, out, bias = saved
        g = heads_first(grad.astype(f32))
        d_value = product(probs, g, 2, 2)           # P^T dO: (b, n, k, d)
        d_probs = product(g, v, 3, 3)               # dO V^T: (b, n, q, k)
        d_scores = probs * (d_probs - jnp.sum(g * out, axis=-1, keepdims=True))
        d_query = product(d_scores, k, 3, 2)        # dS K
        d_key = product(d_scores, q, 2, 2)          # dS^T Q
        d_bias = unbroadcast(d_scores, bias.shape).astype(bias.dtype)
        dtype = grad.dtype
        return (heads_first(d_query).astype(dtype), heads_first(d_key).astype(dtype),
                heads_first(d_value).astype(dtype), d_bias)

    attend.defvjp(forward, backward)
    return attend


@functools.cache
def few_rows_compiler_options() -> dict | None:
    """XLA options for a CPU program whose products have few rows; None where there are none.

    XLA on CPU hands its products to YNNPACK fusions. For the products of a decoding step
    (8 rows against a 256 x 1024 matrix) XLA's own loops run faster: a greedy step of the
    decode benchmark's model takes 7.65 ms without those fusions and 9.41 ms with them,
    while the encoder with the first step takes 176 ms with them and 184 ms without
    (`python -m benchmarks.micro.decode_fusions`; docs/performance.md). The option is XLA's list of YNNPACK fusion kinds,
    empty. Older XLA builds without YNNPACK refuse it: they get None, which this checks by
    compiling a one-line function once.
    """
    import jax

    if jax.default_backend() != "cpu":
        return None
    options = {"xla_cpu_experimental_ynn_fusion_type": ""}
    try:
        jax.jit(lambda x: x + 1, compiler_options=options)(0.0).block_until_ready()
    except Exception:  # noqa: BLE001 - an XLA that does not know the option
        return None
    return options


class JaxAdapter(Adapter):
    name = "jax"
    default_jit_compile = True
    # Greedy decoding and scoring steps are jitted; see `compile_function`.
    compiles_functions = True

    def compile_function(self, fn, variables, few_rows=False):
        """`jax.jit` of `fn`, the variables' values passed in (never baked in as constants).

        Inside the jitted function a `keras.StatelessScope` maps each variable to its
        traced value, as keras' own JAX trainer does, so weights are arguments of the
        compiled program and a later `assign` (a new prompt) is seen on the next call.
        With `few_rows` on a CPU, the program's products stay out of XLA's YNNPACK fusions
        (`few_rows_compiler_options`).
        """
        import jax
        import keras

        variables = list(variables)

        def pure(values, *args):
            with keras.StatelessScope(state_mapping=list(zip(variables, values))):
                return fn(*args)

        options = few_rows_compiler_options() if few_rows else None
        jitted = jax.jit(pure, compiler_options=options) if options else jax.jit(pure)

        def call(*args):
            return jitted([v.value for v in variables], *args)

        return call

    def matmul(self, a, b):
        """``a @ b``; bfloat16 (and float16) products accumulate in float32, forward and backward.

        XLA on CPU runs a plain bfloat16 ``dot`` at about the float32 speed, but with
        a float32 result type (``preferred_element_type``) at about twice it
        (`benchmarks/cases/peak.py`); autodiff's own transpose of such a product would be
        a plain one again, so the gradient products are written out (`reduced_matmul`;
        the whole train step: `python -m benchmarks.micro.jax_products`).
        Other dtypes: `keras.ops.matmul`.
        """
        import jax

        reduced = ("bfloat16", "float16")
        if (isinstance(a, jax.Array) and isinstance(b, jax.Array) and a.ndim >= 2
                and b.ndim >= 2 and a.dtype == b.dtype and str(a.dtype) in reduced):
            return reduced_matmul()(a, b)
        return super().matmul(a, b)

    def attention_kernel(self, dtype):
        """On CPU, `softmax_attention` (float32, written-out backward); elsewhere XLA's own.

        Measured on CPU only (`softmax_attention`'s docs); on GPU and TPU XLA's fusions
        of the written-out core are left alone.
        """
        import jax

        if jax.default_backend() != "cpu":
            return None
        return softmax_attention()

    def version(self) -> str:
        import jax

        return jax.__version__

    def devices(self) -> list[Device]:
        import jax

        return [Device(kind=d.platform, name=str(d)) for d in jax.devices()]

    def configure(self, cpu_devices=None, dtype="float32") -> None:
        """See `Adapter.configure`; also joins other hosts (`initialize_multihost`)."""
        super().configure(cpu_devices=cpu_devices, dtype=dtype)
        initialize_multihost()

    def _set_cpu_devices(self, count: int) -> None:
        import jax

        try:
            if "JAX_PLATFORMS" not in os.environ:
                jax.config.update("jax_platforms", "cpu")
            jax.config.update("jax_num_cpu_devices", count)
        except AttributeError:  # older JAX: only the XLA flag exists
            flag = f"--xla_force_host_platform_device_count={count}"
            os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {flag}".strip()
        except RuntimeError as err:
            raise ValueError(
                f"cannot present {count} CPU devices: JAX has already started "
                "(configure() must run before the first computation)"
            ) from err

    def distribute(self, kind="auto", mesh=None, devices=None) -> JaxDistribution:
        import keras

        initialize_multihost()
        mesh = parse_mesh(mesh)
        found = first_devices(keras.distribution.list_devices(), devices)
        kind = pick_kind(kind, len(found), mesh)
        if kind == "none":
            return JaxDistribution("none")
        if kind == "data":
            dist = keras.distribution.DataParallel(devices=found, auto_shard_dataset=False)
            return JaxDistribution("data", dist)
        if mesh is None:
            mesh = (1, len(found))
        if mesh[0] * mesh[1] > len(found):
            raise ValueError(
                f"mesh {mesh[0]}x{mesh[1]} needs {mesh[0] * mesh[1]} devices, "
                f"{len(found)} available"
            )
        device_mesh = keras.distribution.DeviceMesh(
            shape=mesh, axis_names=("batch", "model"), devices=found[: mesh[0] * mesh[1]]
        )
        dist = _model_parallel_class()(
            layout_map=t5_layout_map(device_mesh), batch_dim_name="batch",
            auto_shard_dataset=False,
        )
        return JaxDistribution("model", dist, mesh=mesh)


ADAPTER = JaxAdapter()
