"""The run directory: what must be true of ``--out`` before, during and after a run.

A run directory holds ``config.json`` (the options, what they resolved to,
versions, the command), ``metrics.jsonl`` (one line per dev evaluation),
``checkpoints/`` (`softprompt.core.training.state`), ``best.npy``, and the
logs the callbacks write. These checks read only, so the CLI runs them before
the framework starts; `create_out` is the one function that writes.

Example:
    >>> out = check_out("runs/rte", resume=False)   # raises if a run is already there
    >>> create_out(out)
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import numpy as np

from softprompt import __version__, backends
from softprompt.core.io.atomic import atomic_write
from softprompt.core.io.run_lock import check_free
from softprompt.core.training import state as train_state
from softprompt.core.training.checkpoint_recovery import resume_step
from softprompt.core.training.config import RESUMABLE_CHANGES
from softprompt.core.training.products import PromptFiles

CONFIG = "config.json"
METRICS = "metrics.jsonl"


def check_out(out, resume: bool) -> Path:
    """Check (reading only) that `out` can hold a new run, or holds one to resume."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"--out {out} exists and is not a directory")
    check_free(out)  # a run in progress: say so, whatever else the folder holds
    has_run = (out / CONFIG).is_file()
    if resume:
        if not has_run:
            raise FileNotFoundError(f"nothing to resume in {out} (no {CONFIG})")
        if not (train_state.checkpoint_dir(out) / train_state.LATEST).is_file():
            raise FileNotFoundError(
                f"nothing to resume in {out}: no checkpoint was committed yet "
                "(start again without --resume, into an empty directory)"
            )
    elif has_run:
        raise ValueError(
            f"{out} already holds a training run: use --resume to continue it, "
            "or choose another --out"
        )
    return out


def check_resume(config, out: Path, resumable=RESUMABLE_CHANGES, *, product=PromptFiles,
                 from_last_good: bool = False, echo=print, writer: bool = True) -> int:
    """The step a resume of the run in `out` starts from (`resume_step`, its files read
    with `product`'s check); raises unless `config` may continue the run: only the options
    named in `resumable` (and where the run lives: ``out``, ``workdir``) may differ, and
    ``steps`` may not fall below that step.

    `config` is any options object with ``to_dict()`` and ``steps`` (`TrainConfig`,
    `softprompt.core.pretraining.adapt.AdaptConfig`); `writer`: whether this process may
    commit a fallback checkpoint (the others of a distributed run only read).
    """
    saved = read_run_config(out)
    mine = config.to_dict()
    changed = [k for k in saved if k not in resumable and k not in ("out", "workdir")
               and saved.get(k) != mine.get(k)]
    if changed:
        raise ValueError(
            f"--resume continues the run in {out} with its own options; these differ: "
            + ", ".join(f"{k} ({saved.get(k)!r} there, {mine.get(k)!r} now)" for k in changed)
        )
    committed = resume_step(out, from_last_good, echo, commit=writer, product=product)
    if config.steps < committed:
        raise ValueError(f"--steps {config.steps} is below the checkpoint's step {committed}")
    return committed


def create_out(out) -> Path:
    """Create the run directory and check that it is writable."""
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        with atomic_write(out / ".write-test") as f:
            f.write(b"ok")
        os.unlink(out / ".write-test")
    except OSError as err:
        raise PermissionError(f"cannot write to --out {out} ({err.strerror or err})") from None
    return out


def read_run_config(out) -> dict:
    """The options of the run in `out` (its ``config.json``)."""
    path = Path(out) / CONFIG
    if not path.is_file():
        raise FileNotFoundError(f"nothing to resume in {out} (no {CONFIG})")
    try:
        options = json.loads(path.read_bytes().decode())["options"]
    except (ValueError, KeyError, TypeError, RecursionError):  # not UTF-8, not JSON, no options
        options = None
    if not isinstance(options, dict):
        raise ValueError(f"{path} is not a softprompt run configuration")
    return options


def truncate_jsonl(path: Path, step: int) -> None:
    """Drop a metrics log's lines after `step` (atomically), for a resumed run."""
    if not path.is_file():
        return
    kept = [line for line in path.read_text().splitlines()
            if line.strip() and json.loads(line).get("step", 0) <= step]
    with atomic_write(path, "w") as f:
        f.write("".join(line + "\n" for line in kept))


def versions() -> dict:
    """Versions of everything a run depends on (recorded in ``config.json``)."""
    # keras loads when a run starts, not when the CLI checks --out with this module.
    import keras
    import keras_hub

    adapter = backends.current()
    return {
        "softprompt": __version__,
        "keras": keras.__version__,
        "keras_hub": keras_hub.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "backend": adapter.name,
        "backend_version": adapter.version(),
    }
