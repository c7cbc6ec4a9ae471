"""PyTorch ``.bin`` weight files (Hugging Face checkpoints, PEFT adapters), read safely.

Such a file is a pickle. It is read with ``torch.load(weights_only=True)``,
torch's restricted unpickler, which builds tensors and plain containers and
refuses any other object, and then only a flat ``{name: tensor}`` dict is
accepted: nothing in the file can run code. This is the one reader of these
files in softprompt; it lives here because it needs torch, whichever backend
keras runs on.

Example:
    >>> weights = read_torch_weights("checkpoints/t5-small/pytorch_model.bin")
    >>> weights.shape("shared.weight"), weights.get("shared.weight").dtype
    ((32128, 512), dtype('float32'))
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


class TorchWeights:
    """The tensors of one PyTorch weight file: ``keys()``, ``shape(key)``, ``get(key)`` (float32)."""

    def __init__(self, state: dict):
        self._state = state

    def keys(self) -> list[str]:
        return list(self._state)

    def shape(self, key: str) -> tuple[int, ...]:
        return tuple(self._state[key].shape)

    def get(self, key: str) -> np.ndarray:
        return self._state[key].detach().to("cpu").float().numpy()


def read_torch_weights(path: str | Path) -> TorchWeights:
    """Load a PyTorch weight file as plain tensors; never unpickles any other object.

    Raises a one-line `ValueError` when torch is missing, when the file holds
    anything but tensors and plain containers, or when it is not a flat dict of tensors.
    """
    try:
        import torch
    except ImportError:
        raise ValueError(
            f"{path} is a PyTorch pickle: reading it needs torch (pip install torch), or convert "
            "it to safetensors first (transformers/PEFT: load it and save_pretrained again)"
        ) from None
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - weights_only refusals come in several types
        raise ValueError(
            f"{path} cannot be loaded as plain tensors with torch.load(weights_only=True) ({err})"
        ) from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path} does not hold a flat dict of tensors")
    return TorchWeights(state)
