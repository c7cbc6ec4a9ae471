"""Which frozen model a prompt belongs to, and prompt files that record it.

A prompt only means something to the backbone it was trained with. Its
identity is the preset name, the hidden size, the vocabulary size and a
fingerprint of the token embeddings (`softprompt.core.io.prompt_files.embedding_fingerprint`,
the same on every backend and dtype). `PromptIdentity` is that part of
`PromptedT5` (a mixin): saving the prompt with the identity in its sidecar,
loading a prompt with checks, and the checks themselves.

Example:
    >>> model.save_prompt("best.npy", task="boolq")    # sidecar: {"backbone": model.identity(), ...}
    >>> model.load_prompt("best.npy")                  # warns if trained on another backbone
"""

from __future__ import annotations

import warnings

import numpy as np
from keras import ops

from softprompt.core.io import prompt_files as files


class PromptIdentity:
    """Prompt identity, checks and prompt files of a model with ``backbone``, ``prompt``,
    ``preset``, ``prompt_length``, ``num_prompts`` and ``init`` attributes."""

    def embedding_matrix(self) -> np.ndarray:
        """The backbone's input token embeddings as a float32 numpy array."""
        return np.asarray(
            ops.convert_to_numpy(self.backbone.token_embedding.embeddings), np.float32
        )

    def identity(self) -> dict:
        """What identifies the frozen model a prompt belongs to (for sidecars)."""
        return {
            "preset": self.preset,
            "hidden_dim": int(self.backbone.hidden_dim),
            "vocabulary_size": int(self.backbone.vocabulary_size),
            "embedding_fingerprint": files.embedding_fingerprint(self.embedding_matrix()),
        }

    def check_compatible(self, array, meta, where="prompt"):
        """Raise if `array` cannot feed this backbone; warn if its sidecar names another."""
        dim = int(self.backbone.hidden_dim)
        if array.shape[-1] != dim:
            raise ValueError(
                f"{where} has hidden size {array.shape[-1]}, the model's is {dim} "
                f"(shape {tuple(array.shape)})"
            )
        theirs = (meta or {}).get("backbone", {}).get("embedding_fingerprint")
        if theirs:
            ours = self.identity()["embedding_fingerprint"]
            if theirs != ours:
                warnings.warn(
                    f"{where} was trained on backbone {meta['backbone'].get('preset')!r} "
                    f"(fingerprint {theirs}), this model is {self.preset!r} (fingerprint {ours})",
                    stacklevel=3,
                )

    def save_prompt(self, path, **metadata):
        """Save the prompt variable (``(P, d)`` when it holds one prompt) with a sidecar."""
        array = ops.convert_to_numpy(self.prompt.embeddings)
        if self.num_prompts == 1:
            array = array[0]
        meta = {"backbone": self.identity(), "prompt_length": self.prompt_length,
                "init": self.init}
        meta.update(metadata)
        return files.save_prompt(path, array, **meta)

    def load_prompt(self, path_or_array, metadata=None) -> dict:
        """Load a prompt file (or array) into the variable; returns its metadata.

        A different hidden size or prompt shape is a `ValueError`; a sidecar
        naming another backbone (embedding fingerprint) warns with both.
        """
        if isinstance(path_or_array, np.ndarray):
            array, meta, where = path_or_array, metadata or {}, "prompt array"
            files.check_finite(array, where)
        else:
            array, meta = files.load_prompt(path_or_array)
            where = f"prompt file {path_or_array}"
        self.check_compatible(array, meta, where)
        if array.ndim == 2:
            array = array[None]
        expected = tuple(self.prompt.embeddings.shape)
        if tuple(array.shape) != expected:
            raise ValueError(f"{where} has shape {array.shape}, the model's prompt is {expected}")
        self.prompt.embeddings.assign(array.astype("float32"))
        return meta
