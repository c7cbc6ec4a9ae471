"""Which checkpoint a resume starts from, when files of the committed one are unreadable.

A run keeps its committed checkpoint and the complete one before it
(`softprompt.core.training.state.prune`, the products' ``prune``). Before
anything is built, a resume reads the committed checkpoint's files (its
product: ``step-N.npy`` and ``step-N.json``, or the preset ``step-N/``; and
``state-N.npz``) the way the restore will. This holds for every job of the
one loop: prompt tuning, model tuning and LM adaptation. When one of them is unreadable
(overwritten, truncated by a failing disk, damaged in a copy) the resume
stops with `UnreadableCheckpoint`: one line naming the file and why, and the
newest earlier checkpoint that is complete; with ``from_last_good`` it
starts from that one instead, says so, and commits it.

Example:
    >>> step = resume_step("runs/boolq")                       # the committed step, checked
    >>> step = resume_step("runs/boolq", from_last_good=True)  # or the newest readable one
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from softprompt.core.io.numpy_files import UnreadableArray, read_npz
from softprompt.core.training import state as train_state
from softprompt.core.training.products import PromptFiles

#: The option that takes the previous complete checkpoint (named in messages).
LAST_GOOD_OPTION = "--resume-from-last-good"


class UnreadableCheckpoint(ValueError):
    """A checkpoint file cannot be read; the message names it and what to do."""


def read_state(path) -> tuple[dict, dict]:
    """``(arrays, record)`` of a ``state-N.npz``; `UnreadableCheckpoint` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise UnreadableCheckpoint(f"checkpoint state {path} is missing")
    try:
        arrays = read_npz(path)
    except UnreadableArray as err:
        raise UnreadableCheckpoint(f"checkpoint state {err}") from None
    raw = arrays.pop("record", None)
    try:
        record = json.loads(raw.tobytes().decode()) if raw is not None else None
    except (UnicodeDecodeError, ValueError, RecursionError):
        record = None
    if not isinstance(record, dict) or not isinstance(record.get("variables"), dict):
        raise UnreadableCheckpoint(f"checkpoint state {path} has no readable run record")
    for group, names in record["variables"].items():
        missing = [i for i in range(len(names)) if f"{group}/{i:04d}" not in arrays]
        if missing:
            raise UnreadableCheckpoint(
                f"checkpoint state {path} lacks {len(missing)} of its {len(names)} {group} arrays")
    return arrays, record


def check_checkpoint(out, step: int, product=PromptFiles) -> None:
    """Raise `UnreadableCheckpoint` unless every file of the checkpoint of `step` reads.

    `product` is the run's product class (`softprompt.core.training.products`).
    """
    try:
        product.check(out, step)
    except (ValueError, FileNotFoundError) as err:
        raise UnreadableCheckpoint(f"checkpoint {' '.join(str(err).split())}") from None
    read_state(train_state.state_path(out, step))


def last_good(out, below: int | None = None, product=PromptFiles) -> int | None:
    """The newest step below `below` (default: any) whose checkpoint reads completely."""
    for step in train_state.saved_steps(out):
        if below is not None and step >= below:
            continue
        try:
            check_checkpoint(out, step, product)
        except UnreadableCheckpoint:
            continue
        return step
    return None


def resume_step(out, from_last_good: bool = False,
                echo: Callable[[str], None] | None = None, commit: bool = True,
                product=PromptFiles) -> int:
    """The step a resume of the run in `out` starts from, its files checked.

    The committed step when its checkpoint reads. Otherwise, with
    `from_last_good`, the newest earlier complete checkpoint (noted through
    `echo` and, with `commit`, committed, so the folder is consistent again); without it,
    `UnreadableCheckpoint` naming the damaged file and that earlier step.
    A damaged ``latest.json`` is handled the same way.
    """
    committed = None
    try:
        record = train_state.latest(out)
        if record is None:
            raise FileNotFoundError(f"nothing to resume in {out}: no checkpoint was committed yet")
        step = record.get("step") if isinstance(record, dict) else None
        if not isinstance(step, int) or isinstance(step, bool) or step < 1:
            raise UnreadableCheckpoint(
                f"{train_state.checkpoint_dir(out) / train_state.LATEST} names no step: the "
                "checkpoint record is damaged")
        committed = step
        check_checkpoint(out, committed, product)
        return committed
    except ValueError as err:
        problem = " ".join(str(err).split())
    fallback = last_good(out, below=committed, product=product)
    if fallback is None:
        raise UnreadableCheckpoint(f"{problem}; no earlier complete checkpoint is left to resume "
                                   "from: start the run again in another folder") from None
    if not from_last_good:
        raise UnreadableCheckpoint(f"{problem}; the previous complete checkpoint is step "
                                   f"{fallback}: resume from it with {LAST_GOOD_OPTION}") from None
    if echo is not None:
        echo(f"note: {problem}; resuming from step {fallback}, the last complete checkpoint")
    if commit:
        train_state.commit(out, fallback, product=product.saved(out, fallback).name)
    return fallback
