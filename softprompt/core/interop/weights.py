"""Weight files of other libraries as float32 numpy arrays: safetensors and PyTorch ``.bin``.

`open_weights` gives one interface over both: ``keys()``, ``shape(key)``
(header only) and ``get(key)`` (one tensor, float32; bfloat16 is widened
exactly, numpy having no bfloat16). PyTorch pickles are read by
`softprompt.backends.torch_pickle`, which never unpickles arbitrary objects.

Example:
    >>> weights = open_weights("checkpoints/t5-small/model.safetensors")
    >>> weights.get("shared.weight").shape
    (32128, 512)
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from safetensors import safe_open

from softprompt.backends.torch_pickle import read_torch_weights

#: File kinds `open_weights` reads.
KINDS = ("safetensors", "bin")


class SafetensorsWeights:
    """The tensors of one safetensors file: ``keys()``, ``shape(key)``, ``get(key)``, ``metadata()``."""

    def __init__(self, path: Path):
        self.path = path
        try:
            self._handle = safe_open(str(path), framework="np")
        except Exception as err:  # noqa: BLE001 - safetensors raises its own error types
            raise ValueError(f"{path} is not a readable safetensors file ({err})") from None

    def keys(self) -> list[str]:
        return list(self._handle.keys())

    def shape(self, key: str) -> tuple[int, ...]:
        return tuple(self._handle.get_slice(key).get_shape())

    def get(self, key: str) -> np.ndarray:
        if self._handle.get_slice(key).get_dtype() == "BF16":
            return read_bf16(self.path, key)
        return np.asarray(self._handle.get_tensor(key), dtype=np.float32)

    def metadata(self) -> dict:
        """The header's string metadata (``{}`` when there is none)."""
        return self._handle.metadata() or {}


def open_weights(path: str | Path, kind: str):
    """The tensors of the weight file `path` of kind ``"safetensors"`` or ``"bin"``."""
    if kind not in KINDS:
        raise ValueError(f"unknown weight file kind {kind!r}: expected one of {', '.join(KINDS)}")
    path = Path(path)
    if kind == "safetensors":
        return SafetensorsWeights(path)
    return read_torch_weights(path)


def read_bf16(path: Path, key: str) -> np.ndarray:
    """Read one bfloat16 tensor of a safetensors file as float32 (numpy has no bfloat16)."""
    with open(path, "rb") as f:
        header_len = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(header_len))
        info = header[key]
        start, end = info["data_offsets"]
        f.seek(8 + header_len + start)
        raw = np.frombuffer(f.read(end - start), dtype="<u2")
    return (raw.astype(np.uint32) << 16).view(np.float32).reshape(info["shape"])
