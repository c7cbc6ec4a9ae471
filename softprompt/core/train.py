"""The training loop: `train_on_batch` over bucketed batches, with callbacks, checkpoints and resume.

`train(TrainConfig(...))` does what ``softprompt train`` does:

1. reads the task's training and dev splits and tokenizes them once;
2. builds `PromptedT5` from the preset (the prompt initialised with the
   task's class labels when it has labels) and compiles it with the paper's
   Adafactor — inside the scope of the backend adapter's `Distribution`
   (`make_distribution`; one device when the adapter offers none);
3. runs ``model.train_on_batch`` over the seeded `TrainBatches` stream,
   feeding keras callbacks (progress bar, ``train.csv``, TensorBoard, any of
   the caller's);
4. every ``eval_every`` steps (and at the last): evaluates on the dev split
   (greedy decoding or rank classification), saves
   ``checkpoints/step-N.npy`` with its metrics in the sidecar, keeps
   ``best.npy`` for the best dev score, appends to ``metrics.jsonl``, and
   commits the resume state (`softprompt.core.train_state`);
5. stops at a NaN/inf loss (`TrainingDiverged`, the last good checkpoint
   untouched), at early stopping, or on Ctrl-C (the current step finishes and
   is checkpointed); draws ``curve.png`` at the end.

The run itself (set-up, the step loop, evaluations, checkpoints) is
`softprompt.core.train_loop.Run`; this module holds the options, the result
and the checks around it.

Resume is exact: batch ``s`` is a pure function of the data, the seed and
``s``, and the checkpoint holds the prompt, the optimizer's variables and the
dropout seed states, so a resumed run computes the same updates as one that
was never stopped (on the same backend and device).

Example:
    >>> from softprompt.core.train import TrainConfig, train
    >>> result = train(TrainConfig(out="runs/rte", preset="t5_base_lm_adapt", task="rte",
    ...                            data="data/RTE", steps=30000))
    >>> result.best_step, result.best_score
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import platform
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from softprompt.core import train_state
from softprompt.core.atomic import atomic_write
from softprompt.core.checkpoint_recovery import resume_step
from softprompt.core.run_lock import check_free, hold_run_folder

CONFIG = "config.json"
METRICS = "metrics.jsonl"
#: Options a resumed run may change (everything else must match the stopped run).
RESUMABLE_CHANGES = ("steps", "distribution", "mesh", "devices")


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


@dataclasses.dataclass
class TrainConfig:
    """Every option of a training run; the defaults are the paper's.

    Args:
        out: the run directory.
        task: a registered task name (`softprompt.tasks.get`).
        data: the task's data (a file or directory `Task.read` accepts).
        preset: the frozen model (anything `PromptedT5.from_preset` accepts).
        task_args: keyword arguments of the task (``template``, ``target_field``,
            ``labels`` for ``jsonl``).
        prompt_length: P (paper: 100).
        init: prompt initializer; default ``class-labels`` when the task has
            labels, else ``sampled-vocab``.
        init_text, init_file: for ``init="text"`` / ``"file"``.
        steps: training steps (paper: 30,000).
        batch_size: examples per step (paper: 32).
        lr: Adafactor's constant learning rate (paper: 0.3).
        max_input_length: encoder tokens kept per input (paper: 512).
        max_target_length: target tokens; default: the longest target of the
            task's training data and labels.
        eval_every: steps between dev evaluations and checkpoints.
        eval_split: the split that selects the best checkpoint.
        eval_method: ``decode`` or ``rank``.
        metric: the selecting metric (default: the task's main metric).
        early_stopping: stop after this many evaluations without improvement
            (`None`: never).
        dropout: the backbone's dropout rate while training (`None`: the
            preset's own, 0.1 for T5 checkpoints as in the official runs).
        seed: seeds the prompt initializer, dropout and the data order.
        eval_batch_size: inputs per evaluation batch (default: `batch_size`).
        distribution: ``auto``, ``none``, ``data`` or ``model`` (the adapter's
            `distribute`); resume is exact on the same devices.
        mesh: ``"DATAxMODEL"`` for ``distribution="model"``.
        devices: use the first N devices (default: all).
    """

    out: str
    task: str | None = None
    data: str | None = None
    preset: str | None = None
    task_args: dict = dataclasses.field(default_factory=dict)
    prompt_length: int = 100
    init: str | None = None
    init_text: str | None = None
    init_file: str | None = None
    steps: int = 30000
    batch_size: int = 32
    lr: float = 0.3
    max_input_length: int = 512
    max_target_length: int | None = None
    eval_every: int = 1000
    eval_split: str = "validation"
    eval_method: str = "decode"
    metric: str | None = None
    early_stopping: int | None = None
    dropout: float | None = None
    seed: int = 0
    eval_batch_size: int | None = None
    distribution: str = "auto"
    mesh: str | None = None
    devices: int | None = None

    def validate(self) -> TrainConfig:
        """Raise a one-line `ValueError` for an option out of range; return self."""
        for name in ("steps", "batch_size", "prompt_length", "max_input_length", "eval_every"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        for name in ("max_target_length", "early_stopping", "eval_batch_size", "devices"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")
        if not (isinstance(self.lr, (int, float)) and self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be a positive number, got {self.lr!r}")
        if self.dropout is not None and not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if self.eval_method not in ("decode", "rank"):
            raise ValueError(f"eval method must be decode or rank, got {self.eval_method!r}")
        if not self.task:
            raise ValueError("no task given: name one (e.g. boolq, or jsonl for your own data)")
        if not self.data:
            raise ValueError(f"no data given for task {self.task!r}")
        if not self.preset:
            raise ValueError("no preset given: name the frozen T5 model to prompt")
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown training option(s): {', '.join(unknown)}")
        return cls(**values)


@dataclasses.dataclass
class TrainResult:
    """What a run ended with.

    Attributes:
        out: the run directory.
        step: the last step trained.
        best_step, best_score: the best dev evaluation (`None` before any).
        metric: the selecting metric.
        stopped: ``"completed"``, ``"early_stopping"`` or ``"interrupted"``.
        last_metrics: the last dev evaluation's metrics.
    """

    out: Path
    step: int
    best_step: int | None
    best_score: float | None
    metric: str
    stopped: str
    last_metrics: dict | None = None

    @property
    def best_path(self) -> Path:
        return self.out / "best.npy"


# ---------------------------------------------------------------------- helpers


class LocalDistribution:
    """One device, one process: what training uses when the adapter offers no distribution.

    The interface the loop uses of `softprompt.backends.base.Distribution`:
    ``scope()``, ``prepare(model)``, ``shard_batch(x, y, w)``, ``is_writer``,
    ``barrier()``, ``close()``.
    """

    kind = "none"
    num_replicas = 1
    num_processes = 1
    rank = 0
    is_writer = True

    def scope(self):
        return contextlib.nullcontext()

    def prepare(self, model):
        return model

    def shard_batch(self, x, y=None, sample_weight=None):
        return x, y, sample_weight

    def barrier(self) -> None:
        pass

    def close(self) -> None:
        pass


def make_distribution(adapter, kind: str = "auto", mesh=None, devices: int | None = None):
    """The adapter's `Distribution` (``adapter.distribute``), or `LocalDistribution`.

    Model and optimizer are created inside its ``scope()``, ``prepare`` runs
    on the new model before it compiles, every process feeds
    ``shard_batch`` of the same global batch, and only ``is_writer`` writes.
    """
    make = getattr(adapter, "distribute", None)
    if make is None:
        if kind not in ("auto", "none") or mesh is not None or devices not in (None, 1):
            raise ValueError(f"backend {adapter.name!r} offers no distribution over devices")
        return LocalDistribution()
    return make(kind, mesh=mesh, devices=devices)


def versions() -> dict:
    """Versions of everything a run depends on."""
    import keras
    import keras_hub

    from softprompt import __version__, backends

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


def train(config: TrainConfig, *, resume: bool = False, from_last_good: bool = False,
          callbacks: Sequence = (), progress=True, echo=None) -> TrainResult:
    """Run (or, with `resume`, continue) prompt tuning as configured.

    Args:
        config: the run's options (`TrainConfig`).
        resume: continue the run in ``config.out`` from its last committed
            checkpoint; only ``steps`` and the distribution options may differ
            from the stopped run.
        from_last_good: resume, and when a file of the committed checkpoint
            is unreadable, start from the newest complete one before it
            (without it, that is a `ValueError` naming the file and that step).
        callbacks: extra `keras.callbacks.Callback`s (see
            `softprompt.core.train_callbacks` for what they receive). Setting
            ``model.stop_training = True`` stops after the current step, with
            a checkpoint.
        progress: show the progress bar (on stderr, or on the given stream).
        echo: a function for one-line notes (default: print to stderr).

    Returns:
        `TrainResult`. Raises `TrainingDiverged` on a NaN/inf loss,
        `softprompt.core.disk_space.DiskFull` when the disk fills (the last
        checkpoint intact), `softprompt.core.run_lock.RunFolderBusy` while
        another process trains into ``config.out``, and `ValueError` /
        `FileNotFoundError` for bad options or data.
    """
    if echo is None:
        def echo(text):
            print(text, file=sys.stderr, flush=True)
    config.validate()
    resume = resume or from_last_good
    check_out(config.out, resume)
    from softprompt import backends

    dist = make_distribution(backends.current(), config.distribution, config.mesh,
                             config.devices)
    writer = dist.is_writer
    try:  # the writer holds the folder; a second process is refused here
        with hold_run_folder(config.out, echo) if writer else contextlib.nullcontext():
            # Checked again now that the folder is ours (the other processes of this run,
            # which hold nothing, checked before the distribution started).
            out = check_out(config.out, resume) if writer else Path(config.out)
            start = _resume_step(config, out, from_last_good, echo, writer) if resume else None
            with dist.scope():
                from softprompt.core.train_loop import Run

                return Run(config, resume, callbacks, progress, echo, dist, start).run()
    finally:
        dist.close()


def _resume_step(config: TrainConfig, out: Path, from_last_good: bool, echo, writer) -> int:
    """The step a resume starts from (`resume_step`), the stopped run's options compared."""
    saved = read_run_config(out)
    mine = config.to_dict()
    changed = [k for k in saved if k not in RESUMABLE_CHANGES and k != "out"
               and saved.get(k) != mine.get(k)]
    if changed:
        raise ValueError(
            f"--resume continues the run in {out} with its own options; these differ: "
            + ", ".join(f"{k} ({saved.get(k)!r} there, {mine.get(k)!r} now)" for k in changed)
        )
    committed = resume_step(out, from_last_good, echo, commit=writer)
    if config.steps < committed:
        raise ValueError(f"--steps {config.steps} is below the checkpoint's step {committed}")
    return committed
