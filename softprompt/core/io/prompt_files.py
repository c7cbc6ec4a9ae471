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
from softprompt.core.io.numpy_files import UnreadableArray, read_npy

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
    that is not a float ``(P, d)`` / ``(N, P, d)`` numpy array, one holding NaN
    or infinite values (`check_finite`), or a sidecar that is not a JSON object
    of the expected fields (`read_sidecar`). Pickled payloads are refused. Every
    command that reads a prompt comes through here.

    Example:
        >>> array, meta = load_prompt("best.npy")
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"prompt file {path} does not exist")
    try:
        array = read_npy(path)
    except UnreadableArray as err:
        raise UnreadableArray(f"prompt file {err}") from None
    if not np.issubdtype(array.dtype, np.floating):
        raise ValueError(f"prompt file {path} has dtype {array.dtype}, expected a float array")
    if array.ndim not in (2, 3):
        raise ValueError(f"prompt file {path} has shape {array.shape}, expected (P, d) or (N, P, d)")
    if 0 in array.shape:
        raise ValueError(f"prompt file {path} is empty (shape {array.shape})")
    with np.errstate(over="ignore"):  # beyond float32's range becomes inf, refused below
        array = array.astype(np.float32)
    check_finite(array, f"prompt file {path}")
    side = sidecar_path(path)
    meta = read_sidecar(side) if side.is_file() else {}
    return array, meta


def check_finite(array, where: str = "prompt") -> None:
    """Raise `ValueError` naming `where` and the count when `array` holds NaN or inf.

    A prompt with one NaN makes every prediction garbage without a word, so no
    command accepts one (values beyond float32's range count: they load as inf).

    Example:
        >>> check_finite(np.array([[1.0, np.nan]]), "prompt file p.npy")
        Traceback (most recent call last):
        ValueError: prompt file p.npy holds 1 non-finite value (NaN or inf) of 2: ...
    """
    array = np.asarray(array)
    bad = int(array.size - np.count_nonzero(np.isfinite(array)))
    if bad:
        raise ValueError(
            f"{where} holds {bad} non-finite value{'s' if bad > 1 else ''} (NaN or inf) of "
            f"{array.size}: it cannot be used (was it saved from a diverging run?)"
        )


#: Sidecar fields that softprompt reads, and what each must be (`None` is always allowed).
_SIDECAR_FIELDS = {
    "task": "string", "metric": "string", "eval_split": "string",
    "eval_method": "decode|rank",
    "task_args": "object", "backbone": "object", "imported_from": "object", "metrics": "object",
    "labels": "strings", "prompt_lengths": "positive integers",
    "eval_batch_size": "positive integer", "max_input_length": "positive integer",
    "max_target_length": "positive integer", "prompt_length": "positive integer",
    "step": "integer",
}
_BACKBONE_FIELDS = {"preset": "string", "embedding_fingerprint": "string",
                    "hidden_dim": "positive integer", "vocabulary_size": "positive integer"}


def _kind_ok(value, kind: str) -> bool:
    def integer(v):
        return isinstance(v, int) and not isinstance(v, bool)

    if value is None:
        return True
    return {
        "string": lambda v: isinstance(v, str),
        "object": lambda v: isinstance(v, dict),
        "decode|rank": lambda v: v in ("decode", "rank"),
        "strings": lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
        "positive integers": lambda v: isinstance(v, list)
        and all(integer(x) and x > 0 for x in v),
        "positive integer": lambda v: integer(v) and v > 0,
        "integer": integer,
    }[kind](value)


def read_sidecar(path: str | os.PathLike) -> dict:
    """The JSON object of a prompt sidecar, its fields checked; `ValueError` naming the field.

    Example:
        >>> read_sidecar("best.json")["task"]
        'boolq'
    """
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ValueError(f"prompt sidecar {path} is not UTF-8 text ({err.reason} at byte "
                         f"{err.start})") from None
    try:
        meta = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"prompt sidecar {path} is not valid JSON (line {err.lineno})") from None
    except (ValueError, RecursionError) as err:
        raise ValueError(f"prompt sidecar {path} is not valid JSON ({type(err).__name__}: "
                         f"{' '.join(str(err).split())[:100]})") from None
    if not isinstance(meta, dict):
        raise ValueError(f"prompt sidecar {path} holds a {type(meta).__name__}, "
                         "expected a JSON object")
    check_sidecar(meta, f"prompt sidecar {path}")
    return meta


def check_sidecar(meta: dict, where: str = "prompt metadata") -> None:
    """Raise a `ValueError` naming `where` and the field when a field softprompt reads has
    the wrong type (`_SIDECAR_FIELDS`)."""
    checks = [(name, meta.get(name), kind) for name, kind in _SIDECAR_FIELDS.items()]
    if isinstance(meta.get("backbone"), dict):
        checks += [(f"backbone.{name}", meta["backbone"].get(name), kind)
                   for name, kind in _BACKBONE_FIELDS.items()]
    for name, value, kind in checks:
        if not _kind_ok(value, kind):
            expected = "one of decode, rank" if kind == "decode|rank" else (
                "a list of " + kind if kind.endswith("s") else
                "an " + kind if kind[0] in "aeiou" else "a " + kind)
            raise ValueError(f"{where}: field {name!r} must be {expected}, found {value!r:.60}")


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
