"""Prompt files: a plain ``.npy`` payload plus a JSON sidecar.

The payload is exactly what `np.save` writes (float32, ``(P, d)`` for one
prompt, ``(N, P, d)`` for several), so the official prompt-tuning code's
files — ``.npy`` payloads, sometimes without an extension — load unchanged.
The sidecar (``prompt.json`` beside ``prompt.npy``; ``name.json`` beside an
extension-less ``name``) carries the metadata: library version, backbone
identity (preset, hidden_dim, vocabulary size, embedding fingerprint), prompt
length, init, and whatever training adds (task, step, metrics).

Example:
    >>> save_prompt("runs/boolq/best.npy", prompt, task="boolq", step=1000)
    >>> array, meta = load_prompt("runs/boolq/best.npy")
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from softprompt import __version__
from softprompt.core.io.atomic import atomic_write

#: Sidecar keys that `save_prompt` writes itself (an export carries the others along).
OWN_KEYS = ("softprompt_version", "shape")


def sidecar_path(path: str | os.PathLike) -> Path:
    """The JSON sidecar that belongs to the prompt file `path`."""
    path = Path(path)
    if path.suffix == ".npy":
        return path.with_suffix(".json")
    return path.with_name(path.name + ".json")


def embedding_fingerprint(matrix) -> str:
    """A short, stable fingerprint of a token embedding matrix.

    Hashes the shape and a fixed subsample of rows rounded to bfloat16 (round to
    nearest even, as every framework casts), so the same checkpoint gives the same
    value on every backend and in float32, ``bfloat16`` and ``mixed_bfloat16``: a prompt
    trained with ``--dtype bfloat16`` loads into the float32 model without a warning.

    Example:
        >>> embedding_fingerprint(model.embedding_matrix())
        '3f0c9a4e1b2d7c85'
    """
    matrix = np.asarray(matrix, dtype=np.float32)
    rows = np.linspace(0, matrix.shape[0] - 1, num=min(64, matrix.shape[0])).astype(np.int64)
    bits = np.ascontiguousarray(matrix[rows]).view(np.uint32).astype(np.uint64)
    bfloat16 = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)
    h = hashlib.sha256()
    h.update(repr(matrix.shape).encode())
    h.update(bfloat16.tobytes())
    return h.hexdigest()[:16]


def _to_jsonable(value):
    if isinstance(value, dict):
        return {str(k): _to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    return value


def save_prompt(path: str | os.PathLike, embeddings, **metadata) -> Path:
    """Write `embeddings` to `path` (``np.save`` format) and `metadata` to its sidecar.

    Both writes are atomic. `embeddings` may be any array-like (a keras
    variable included); it is stored as float32. Returns the payload path.

    Example:
        >>> save_prompt("best.npy", model.prompt.embeddings, task="boolq")
    """
    array = np.asarray(as_numpy(embeddings), dtype=np.float32)
    if array.ndim not in (2, 3):
        raise ValueError(
            f"prompt embeddings must have shape (P, d) or (N, P, d), got {array.shape}"
        )
    path = Path(path)
    with atomic_write(path) as f:
        np.save(f, array, allow_pickle=False)
    meta = {"softprompt_version": __version__, "shape": list(array.shape)}
    meta.update(_to_jsonable(metadata))
    with atomic_write(sidecar_path(path), "w") as f:
        json.dump(meta, f, indent=2, sort_keys=True)
    return path


def load_prompt(path: str | os.PathLike) -> tuple[np.ndarray, dict]:
    """Read a prompt file and its sidecar (an empty dict when there is none).

    Raises `FileNotFoundError` for a missing file and `ValueError` for a file
    that is not a float ``(P, d)`` / ``(N, P, d)`` numpy array. Pickled
    payloads are refused.

    Example:
        >>> array, meta = load_prompt("best.npy")
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"prompt file {path} does not exist")
    try:
        array = np.load(path, allow_pickle=False)
    except ValueError as err:
        raise ValueError(f"prompt file {path} is not a plain numpy array file ({err})") from None
    except (OSError, EOFError) as err:
        raise ValueError(f"prompt file {path} is not a numpy .npy file ({err})") from None
    if not isinstance(array, np.ndarray):
        raise ValueError(f"prompt file {path} holds an archive, expected one .npy array")
    if not np.issubdtype(array.dtype, np.floating):
        raise ValueError(f"prompt file {path} has dtype {array.dtype}, expected a float array")
    if array.ndim not in (2, 3):
        raise ValueError(f"prompt file {path} has shape {array.shape}, expected (P, d) or (N, P, d)")
    meta = {}
    side = sidecar_path(path)
    if side.is_file():
        try:
            meta = json.loads(side.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"prompt sidecar {side} is not valid JSON (line {err.lineno})") from None
    return array.astype(np.float32), meta


def as_numpy(x) -> np.ndarray:
    """`x` as a numpy array: arrays as they are, keras variables and tensors converted."""
    if isinstance(x, np.ndarray):
        return x
    try:
        # keras only for keras values: reading and writing prompt files never needs it.
        import keras

        return keras.ops.convert_to_numpy(x)
    except Exception:  # noqa: BLE001 - anything array-like numpy understands
        return np.asarray(x)
