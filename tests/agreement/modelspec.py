"""Tiny T5 models described by a plain dict, with weights drawn in NumPy.

The same spec must give bit-identical weights under JAX, PyTorch and
TensorFlow. Keras' own initializers draw from each framework's random number
generator, so they cannot: every backbone weight is overwritten here with an
array drawn by NumPy from ``(seed, index of the weight)``. The index is the
position in ``backbone.weights`` (the same on every backend); weight *paths*
are not used because keras numbers layer names per process.

This module imports only NumPy: the parent (pytest) process uses it to size
arrays, the workers to build models.

Example:
    >>> spec = model_spec(size="test", style="t5.1.0", vocab=64, seed=0)
    >>> hidden_dim(spec)
    16
"""

from __future__ import annotations

import hashlib

import numpy as np

#: Architectures small enough for hundreds of cases on 2 CPU cores. "test"
#: and "tiny" are `softprompt.core.pretraining.scratch.CONFIGS`; "wide1" is a one-layer
#: model with more heads than key/value width to vary the head split.
SIZES = {
    "test": dict(hidden_dim=16, num_layers=2, num_heads=2, intermediate_dim=32, key_value_dim=8),
    "wide1": dict(hidden_dim=32, num_layers=1, num_heads=4, intermediate_dim=64, key_value_dim=8),
    "tiny": dict(hidden_dim=64, num_layers=2, num_heads=4, intermediate_dim=128, key_value_dim=16),
}
STYLES = ("t5.1.0", "t5.1.1")  # relu + tied / gated-GELU + untied
EOS_ID = 1
PAD_ID = 0


def model_spec(size="test", style="t5.1.0", vocab=64, seed=0, prompt_length=4, num_prompts=1):
    """A hashable-by-`key` description of one prompted model."""
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}: expected one of {', '.join(SIZES)}")
    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}: expected one of {', '.join(STYLES)}")
    return dict(size=size, style=style, vocab=int(vocab), seed=int(seed),
                prompt_length=int(prompt_length), num_prompts=int(num_prompts))


def arch_key(spec) -> tuple:
    """What fixes the backbone's shapes (its seed only fixes values)."""
    return (spec["size"], spec["style"], spec["vocab"])


def model_key(spec) -> tuple:
    """What fixes a prompted model's shapes."""
    return arch_key(spec) + (spec["prompt_length"], spec["num_prompts"])


def hidden_dim(spec) -> int:
    return SIZES[spec["size"]]["hidden_dim"]


def weight_array(index: int, path: str, shape, seed: int, hidden: int) -> np.ndarray:
    """The value of backbone weight number `index` (scale chosen from its kind).

    Scales follow T5's: unit-variance token embeddings (the tied head scales
    by ``d**-0.5``), ``fan_in**-0.5`` kernels, an untied head of
    ``d**-0.5``, relative-position biases of 0.5 (large enough that positions
    matter), layer-norm scales near 1 (perturbed so no symmetry hides bugs).
    """
    rng = np.random.default_rng([seed, index])
    shape = tuple(int(s) for s in shape)
    leaf = path.rsplit("/", 1)[-1]
    if path.endswith("token_embedding/embeddings"):
        std = 1.0
    elif leaf == "reverse_embeddings":
        std = hidden**-0.5
    elif leaf == "embeddings":  # relative attention bias (buckets, heads)
        std = 0.5
    elif leaf == "weight":  # T5LayerNorm scale
        return (1.0 + 0.1 * rng.standard_normal(shape)).astype(np.float32)
    elif leaf == "kernel":
        std = shape[0] ** -0.5
    else:
        raise ValueError(f"no NumPy initializer for backbone weight {path!r} {shape}")
    return (std * rng.standard_normal(shape)).astype(np.float32)


def embedding_matrix(spec) -> np.ndarray:
    """The token embedding matrix the workers assign (weight 0 of `T5Backbone.weights`)."""
    d = hidden_dim(spec)
    return weight_array(0, "token_embedding/embeddings", (spec["vocab"], d), spec["seed"], d)


def fingerprint(arrays) -> str:
    """sha256 over the raw float32 bytes of `arrays`, in order."""
    digest = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a, np.float32)
        digest.update(str(a.shape).encode())
        digest.update(a.tobytes())
    return digest.hexdigest()[:16]
