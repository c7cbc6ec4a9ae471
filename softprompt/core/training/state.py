"""Checkpoints of a training run, written so that a kill at any moment loses nothing committed.

One scheme for every method. A checkpoint at step N is, under ``OUT/checkpoints/``:

- the product of step N, which holds the trained weights
  (`softprompt.core.training.products`): ``step-N.npy`` (+ ``step-N.json``
  sidecar), a normal prompt file, when the prompt trains; ``step-N/``, a
  keras-hub preset, when the whole model trains;
- ``state-N.npz``: everything else an exact resume needs: the optimizer's
  variables (Adafactor's or Adam's moments and its step), the dropout seed
  generators' states, and a JSON record (step, data order, best dev score so
  far, early-stopping count);
- ``latest.json``: the commit record, naming step N, rewritten LAST.

Each file is written atomically (temporary file + rename), and ``latest.json``
only names a step whose files are complete, so an interrupted write leaves the
previous checkpoint in force. Resuming reads ``latest.json`` and ignores any
newer, uncommitted files (they are overwritten when the run gets there again).
The state of the checkpoint before the committed one is kept too (`prune`): if
a file of the committed one is found unreadable, a resume can start from it
(`softprompt.core.training.checkpoint_recovery`).

Example:
    >>> save_state(out, 300, model, {"best": 71.2})
    >>> commit(out, 300)
    >>> record = latest(out)              # {"step": 300, ...}
    >>> meta = restore_state(out, 300, model)
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from softprompt.core.io.atomic import atomic_write
from softprompt.core.io.numpy_files import read_npz

CHECKPOINTS = "checkpoints"
LATEST = "latest.json"


def checkpoint_dir(out) -> Path:
    return Path(out) / CHECKPOINTS


def prompt_path(out, step: int) -> Path:
    return checkpoint_dir(out) / f"step-{int(step)}.npy"


def state_path(out, step: int) -> Path:
    return checkpoint_dir(out) / f"state-{int(step)}.npz"


def resume_variables(model) -> dict[str, list]:
    """The variables besides the trained ones that a resumed run must get back, by group."""
    seeds = [v for v in model.non_trainable_variables if "seed_generator" in v.path]
    return {"optimizer": list(model.optimizer.variables), "seed": seeds}


def save_state(out, step: int, model, record: dict) -> Path:
    """Write ``state-<step>.npz``: optimizer and seed variables plus the JSON `record`."""
    from keras import ops  # the CLI reads checkpoints (`latest`) before keras may load

    arrays: dict[str, np.ndarray] = {}
    names: dict[str, list[str]] = {}
    for group, variables in resume_variables(model).items():
        names[group] = [v.path for v in variables]
        for i, v in enumerate(variables):
            arrays[f"{group}/{i:04d}"] = np.asarray(ops.convert_to_numpy(v))
    meta = dict(record, step=int(step), variables=names)
    arrays["record"] = np.frombuffer(json.dumps(meta, sort_keys=True).encode(), np.uint8)
    path = state_path(out, step)
    with atomic_write(path) as f:
        np.savez(f, **arrays)
    return path


def commit(out, step: int, product: str | None = None, **extra) -> None:
    """Make the checkpoint of `step` the one a resume starts from (atomic).

    `product` names the step's product file or directory (default: its prompt file).
    """
    record = {"step": int(step), "product": product or prompt_path(out, step).name,
              "state": state_path(out, step).name, **extra}
    with atomic_write(checkpoint_dir(out) / LATEST, "w") as f:
        json.dump(record, f, indent=2, sort_keys=True)


def latest(out) -> dict | None:
    """The committed checkpoint record, or `None` when the run has none."""
    path = checkpoint_dir(out) / LATEST
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_bytes().decode())
    except (ValueError, RecursionError):  # not UTF-8, not JSON
        raise ValueError(f"{path} is not valid JSON: the checkpoint record is damaged") from None


def restore_state(out, step: int, model) -> dict:
    """Load ``state-<step>.npz`` into the model's optimizer and seed variables; return its record."""
    path = state_path(out, step)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint state {path} is missing: cannot resume exactly")
    arrays = read_npz(path)  # never np.load: its refusal of a damaged file suggests pickles
    record = json.loads(arrays.pop("record").tobytes().decode())
    for group, variables in resume_variables(model).items():
        saved = record["variables"].get(group, [])
        if len(saved) != len(variables):
            raise ValueError(
                f"{path} holds {len(saved)} {group} variables, this model has {len(variables)}: "
                "it was written by a different model or optimizer"
            )
        for i, v in enumerate(variables):
            value = arrays[f"{group}/{i:04d}"]
            if tuple(value.shape) != tuple(v.shape):
                raise ValueError(
                    f"{path}: {group} variable {saved[i]} has shape {value.shape}, "
                    f"the model's {v.path} is {tuple(v.shape)}"
                )
            v.assign(value.astype(v.dtype))
    return record


def saved_steps(out) -> list[int]:
    """The steps that have a state file, newest first."""
    numbers = (p.name[len("state-"):-len(".npz")] for p in checkpoint_dir(out).glob("state-*.npz"))
    return sorted((int(n) for n in numbers if n.isascii() and n.isdigit()), reverse=True)


def prune(out, keep: int) -> set[int]:
    """Delete state files but those of step `keep` and of the newest step before it; return
    the steps kept.

    The one before is the fallback when a file of `keep` turns out unreadable
    (`softprompt.core.training.checkpoint_recovery`); the run's product keeps the
    same steps (`softprompt.core.training.products`).
    """
    steps = saved_steps(out)
    older = [s for s in steps if s < keep]
    kept = {int(keep), *older[:1]}
    for step in steps:
        if step not in kept:
            try:
                os.unlink(state_path(out, step))
            except FileNotFoundError:
                pass
    return kept
