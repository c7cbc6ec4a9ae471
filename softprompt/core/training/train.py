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
    >>> result = train(TrainConfig(out="runs/rte", preset="t5_base_lm_adapt", task="rte",
    ...                            data="data/RTE", steps=30000))
    >>> result.best_step, result.best_score
    >>> train(TrainConfig(out="runs/rte-mt", method="model-tuning", ...)).best_path
    PosixPath('runs/rte-mt/best')
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from softprompt import backends
from softprompt.core.training.config import TrainConfig, TrainResult
from softprompt.core.training.loop import Run, Schedule
from softprompt.core.training.run_dir import check_out, check_resume, create_out
from softprompt.core.training.task_job import TaskJob


def train(config: TrainConfig, *, resume: bool = False, callbacks: Sequence = (),
          progress=True, echo=None) -> TrainResult:
    """Run (or, with `resume`, continue) prompt tuning or model tuning as configured.

    Args:
        config: the run's options (`TrainConfig`; ``method`` picks what trains).
        resume: continue the run in ``config.out`` from its last committed
            checkpoint; only ``steps`` and the distribution options may differ
            from the stopped run.
        callbacks: extra `keras.callbacks.Callback`s (see
            `softprompt.core.training.callbacks` for what they receive). Setting
            ``model.stop_training = True`` stops after the current step, with
            a checkpoint.
        progress: show the progress bar (on stderr, or on the given stream).
        echo: a function for one-line notes (default: print to stderr).

    Returns:
        `TrainResult`. Raises `TrainingDiverged` on a NaN/inf loss and
        `ValueError` / `FileNotFoundError` for bad options or data.
    """
    if echo is None:
        def echo(text):
            print(text, file=sys.stderr, flush=True)
    config.validate()
    out = check_out(config.out, resume)
    if resume:
        check_resume(config, out)
    # The backend adapter's distribution: one device when kind is "none" or only one is found.
    dist = backends.current().distribute(config.distribution, mesh=config.mesh,
                                         devices=config.devices)
    try:
        with dist.scope():
            job = TaskJob(config, dist, echo)
            dist.barrier()  # every process has checked `out` before the writer creates it
            if dist.is_writer:
                create_out(out)
            dist.barrier()
            schedule = Schedule(config.steps, config.eval_every, config.early_stopping)
            return Run(out, job, schedule, resume=resume, callbacks=callbacks,
                       progress=progress, echo=echo, dist=dist).run()
    finally:
        dist.close()
