"""TensorFlow adapter (CPU, GPU)."""

from __future__ import annotations

from softprompt.backends.base import Adapter, Device


class TensorflowAdapter(Adapter):
    name = "tensorflow"
    default_jit_compile = "auto"

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


ADAPTER = TensorflowAdapter()
