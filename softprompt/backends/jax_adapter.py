"""JAX adapter (XLA: CPU, GPU, TPU)."""

from __future__ import annotations

from softprompt.backends.base import Adapter, Device


class JaxAdapter(Adapter):
    name = "jax"
    default_jit_compile = True

    def version(self) -> str:
        import jax

        return jax.__version__

    def devices(self) -> list[Device]:
        import jax

        return [Device(kind=d.platform, name=str(d)) for d in jax.devices()]


ADAPTER = JaxAdapter()
