"""The served prompts: a folder of prompt files read into immutable, versioned tables.

``DIR/NAME.npy`` with its sidecar ``DIR/NAME.json`` is the task ``NAME``. A file is
refused — one log line naming it, the others still served — when it is not a float
``(P, d)`` array (or ``(1, P, d)``), its hidden size is not the model's, it holds
non-finite values, its sidecar is broken, or the sidecar names another backbone
(embedding fingerprint) and ``allow_mismatch`` is off.

`PromptRegistry.reload` reads the folder again and publishes a new `PromptTable` when
anything changed; unchanged files are not read again (their size and modification time
decide). A file that was served and is now broken keeps its last good version (a
half-copied file does not take its task away); a file that disappears takes its task
away. Readers take `PromptRegistry.current` once and use that table to the end (a batch
keeps the prompts it started with).

Example:
    >>> registry = PromptRegistry("prompts/", {"hidden_dim": 512, "embedding_fingerprint": "3f0c..."})
    >>> table = registry.reload()
    >>> table.names, table["boolq"].sha256
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import threading
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from softprompt.core.io.prompt_files import load_prompt, sidecar_path

logger = logging.getLogger("softprompt.serve")


@dataclasses.dataclass(frozen=True, eq=False)
class PromptEntry:
    """One served prompt.

    Attributes:
        name: the task name (the file's stem).
        path: the prompt file.
        array: float32 ``(P, d)``.
        meta: its sidecar (empty when there is none).
        sha256: of the prompt file's bytes.
        loaded_at: UNIX time it was read.
        signature: what decides whether the file changed (sizes and mtimes).
    """

    name: str
    path: Path
    array: np.ndarray
    meta: dict
    sha256: str
    loaded_at: float
    signature: tuple

    @property
    def prompt_length(self) -> int:
        return int(self.array.shape[0])

    @property
    def labels(self) -> list[str] | None:
        """The task's labels the sidecar records (training writes them), or None."""
        return self.meta.get("labels") or None

    @property
    def max_target_length(self) -> int | None:
        """Tokens to decode by default (the training setting the sidecar records)."""
        return self.meta.get("max_target_length")

    @property
    def backbone_fingerprint(self) -> str | None:
        return (self.meta.get("backbone") or {}).get("embedding_fingerprint")

    def describe(self) -> dict:
        """What ``GET /v1/tasks`` shows."""
        return {
            "name": self.name,
            "prompt_length": self.prompt_length,
            "sha256": self.sha256,
            "labels": self.labels,
            "task": self.meta.get("task"),
            "backbone_fingerprint": self.backbone_fingerprint,
            "loaded_at": self.loaded_at,
            "max_target_length": self.max_target_length,
        }


@dataclasses.dataclass(frozen=True)
class PromptTable:
    """An immutable snapshot of the served prompts, by name (sorted)."""

    version: int
    entries: Mapping[str, PromptEntry]

    @property
    def names(self) -> list[str]:
        return list(self.entries)

    def __contains__(self, name) -> bool:
        return name in self.entries

    def __getitem__(self, name: str) -> PromptEntry:
        return self.entries[name]

    def __len__(self) -> int:
        return len(self.entries)


def file_signature(path: Path) -> tuple:
    """Sizes and modification times of a prompt file and its sidecar."""
    out = []
    for p in (path, sidecar_path(path)):
        try:
            st = p.stat()
            out.append((st.st_size, st.st_mtime_ns, st.st_ino))
        except FileNotFoundError:
            out.append(None)
    return tuple(out)


def read_entry(path: Path, model: Mapping, allow_mismatch: bool = False) -> PromptEntry:
    """Read and check one prompt file against the served model's identity.

    `model` holds ``hidden_dim`` and ``embedding_fingerprint`` (`PromptedT5.identity`).
    `load_prompt` refuses what no command reads (not a float array, NaN or infinity, an
    empty shape, a malformed sidecar); this refuses what this model cannot serve.

    Raises:
        ValueError: why the file cannot be served, naming it.
    """
    signature = file_signature(path)
    data = path.read_bytes()
    where = f"prompt file {path}"
    array, meta = load_prompt(path)
    if file_signature(path) != signature:
        raise ValueError(f"{where} changed while it was read (read again on the next change)")
    if array.ndim == 3:
        if array.shape[0] != 1:
            raise ValueError(f"{where} holds {array.shape[0]} prompts; serve one prompt per file")
        array = array[0]
    dim = int(model["hidden_dim"])
    if array.shape[1] != dim:
        raise ValueError(f"{where} has hidden size {array.shape[1]}, the served model's is {dim}")
    theirs = (meta.get("backbone") or {}).get("embedding_fingerprint")
    ours = model.get("embedding_fingerprint")
    if theirs and ours and theirs != ours and not allow_mismatch:
        raise ValueError(
            f"{where} was trained on model {(meta.get('backbone') or {}).get('preset')!r} "
            f"(fingerprint {theirs}), the served model is {model.get('preset')!r} "
            f"(fingerprint {ours}); pass --allow-mismatch to serve it anyway"
        )
    return PromptEntry(path.stem, path, np.ascontiguousarray(array, np.float32), meta,
                       hashlib.sha256(data).hexdigest(), time.time(), signature)


class PromptRegistry:
    """The prompt folder, read into `PromptTable` snapshots (thread-safe).

    Args:
        folder: the prompt folder.
        model: the served model's identity (`PromptedT5.identity`): ``hidden_dim``,
            ``embedding_fingerprint``, ``preset``.
        allow_mismatch: serve prompts trained on another backbone.
        on_change: called with ``(loaded, refused, removed)`` counts after each reload.
    """

    def __init__(self, folder, model: Mapping, allow_mismatch: bool = False, on_change=None):
        self.folder = Path(folder)
        self.model = dict(model)
        self.allow_mismatch = bool(allow_mismatch)
        self.on_change = on_change
        self._lock = threading.Lock()
        self._table = PromptTable(0, {})
        self._refused: dict[Path, tuple] = {}  # files refused, by signature (logged once)

    def current(self) -> PromptTable:
        """The latest table (take it once per use: it never changes)."""
        return self._table

    def reload(self) -> PromptTable:
        """Read the folder again; publish and return the new table (the same one if nothing
        changed)."""
        with self._lock:
            old = self._table.entries
            found = sorted(p for p in self.folder.glob("*.npy") if p.is_file())
            entries: dict[str, PromptEntry] = {}
            loaded = refused = 0
            for path in found:
                name = path.stem
                signature = file_signature(path)
                previous = old.get(name)
                if previous is not None and previous.signature == signature:
                    entries[name] = previous
                    continue
                if self._refused.get(path) == signature:
                    if previous is not None:
                        entries[name] = previous
                    continue
                try:
                    entries[name] = read_entry(path, self.model, self.allow_mismatch)
                except (ValueError, OSError) as err:
                    self._refused[path] = signature
                    refused += 1
                    kept = (f" (still serving the version loaded at "
                            f"{time.strftime('%H:%M:%S', time.localtime(previous.loaded_at))})"
                            if previous is not None else "")
                    logger.warning("refused %s: %s%s", path, _one_line(err), kept)
                    if previous is not None:
                        entries[name] = previous
                    continue
                self._refused.pop(path, None)
                loaded += 1
                entry = entries[name]
                logger.info("%s task %r from %s (%d x %d, sha256 %s)",
                            "replaced" if previous is not None else "loaded", name, path,
                            entry.array.shape[0], entry.array.shape[1], entry.sha256[:12])
            removed = [name for name in old if name not in entries]
            for name in removed:
                logger.info("removed task %r (%s is gone)", name, old[name].path)
            present = set(found)
            self._refused = {p: s for p, s in self._refused.items() if p in present}
            changed = removed or any(entries[n] is not old.get(n) for n in entries)
            if changed:
                self._table = PromptTable(self._table.version + 1, dict(sorted(entries.items())))
            table = self._table
        if self.on_change is not None:
            self.on_change(loaded, refused, len(removed), len(table))
        return table


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__
