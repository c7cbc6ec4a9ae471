"""The `SoftPrompt` layer: P learned "virtual token" vectors per task."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="softprompt")
class SoftPrompt(keras.layers.Layer):
    """Holds `num_prompts` soft prompts and gathers one per example.

    The single trainable variable `embeddings` has shape
    ``(num_prompts, length, hidden_dim)`` and is always float32 (under mixed
    precision the gathered prompt is cast to the compute dtype). Calling the
    layer with integer ``prompt_ids`` of shape ``(batch,)`` returns
    ``(batch, length, hidden_dim)``: each example carries its own prompt, so
    a batch can mix tasks and an ensemble is one batched pass.

    Args:
        length: int. Prompt length P (the paper's default is 100).
        hidden_dim: int. The model's embedding size d.
        num_prompts: int. How many prompts the variable holds.
        initializer: a keras initializer for the variable (the model usually
            overwrites it with one of `softprompt.core.model.init`'s arrays).

    Example:
        >>> layer = SoftPrompt(length=4, hidden_dim=8, num_prompts=2)
        >>> layer(np.array([0, 1, 1])).shape
        (3, 4, 8)
    """

    def __init__(self, length, hidden_dim, num_prompts=1, initializer="zeros", **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        if int(length) < 1:
            raise ValueError(f"prompt length must be at least 1, got {length}")
        if int(num_prompts) < 1:
            raise ValueError(f"num_prompts must be at least 1, got {num_prompts}")
        self.length = int(length)
        self.hidden_dim = int(hidden_dim)
        self.num_prompts = int(num_prompts)
        self.initializer = keras.initializers.get(initializer)
        self.embeddings = self.add_weight(
            name="embeddings",
            shape=(self.num_prompts, self.length, self.hidden_dim),
            initializer=self.initializer,
            dtype="float32",
            trainable=True,
        )
        self.built = True

    def call(self, prompt_ids):
        prompt_ids = ops.cast(prompt_ids, "int32")
        return ops.take(self.embeddings, prompt_ids, axis=0)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.length, self.hidden_dim)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "length": self.length,
                "hidden_dim": self.hidden_dim,
                "num_prompts": self.num_prompts,
                "initializer": keras.initializers.serialize(self.initializer),
            }
        )
        return config
