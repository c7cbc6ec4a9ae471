"""The official implementation's prompt files, and choosing one prompt out of a file.

The official prompt-tuning code (google-research/prompt-tuning) saves a
prompt as an ``np.save`` payload, float32 ``(P, d)``, often without an
extension: exporting one is choosing a prompt and writing it; importing one is
plain `softprompt.load_prompt`. Every export (this one and PEFT's) starts
from `select_prompt`, and carries our sidecar along (`carried_metadata`).

Example:
    >>> export_official("runs/boolq/best.npy", "exports/boolq_prompt")
    >>> np.load("exports/boolq_prompt").shape
    (100, 768)
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from softprompt.core.io.prompt_files import OWN_KEYS, as_numpy, load_prompt, save_prompt


def prompt_and_meta(prompt) -> tuple[np.ndarray, dict, str]:
    """``(array, sidecar, where)`` of a prompt file path or an array (whose sidecar is ``{}``)."""
    if isinstance(prompt, (str, os.PathLike)):
        array, meta = load_prompt(prompt)
        return array, meta, f"prompt file {prompt}"
    return np.asarray(as_numpy(prompt), dtype=np.float32), {}, "prompt array"


def select_prompt(array: np.ndarray, meta: dict | None = None, prompt_index: int | None = None,
                  where: str = "prompt") -> np.ndarray:
    """One ``(P, d)`` prompt out of a ``(P, d)`` or ``(N, P, d)`` array.

    ``(1, P, d)`` needs no index; ``(N, P, d)`` with N > 1 needs `prompt_index`.
    When the metadata gives ``prompt_lengths`` (prompts of different lengths
    stored right-aligned), the chosen prompt's unused leading rows are dropped.
    """
    array = np.asarray(array, dtype=np.float32)
    if array.ndim == 2:
        if prompt_index not in (None, 0):
            raise ValueError(f"{where} holds one prompt; prompt index {prompt_index} does not exist")
        return array
    if array.ndim != 3:
        raise ValueError(f"{where} has shape {array.shape}, expected (P, d) or (N, P, d)")
    n = array.shape[0]
    if prompt_index is None:
        if n != 1:
            raise ValueError(
                f"{where} holds {n} prompts; choose one with prompt_index (--index 0..{n - 1})"
            )
        prompt_index = 0
    if not 0 <= prompt_index < n:
        raise ValueError(f"{where} holds {n} prompts; prompt index {prompt_index} does not exist")
    chosen = array[prompt_index]
    lengths = (meta or {}).get("prompt_lengths")
    if isinstance(lengths, list) and len(lengths) == n:
        chosen = chosen[chosen.shape[0] - int(lengths[prompt_index]):]
    return chosen


def carried_metadata(meta: dict, prompt_index: int | None = None) -> dict:
    """The sidecar an export carries along: ours, without what `save_prompt` writes itself."""
    carried = {k: v for k, v in meta.items() if k not in OWN_KEYS}
    if prompt_index is not None:
        carried["prompt_index"] = int(prompt_index)
    return carried


def export_official(prompt, out: str | os.PathLike, prompt_index: int | None = None) -> Path:
    """Write one prompt in the official layout: an ``np.save`` payload, float32 ``(P, d)``.

    `out` may have no extension (as the official checkpoints' files); the
    sidecar goes beside it and the official code ignores it.

    Example:
        >>> export_official("runs/boolq/best.npy", "exports/boolq_prompt")
        >>> np.load("exports/boolq_prompt").shape
        (100, 768)
    """
    array, meta, where = prompt_and_meta(prompt)
    chosen = select_prompt(array, meta, prompt_index, where)
    return save_prompt(out, chosen, **carried_metadata(meta, prompt_index))
