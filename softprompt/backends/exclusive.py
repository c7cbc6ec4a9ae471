"""Keep the frameworks keras does not run on out of the process (opt-in).

TensorFlow (with tensorflow-text) and JAX are installed with softprompt whatever the backend,
and keras and keras-hub import them whenever they are installed: keras' Orbax checkpoint
callback imports JAX, keras-hub's tensor utilities import TensorFlow and tensorflow-text. A
torch process so carries all three frameworks: after ``import keras_hub`` it holds 1148 MiB,
457 MiB without the two it does not run on (T5-small's weights are 231 MiB).

`only_backend(name)` marks the frameworks other than `name` as not importable in this process:
``sys.modules[module] = None``, Python's own way of making ``import module`` raise
`ImportError` (no stand-in module). keras and keras-hub then take the paths they take where
those packages are not installed. keras-hub's T5 tokenizer needs nothing of TensorFlow: outside
``tf.data`` it always encodes with the ``sentencepiece`` package, so the ids are the ones the
same process gets with TensorFlow loaded (``tests/backends/test_only_backend.py`` checks them
against tensorflow-text's own SentencePiece op). PyTorch is never kept out: softprompt reads
PyTorch checkpoint files with it on every backend.

It is opt-in, covers the whole process and must happen before keras is imported. Either:

- ``SOFTPROMPT_ONLY_BACKEND=1`` in the environment: ``import softprompt`` applies it for the
  backend ``KERAS_BACKEND`` names, `softprompt.backends.select` (the CLI's ``--backend``) for
  the one it selects, and processes softprompt starts inherit it;
- or `only_backend` called before keras is imported.

keras also imports pandas and matplotlib at ``import keras`` whenever they are installed (``datasets``
installs pandas): pandas to accept DataFrames in ``fit``, matplotlib for image galleries.
Neither is used by softprompt, and the two hold 90 MiB. The same switch keeps them from keras
alone: a `sys.meta_path` finder refuses ``import pandas``/``import matplotlib`` when the
importing module is keras' own (keras takes its "not installed" path, as it does where they
are not), while ``datasets`` and everything else import them as usual.

What a process gives up: in a torch or JAX process, whatever needs TensorFlow (keras-hub's
``tf.data`` preprocessing, TensorFlow's ``tf.data`` input pipelines); in a torch or TensorFlow
process, whatever needs JAX (keras' Orbax checkpoints); in every process, keras' DataFrame
inputs and image galleries. softprompt itself needs none of them.

Example:
    >>> from softprompt import backends
    >>> backends.only_backend("torch")     # before keras is imported
    ('tensorflow', 'tensorflow_text', 'jax', 'jaxlib')
    >>> import keras_hub                   # loads torch only
"""

from __future__ import annotations

import importlib.abc
import os
import sys
import warnings

#: Set to ``1`` to keep the other frameworks out of every softprompt process (see the module).
ONLY_BACKEND_ENV = "SOFTPROMPT_ONLY_BACKEND"

#: The top-level modules of each framework that keras or keras-hub import when installed.
_FRAMEWORK_MODULES = {
    "tensorflow": ("tensorflow", "tensorflow_text"),
    "jax": ("jax", "jaxlib"),
}
#: What a process running each backend keeps out (never torch: see the module docstring).
KEPT_OUT = {
    backend: tuple(m for name, modules in _FRAMEWORK_MODULES.items() if name != backend
                   for m in modules)
    for backend in ("jax", "torch", "tensorflow")
}


#: What keras imports when installed and softprompt never uses (see the module docstring).
KERAS_OPTIONAL = ("pandas", "matplotlib")


