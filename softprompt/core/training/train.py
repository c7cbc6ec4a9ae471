"""Training on a task: ``softprompt train``'s entry point, for prompt tuning and model tuning.

`train(TrainConfig(...))` checks the options and the run directory, makes the
backend adapter's `Distribution` (``adapter.distribute``; one device for
``distribution="none"``), sets up the method's job inside its scope
(`softprompt.core.training.task_job.TaskJob`: the task's data, the model with
what the method trains, its optimizer) and runs the one loop
(`softprompt.core.training.loop.Run`). The run directory then holds
``config.json``, ``metrics.jsonl``, ``train.csv``, ``tensorboard/``,
``curve.png``, ``checkpoints/`` and the best checkpoint's product:
``best.npy`` (prompt tuning) or the keras-hub preset ``best/`` (model tuning).

Resume is exact: batch ``s`` is a pure function of the data, the seed and
``s``, and a checkpoint holds the trained weights (the product), the
optimizer's variables and the dropout seed states, so a resumed run computes
the same updates as one that was never stopped (on the same backend and
device).

Example:
    >>> from softprompt.core.training.config import TrainConfig
    >>> from softprompt.core.training.train import train
    >>> result = train(TrainConfig(out="runs/rte", preset="./my-t5-base-lm-adapt", task="rte",
    ...                            data="path/to/RTE", steps=30000))
    >>> result.best_step, result.best_score
    >>> train(TrainConfig(out="runs/rte-mt", method="model-tuning", ...)).best_path
    PosixPath('runs/rte-mt/best')
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Sequence
from pathlib import Path

from softprompt import backends
from softprompt.core.io.run_lock import hold_run_folder
from softprompt.core.training.config import TrainConfig, TrainResult
from softprompt.core.training.loop import Run, Schedule
from softprompt.core.training.run_dir import check_out, check_resume, create_out
from softprompt.core.training.task_job import TaskJob, product_type


def train(config: TrainConfig, *, resume: bool = False, from_last_good: bool = False,
          callbacks: Sequence = (), progress=True, echo=None) -> TrainResult:
    """Run (or, with `resume`, continue) prompt tuning or model tuning as configured.

    Args:
        config: the run's options (`TrainConfig`; ``method`` picks what trains).
        resume: continue the run in ``config.out`` from its last committed
            checkpoint; only ``steps`` and the distribution options may differ
            from the stopped run.
        from_last_good: resume, and when a file of the committed checkpoint
            is unreadable, start from the newest complete one before it
            (without it, that is a `ValueError` naming the file and that step).
        callbacks: extra `keras.callbacks.Callback`s (see
            `softprompt.core.training.callbacks` for what they receive). Setting
            ``model.stop_training = True`` stops after the current step, with
            a checkpoint.
        progress: show the progress bar (on stderr, or on the given stream).
        echo: a function for one-line notes (default: print to stderr).

    Returns:
        `TrainResult`. Raises `TrainingDiverged` on a NaN/inf loss,
        `softprompt.core.io.disk_space.DiskFull` when the disk fills (the last
        checkpoint intact), `softprompt.core.io.run_lock.RunFolderBusy` while
        another process trains into ``config.out``, and `ValueError` /
        `FileNotFoundError` for bad options or data.
    """
    if echo is None:
        def echo(text):
            print(text, file=sys.stderr, flush=True)
    config.validate()
    resume = resume or from_last_good
    check_out(config.out, resume)
    # The backend adapter's distribution: one device when kind is "none" or only one is found.
    dist = backends.current().distribute(config.distribution, mesh=config.mesh,
                                         devices=config.devices)
    writer = dist.is_writer
    product = product_type(config)
    try:  # the writer holds the folder; a second process is refused here
        with hold_run_folder(config.out, echo) if writer else contextlib.nullcontext():
            # Checked again now that the folder is ours (the other processes of this run,
            # which hold nothing, checked before the distribution started).
            out = check_out(config.out, resume) if writer else Path(config.out)
            start = (check_resume(config, out, product=product, from_last_good=from_last_good,
                                  echo=echo, writer=writer) if resume else None)
            with dist.scope():
                job = TaskJob(config, dist, echo)
                dist.barrier()  # every process has checked `out` before the writer creates it
                if writer:
                    create_out(out)
                dist.barrier()
                schedule = Schedule(config.steps, config.eval_every, config.early_stopping)
                return Run(out, job, schedule, resume=resume, start=start, callbacks=callbacks,
                           progress=progress, echo=echo, dist=dist).run()
    finally:
        dist.close()
