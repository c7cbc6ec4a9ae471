"""Backend adapters: the only place in softprompt that names a framework.

Keras fixes its backend when it is first imported, from ``KERAS_BACKEND``.
`select()` sets that variable (the CLI's ``--backend`` calls it before keras
loads); `current()` returns the adapter for whichever backend keras runs on.

An adapter (`softprompt.backends.base.Adapter`) gives the devices, seeding,
the default ``jit_compile``, precision and CPU-device simulation
(`configure`), and a `Distribution` (`distribute`): JAX's
`keras.distribution` (data and model parallel, multi-host), PyTorch's
`torch.distributed` under torchrun, TensorFlow's `MirroredStrategy`. The
order in which a training loop calls them is in `softprompt.backends.base`.

This package is the only one in softprompt that imports a framework (jax,
torch, tensorflow): besides the adapters, `torch_pickle` reads PyTorch weight
files safely and `quiet_tensorflow_import` loads TensorFlow (keras and
keras-hub import it on every backend) without its start-up noise. `exclusive`
keeps the frameworks a process does not run on out of it, on request
(``SOFTPROMPT_ONLY_BACKEND=1`` or `only_backend`).

Example:
    >>> from softprompt import backends
    >>> backends.select("jax")          # before keras is imported
    >>> adapter = backends.current()
    >>> adapter.configure(dtype="float32")
    >>> dist = adapter.distribute("auto")
    >>> adapter.name, adapter.devices(), dist.num_replicas
"""

from __future__ import annotations

import importlib
import os
import sys
import tempfile

from softprompt.backends.exclusive import ONLY_BACKEND_ENV, only_backend
from softprompt.backends.exclusive import from_environment as _only_from_environment
from softprompt.backends.exclusive import requested as _only_requested

__all__ = ["ONLY_BACKEND_ENV", "SUPPORTED", "child_environment", "current", "name",
           "only_backend", "quiet_tensorflow_import", "select", "validate"]

SUPPORTED = ("jax", "torch", "tensorflow")
_MODULES = {"jax": "jax_adapter", "torch": "torch_adapter", "tensorflow": "tensorflow_adapter"}


def validate(name: str) -> str:
    """Return `name` if it is a supported backend, else raise a one-line `ValueError`."""
    if name not in SUPPORTED:
        raise ValueError(f"unknown backend {name!r}: expected one of {', '.join(SUPPORTED)}")
    return name


def select(name: str | None) -> str:
    """Make `name` the keras backend (before keras is imported) and return it.

    With ``name=None`` the current ``KERAS_BACKEND`` (default ``"tensorflow"``,
    keras' own default) is validated and returned. Selecting a backend other
    than the one an already-imported keras runs on is an error: keras cannot
    switch backends inside one process. With ``SOFTPROMPT_ONLY_BACKEND=1`` it also keeps
    the other frameworks out of the process (`only_backend`) when keras is not yet imported.
    """
    if name is None:
        name = os.environ.get("KERAS_BACKEND", "tensorflow")
    validate(name)
    if "keras" in sys.modules:
        import keras

        running = keras.backend.backend()
        if running != name:
            raise ValueError(
                f"keras is already running on backend {running!r}; cannot switch to {name!r} "
                "in the same process (set KERAS_BACKEND before starting Python)"
            )
    os.environ["KERAS_BACKEND"] = name
    _only_from_environment(name)
    return name


def child_environment(name: str | None = None) -> dict[str, str]:
    """The environment variables that make a child process (a Ray replica, a worker) run
    backend `name` (default: the one this process selected, else keras' default), with
    ``SOFTPROMPT_ONLY_BACKEND`` passed on when this process has it.

    Example:
        >>> child_environment("jax")
        {'KERAS_BACKEND': 'jax'}
    """
    env = {"KERAS_BACKEND": validate(name or os.environ.get("KERAS_BACKEND", "tensorflow"))}
    if _only_requested():
        env[ONLY_BACKEND_ENV] = os.environ[ONLY_BACKEND_ENV]
    return env


def name() -> str:
    """The name of the backend keras runs on."""
    import keras

    return keras.backend.backend()


def current():
    """The adapter (`softprompt.backends.base.Adapter`) for keras' running backend."""
    backend = name()
    validate(backend)
    module = importlib.import_module(f"softprompt.backends.{_MODULES[backend]}")
    return module.ADAPTER


def quiet_tensorflow_import() -> None:
    """Import TensorFlow with its C++ start-up chatter held back.

    keras and keras-hub import TensorFlow on every backend, and TensorFlow's
    C++ runtime prints oneDNN/CUDA notices straight to the stderr file
    descriptor before its logging is configured (``TF_CPP_MIN_LOG_LEVEL``
    cannot stop them), which would bury our one-line errors. The notices are
    shown only if the import fails. Nothing is imported where TensorFlow is kept out
    (`only_backend`).
    """
    if "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow  # noqa: F401
        except Exception:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
