"""The interface every backend adapter implements."""

from __future__ import annotations

import dataclasses
import random

import numpy as np


@dataclasses.dataclass(frozen=True)
class Device:
    """One compute device as a backend sees it."""

    kind: str  # "cpu" | "gpu" | "tpu"
    name: str


class Adapter:
    """What the backend-neutral core may ask of a backend.

    Subclasses live in ``softprompt/backends/<framework>_adapter.py``; the core
    reaches them through `softprompt.backends.current()`.
    """

    name: str = ""
    #: `jit_compile` value to give `keras.Model.compile` by default.
    default_jit_compile: bool | str = "auto"

    def version(self) -> str:
        raise NotImplementedError

    def devices(self) -> list[Device]:
        raise NotImplementedError

    def seed(self, seed: int) -> None:
        """Seed python, numpy, keras and the framework so runs repeat exactly."""
        import keras

        random.seed(seed)
        np.random.seed(seed % (2**32))
        keras.utils.set_random_seed(seed)

    def argmax_tokens(self, logits) -> np.ndarray:
        """Argmax over the last axis, returned as numpy int32."""
        import keras

        return np.asarray(keras.ops.convert_to_numpy(keras.ops.argmax(logits, axis=-1)), np.int32)