class KerasOptionalFinder(importlib.abc.MetaPathFinder):
    """Refuses `KERAS_OPTIONAL` imports made by keras' own modules; passes every other import.

    The importer is the first frame outside the import machinery. A refused import raises
    `ModuleNotFoundError`, which keras catches (it imports both inside ``try``).
    """

    def find_spec(self, fullname, path=None, target=None):
        if fullname.partition(".")[0] not in KERAS_OPTIONAL:
            return None
        frame = sys._getframe(1)
        while frame is not None and frame.f_globals.get("__name__", "").startswith(
                ("importlib", "_frozen_importlib")):
            frame = frame.f_back
        importer = frame.f_globals.get("__name__", "") if frame is not None else ""
        if importer == "keras" or importer.startswith("keras."):
            raise ModuleNotFoundError(f"{fullname} is kept from keras ({ONLY_BACKEND_ENV})",
                                      name=fullname)
        return None


def _keep_optional_imports_from_keras() -> None:
    if not any(isinstance(finder, KerasOptionalFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, KerasOptionalFinder())


def requested() -> bool:
    """Whether ``SOFTPROMPT_ONLY_BACKEND`` asks for it (``1``, ``true``, ``yes``)."""
    return os.environ.get(ONLY_BACKEND_ENV, "").strip().lower() in ("1", "true", "yes")


def only_backend(name: str) -> tuple[str, ...]:
    """Make the frameworks backend `name` does not use unimportable in this process.

    Returns the modules kept out. A module that is already imported cannot be taken back:
    it stays, with a warning naming it (import nothing of keras before calling this).
    Calling it again is harmless, and calling it for another backend before keras is
    imported (``--backend`` after ``KERAS_BACKEND``) lets that backend's framework back in.

    Example:
        >>> only_backend("jax")
        ('tensorflow', 'tensorflow_text')
    """
    if name not in KEPT_OUT:
        raise ValueError(f"unknown backend {name!r}: expected one of {', '.join(KEPT_OUT)}")
    loaded = [m for m in KEPT_OUT[name] if sys.modules.get(m) is not None]
    if loaded:
        warnings.warn(f"{', '.join(loaded)} already imported: they stay loaded (keep other "
                      f"frameworks out before keras is imported)", stacklevel=2)
    for module in _FRAMEWORK_MODULES.get(name, ()):  # kept out for another backend before
        if module in sys.modules and sys.modules[module] is None:
            del sys.modules[module]
    for module in KEPT_OUT[name]:
        if module not in sys.modules:
            sys.modules[module] = None
    _keep_optional_imports_from_keras()
    return tuple(m for m in KEPT_OUT[name] if sys.modules.get(m, False) is None)


def kept_out() -> tuple[str, ...]:
    """The framework modules this process keeps out (empty unless `only_backend` ran).

    Example:
        >>> kept_out()
        ('tensorflow', 'tensorflow_text')
    """
    return tuple(m for modules in _FRAMEWORK_MODULES.values() for m in modules
                 if m in sys.modules and sys.modules[m] is None)


def from_environment(name: str | None = None) -> tuple[str, ...]:
    """`only_backend(name)` when ``SOFTPROMPT_ONLY_BACKEND`` asks for it and keras is not yet
    imported; else nothing. `name` defaults to ``KERAS_BACKEND``; None there too (no backend
    chosen yet) does nothing either."""
    if name is None:
        name = os.environ.get("KERAS_BACKEND")
    if not requested() or name is None or name not in KEPT_OUT or "keras" in sys.modules:
        return ()
    return only_backend(name)


def check_environment(name: str) -> None:
    """Warn when ``SOFTPROMPT_ONLY_BACKEND`` is set but a framework it keeps out got loaded.

    Called once, when the backend's adapter is made.
    """
    if not requested() or name not in KEPT_OUT:
        return
    loaded = [m for m in KEPT_OUT[name] if sys.modules.get(m) is not None]
    if loaded:
        warnings.warn(f"{ONLY_BACKEND_ENV} is set but {', '.join(loaded)} got imported before "
                      "softprompt could keep them out: import softprompt (or call "
                      "softprompt.backends.select) before keras", stacklevel=3)
