"""TensorFlow adapter (CPU, GPU): `tf.distribute.MirroredStrategy` for data parallel.

One process drives the local GPUs (or, for tests and CPU-only machines, the
logical CPU devices made by ``configure(cpu_devices=N)``). The model, its
optimizer and `fit` / `train_on_batch` must run inside
``Distribution.scope()``. Each replica computes its rows of the global batch
(keras' input pipeline splits the batches given to `fit`; `shard_batch` makes
per-replica values for `train_on_batch`), keras sums the replicas' gradients,
and `Distribution.prepare` makes softprompt's loss divide by the real target
tokens of the global batch, so the update is the one a single device makes. Model parallel is not offered on TensorFlow
(keras' DTensor path for it is a prototype); use JAX for that.
"""

from __future__ import annotations

from softprompt.backends.base import (
    Adapter,
    Device,
    Distribution,
    batch_rows,
    first_devices,
    install_global_token_loss,
    parse_mesh,
    pick_kind,
    row_bounds,
    row_slicer,
    sharded_dataset,
)


def _replica_sum(value):
    """Sum a tensor over the replicas of the running `tf.distribute` step (identity outside)."""
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return value
    return context.all_reduce(tf.distribute.ReduceOp.SUM, value)


def _build(model) -> None:
    """Call `model` once on a two-token dummy batch so that keras never builds it from data.

    Keras builds an unbuilt model from the first batch it is given, which it
    cannot do from per-replica values (`TensorflowDistribution.shard_batch`).
    """
    import numpy as np

    if model.built:
        return
    ones = np.ones((1, 2), "int32")
    model({"encoder_token_ids": ones, "encoder_padding_mask": ones,
           "decoder_token_ids": ones, "decoder_padding_mask": ones})


class TensorflowDistribution(Distribution):
    """A `tf.distribute.MirroredStrategy` (or none) with softprompt's bookkeeping."""

    def __init__(self, kind, strategy=None):
        self.kind = kind
        self.strategy = strategy
        self.num_replicas = 1 if strategy is None else int(strategy.num_replicas_in_sync)

    def scope(self):
        if self.strategy is None:
            return super().scope()
        return self.strategy.scope()

    def prepare(self, model):
        """See `Distribution.prepare`; also builds the model (see `shard_batch`)."""
        if self.strategy is not None:
            install_global_token_loss(model, _replica_sum,
                                      value_scale=1.0 / self.num_replicas)
            _build(model)
        return model

    def shard_batch(self, x, y=None, sample_weight=None):
        """Per-replica values: replica i gets the i-th contiguous slice of the global batch.

        keras' ``train_on_batch`` does not split a batch itself (under a
        strategy every replica would compute the whole batch); these values
        make each replica compute its own rows. Call `prepare` first.
        """
        rows = batch_rows(x)
        self.check_batch(rows)
        if self.strategy is None or self.num_replicas == 1:
            return x, y, sample_weight

        def part(context):
            cut = row_slicer(*row_bounds(rows, self.num_replicas, context.replica_id_in_sync_group))
            return cut(x), cut(y), cut(sample_weight)

        return self.strategy.experimental_distribute_values_from_function(part)

    def dataset(self, global_batches):
        # keras' tf.data pipeline splits every global batch over the replicas.
        return sharded_dataset(self, global_batches, cut=lambda x, y=None, w=None: (x, y, w))


class TensorflowAdapter(Adapter):
    name = "tensorflow"
    default_jit_compile = "auto"
    # Greedy decoding and scoring steps run as traced graphs; see `compile_function`.
    compiles_functions = True

    def compile_function(self, fn, variables, few_rows=False):
        """A `tf.function` of `fn` (a graph per input signature; variables read live).

        `few_rows` changes nothing: oneDNN picks its kernels per shape."""
        import tensorflow as tf

        return tf.function(fn, reduce_retracing=True)

    def version(self) -> str:
        import tensorflow as tf

        return tf.__version__

    def devices(self) -> list[Device]:
        import tensorflow as tf

        found = []
        for kind in ("GPU", "TPU", "CPU"):
            for d in tf.config.list_logical_devices(kind):
                found.append(Device(kind=kind.lower(), name=d.name))
        return found

    #: Set by `configure(cpu_devices=N)`: distribute over the logical CPUs even if GPUs exist.
    _cpu_devices: int | None = None

    def _set_cpu_devices(self, count: int) -> None:
        import tensorflow as tf

        self._cpu_devices = count
        cpu = tf.config.list_physical_devices("CPU")[0]
        try:
            tf.config.set_logical_device_configuration(
                cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(count)]
            )
        except RuntimeError as err:
            if len(tf.config.list_logical_devices("CPU")) == count:
                return
            raise ValueError(
                f"cannot present {count} CPU devices: TensorFlow has already started "
                "(configure() must run before the first computation)"
            ) from err

    def seed(self, seed: int) -> None:
        import tensorflow as tf

        super().seed(seed)
        tf.random.set_seed(seed)

    def distribute(self, kind="auto", mesh=None, devices=None) -> TensorflowDistribution:
        import tensorflow as tf

        mesh = parse_mesh(mesh)
        gpus = [] if self._cpu_devices else tf.config.list_logical_devices("GPU")
        found = first_devices(gpus or tf.config.list_logical_devices("CPU"), devices)
        kind = pick_kind(kind, len(found), mesh)
        if kind == "model":
            raise ValueError("model parallel training needs the jax backend "
                             "(KERAS_BACKEND=jax); tensorflow offers 'data'")
        if kind == "none":
            return TensorflowDistribution("none")
        names = [d.name for d in found]
        # NCCL all-reduce is for GPUs; logical CPU devices reduce through one device.
        cross = None if gpus else tf.distribute.ReductionToOneDevice(reduce_to_device=names[0])
        strategy = tf.distribute.MirroredStrategy(devices=names, cross_device_ops=cross)
        return TensorflowDistribution("data", strategy)


ADAPTER = TensorflowAdapter()
