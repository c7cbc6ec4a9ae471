"""The training loop: `train_on_batch` over bucketed batches, with callbacks, checkpoints and resume.

`train(TrainConfig(...))` does what ``softprompt train`` does:

1. reads the task's training and dev splits and tokenizes them once;
2. builds `PromptedT5` from the preset (the prompt initialised with the
   task's class labels when it has labels) and compiles it with the paper's
   Adafactor — inside the scope of the backend adapter's `Distribution`
   (``adapter.distribute``; one device for ``distribution="none"``);
3. runs ``model.train_on_batch`` over the seeded `TrainBatches` stream,
   feeding keras callbacks (progress bar, ``train.csv``, TensorBoard, any of
   the caller's);
4. every ``eval_every`` steps (and at the last): evaluates on the dev split
   (greedy decoding or rank classification), saves
   ``checkpoints/step-N.npy`` with its metrics in the sidecar, keeps
   ``best.npy`` for the best dev score, appends to ``metrics.jsonl``, and
   commits the resume state (`softprompt.core.training.state`);
5. stops at a NaN/inf loss (`TrainingDiverged`, the last good checkpoint
   untouched), at early stopping, or on Ctrl-C (the current step finishes and
   is checkpointed); draws ``curve.png`` at the end.

The options and the result are `softprompt.core.training.config`; the checks
of the run directory `softprompt.core.training.run_dir`; the run itself
(set-up, the step loop, evaluations, checkpoints) `softprompt.core.training.loop.Run`.
This module is the entry point that puts them together.

Resume is exact: batch ``s`` is a pure function of the data, the seed and
``s``, and the checkpoint holds the prompt, the optimizer's variables and the
dropout seed states, so a resumed run computes the same updates as one that
was never stopped (on the same backend and device).

Example:
    >>> from softprompt.core.training.config import TrainConfig
    >>> from softprompt.core.training.train import train
    >>> result = train(TrainConfig(out="runs/rte", preset="./my-t5-base-lm-adapt", task="rte",
    ...                            data="path/to/RTE", steps=30000))
    >>> result.best_step, result.best_score
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Sequence
from pathlib import Path

from softprompt import backends
from softprompt.core.io.run_lock import hold_run_folder
from softprompt.core.training.config import TrainConfig, TrainResult
from softprompt.core.training.loop import Run
from softprompt.core.training.run_dir import check_out, check_resume


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
    try:  # the writer holds the folder; a second process is refused here
        with hold_run_folder(config.out, echo) if writer else contextlib.nullcontext():
            # Checked again now that the folder is ours (the other processes of this run,
            # which hold nothing, checked before the distribution started).
            out = check_out(config.out, resume) if writer else Path(config.out)
            start = (check_resume(config, out, from_last_good, echo, writer)
                     if resume else None)
            with dist.scope():
                return Run(config, resume, callbacks, progress, echo, dist, start).run()
    finally:
        dist.close()
