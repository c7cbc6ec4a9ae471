"""The one training loop (`Run`): steps, evaluations, checkpoints, resume and logs, for every method.

A run trains a *job*: what a caller set up for one method. Prompt tuning and
model tuning get theirs from `softprompt.core.training.task_job.TaskJob` (a
task's data, the method's trainable part and optimizer), LM adaptation from
`softprompt.core.pretraining.adapt.AdaptJob` (a corpus, the whole model). A
job has:

- ``model``: a compiled keras model; its trainable variables are what trains;
- ``stream``: ``batch(step) -> (x, y, sample_weight)``, a pure function of the
  step, and ``state(step) -> {"fingerprint": ...}`` (what resume checks);
- ``product``: what a checkpoint writes for the user, and from which a resume
  restores the trained weights (`softprompt.core.training.products`);
- ``metric`` and ``higher_is_better``: what selects the best checkpoint;
  ``keeps_best``: whether the best checkpoint is copied to ``best*``;
- ``evaluate() -> metrics`` (a dict holding ``metric``);
- ``sidecar(step, metrics) -> dict``: the record saved with each checkpoint;
- ``config_record() -> dict``: ``config.json`` of a new run (``options`` first).

What `Run` does with it is the same for all: ``train_on_batch`` over the
stream, feeding keras callbacks (progress bar, ``train.csv``, TensorBoard,
the caller's); every ``eval_every`` steps and at the last, an evaluation and
a checkpoint (product, ``best*``, ``metrics.jsonl``, resume state, commit;
`softprompt.core.training.state`); a stop at a NaN/inf loss
(`TrainingDiverged`, the last good checkpoint untouched), at early stopping,
or on Ctrl-C (the current step finishes and is checkpointed); ``curve.png``
at the end. A resumed run restores the product and the state of the last
committed step (or of the step the caller checked, `start`: the last complete
one when the committed one is unreadable, see
`softprompt.core.training.checkpoint_recovery`) and computes what an
uninterrupted run computes. A write that fails for lack of space ends the run
with `softprompt.core.io.disk_space.DiskFull`, the last committed checkpoint
intact. The caller holds the run folder (`softprompt.core.io.run_lock`).

A job may also say ``resume_hint``: how the user continues the run (named when
the disk is full).

Example:
    >>> job = TaskJob(config, dist, echo=print)
    >>> Run(config.out, job, Schedule(steps=1000, eval_every=100), dist=dist).run()
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np
from keras import ops

from softprompt import backends
from softprompt.core.io.atomic import append_line, atomic_write
from softprompt.core.io.disk_space import DiskFull, is_full
from softprompt.core.training import callbacks as cb
from softprompt.core.training import state as train_state
from softprompt.core.training.config import TrainingDiverged, TrainResult
from softprompt.core.training.products import array_bytes
from softprompt.core.training.run_dir import CONFIG, METRICS, truncate_jsonl, versions
from softprompt.core.training.run_parts import dtype_policy, graceful_interrupt


@dataclasses.dataclass(frozen=True)
class Schedule:
    """How long a run trains and how often it evaluates.

    Attributes:
        steps: optimizer steps in total.
        eval_every: steps between evaluations and checkpoints (and at the last step).
        early_stopping: stop after this many evaluations without a better score
            (`None`: never).
    """

    steps: int
    eval_every: int
    early_stopping: int | None = None


class Run:
    """One training run of a job: the step loop, evaluations, checkpoints, resume and logs.

    Args:
        out: the run directory (created by the caller, `run_dir.create_out`).
        job: what trains (see the module's docs).
        schedule: `Schedule`.
        resume: continue from the last committed checkpoint in `out`.
        start: with `resume`, the checked step to continue from (default: the committed
            one; `softprompt.core.training.run_dir.check_resume` returns it).
        callbacks: extra keras callbacks; ``model.stop_training = True`` stops
            after the current step, with a checkpoint.
        progress: show the progress bar (on stderr, or on the given stream).
        echo: a function for one-line notes.
        dist: the backend's `Distribution` (only its writer writes files).
    """

    def __init__(self, out, job, schedule: Schedule, *, resume: bool = False,
                 start: int | None = None, callbacks: Sequence = (), progress=True, echo=None,
                 dist=None):
        self.out = Path(out)
        self.job = job
        self.model = job.model
        self.schedule = schedule
        self.echo = echo or (lambda text: print(text, file=sys.stderr, flush=True))
        self.dist = dist or backends.current().distribute("none")
        self.chief = bool(self.dist.is_writer)
        self.step = 0
        self.best: tuple[float, int] | None = None
        self.bad_evals = 0
        self.last_metrics = None
        self.losses_since_eval: list[float] = []
        self.loss: float | None = None
        self.committed: int | None = None
        self.start = start
        self.checkpointing: int | None = None  # the step whose checkpoint is being written
        if resume:
            self._restore()
        self._write_config(resume)
        self.callbacks = self._callbacks(callbacks, progress)

    # -------------------------------------------------------------- set-up
    def _restore(self) -> None:
        """Load the checkpoint to continue from: product (weights), then the resume state."""
        step = self.start if self.start is not None else int(train_state.latest(self.out)["step"])
        self.job.product.restore(step)
        state = train_state.restore_state(self.out, step, self.model)
        expected = self.job.stream.state(step)["fingerprint"]
        if state["data"]["fingerprint"] != expected:
            raise ValueError(
                "the training data or its batching differ from the stopped run "
                f"(fingerprint {state['data']['fingerprint']} vs {expected}): resume needs the "
                "same data, batch size, seed and length limits"
            )
        iterations = int(ops.convert_to_numpy(self.model.optimizer.iterations))
        if iterations != step:
            raise ValueError(f"checkpoint of step {step} holds optimizer step {iterations}")
        self.step = self.committed = step
        if state.get("best") is not None:
            self.best = (float(state["best"][0]), int(state["best"][1]))
        self.bad_evals = int(state.get("bad_evals", 0))
        self.last_metrics = state.get("last_metrics")
        if self.chief:
            truncate_jsonl(self.out / METRICS, step)
            if self.best is not None and self.job.keeps_best:
                self.job.product.copy_best(self.best[1])  # it may be newer than the commit
        self.echo(f"resuming {self.out} at step {step}")

    def _write_config(self, resume: bool) -> None:
        if not self.chief:
            return
        path = self.out / CONFIG
        if resume:
            record = json.loads(path.read_text())
            record["options"]["steps"] = self.schedule.steps
            record.setdefault("resumed", []).append(
                {"at_step": self.step, "steps": self.schedule.steps, "time": time.time(),
                 "versions": versions(), "command": sys.argv})
        else:
            record = {
                **self.job.config_record(),
                "versions": versions(),
                "backend": backends.name(),
                "dtype_policy": dtype_policy(),
                "distribution": repr(self.dist),
                "devices": [d.name for d in backends.current().devices()],
                "command": sys.argv,
                "started": time.time(),
            }
        with atomic_write(path, "w") as f:
            json.dump(record, f, indent=2, default=str)

    def _callbacks(self, extra, progress):
        items = []
        if progress and self.chief:
            stream = progress if hasattr(progress, "write") else None
            items.append(cb.ProgressBar(self.schedule.steps, self.step, stream,
                                        metric=self.job.metric,
                                        higher_is_better=self.job.higher_is_better))
        if self.chief:
            items.append(cb.CsvLog(self.out / "train.csv", self.step))
            items.append(cb.EventLog(self.out / "tensorboard", self.step))
        items.extend(extra)
        return keras.callbacks.CallbackList(items, model=self.model)

    # -------------------------------------------------------------- checkpoints
    def _better(self, score: float) -> bool:
        if self.best is None:
            return True
        return score > self.best[0] if self.job.higher_is_better else score < self.best[0]

    def checkpoint(self, step: int, metrics: dict | None) -> None:
        """Save the product, update best and metrics.jsonl, save the resume state, commit."""
        self.checkpointing = step
        improved = False
        if metrics is not None:
            improved = self._better(metrics[self.job.metric])
            if improved:
                self.best = (metrics[self.job.metric], step)
                self.bad_evals = 0
            else:
                self.bad_evals += 1
            self.last_metrics = metrics
        if not self.chief:
            self.committed = step
            self.checkpointing = None
            self.dist.barrier()
            return
        product = self.job.product
        product.save(step, self.job.sidecar(step, metrics))
        if improved and self.job.keeps_best:
            product.copy_best(step)
        if metrics is not None:
            loss = float(np.mean(self.losses_since_eval)) if self.losses_since_eval else None
            line = {"step": step, **metrics, "train_loss": loss, "best": improved,
                    "time": time.time()}
            append_line(self.out / METRICS, json.dumps(line))
        record = {
            "data": self.job.stream.state(step),
            "best": list(self.best) if self.best else None,
            "bad_evals": self.bad_evals,
            "last_metrics": self.last_metrics,
            "metric": self.job.metric,
        }
        train_state.save_state(self.out, step, self.model, record)
        train_state.commit(self.out, step, product=product.path(step).name, metrics=metrics)
        kept = train_state.prune(self.out, step)  # and the complete checkpoint before it
        product.prune(kept | {self.best[1] if self.best else None})
        self.committed = step
        self.checkpointing = None
        self.dist.barrier()

    def checkpoint_bytes(self) -> int:
        """About how many bytes one checkpoint adds: the product (twice when the best is
        copied), the resume state."""
        variables = [v for group in train_state.resume_variables(self.model).values()
                     for v in group]
        state = array_bytes(variables) + 256 * len(variables) + 16384  # + zip entries, record
        copies = 2 if self.job.keeps_best else 1
        return copies * self.job.product.nbytes() + state

    def _disk_full(self) -> DiskFull:
        kept = (f"the checkpoint of step {self.committed} is intact" if self.committed
                else "no checkpoint had been committed yet")
        what = (f"the checkpoint of step {self.checkpointing}" if self.checkpointing
                else f"the logs of step {self.step}")
        hint = getattr(self.job, "resume_hint", "--resume")
        return DiskFull.when_writing(
            train_state.checkpoint_dir(self.out), what, self.checkpoint_bytes(),
            f"{kept}: free some space, then continue with: {hint}" if self.committed
            else f"{kept}: free some space and start again")

    # -------------------------------------------------------------- loop
    def run(self) -> TrainResult:
        """Train to the end; a write that fails for lack of space becomes `DiskFull`."""
        try:
            return self._run()
        except OSError as err:
            if not is_full(err):
                raise
            raise self._disk_full() from None

    def _run(self) -> TrainResult:
        schedule = self.schedule
        model = self.model
        stopped = "completed"
        self.callbacks.on_train_begin()
        try:
            with graceful_interrupt() as interrupt:
                while self.step < schedule.steps:
                    x, y, weight = self.dist.shard_batch(*self.job.stream.batch(self.step))
                    self.callbacks.on_train_batch_begin(self.step + 1)
                    logs = model.train_on_batch(x, y, sample_weight=weight, return_dict=True)
                    loss = self.loss = float(logs["loss"])
                    self.step += 1
                    if not math.isfinite(loss):
                        raise TrainingDiverged(self._diverged_message(loss))
                    self.losses_since_eval.append(loss)
                    self.callbacks.on_train_batch_end(self.step, {"loss": loss})
                    if self.step % schedule.eval_every == 0 or self.step == schedule.steps:
                        self.callbacks.on_test_begin()
                        metrics = self.job.evaluate()
                        self.checkpoint(self.step, metrics)
                        self.losses_since_eval = []
                        self.callbacks.on_test_end({"step": self.step, **metrics})
                        if (schedule.early_stopping is not None
                                and self.bad_evals >= schedule.early_stopping):
                            stopped = "early_stopping"
                            self.echo(f"early stopping at step {self.step}: no better "
                                      f"{self.job.metric} in {self.bad_evals} evaluations")
                            break
                    if interrupt["stop"] or getattr(model, "stop_training", False):
                        if self.committed != self.step:
                            self.checkpoint(self.step, None)
                        stopped = "interrupted"
                        break
        finally:
            self.callbacks.on_train_end()
            if self.chief:
                self._draw_curve()
        return TrainResult(
            out=self.out,
            step=self.step,
            best_step=self.best[1] if self.best else None,
            best_score=self.best[0] if self.best else None,
            metric=self.job.metric,
            stopped=stopped,
            last_metrics=self.last_metrics,
            loss=self.loss,
            best_name=self.job.product.best_name,
        )

    def _draw_curve(self) -> None:
        try:
            cb.draw_curve(self.out, self.job.metric, title=getattr(self.job, "title", None))
        except Exception as err:  # noqa: BLE001 - a plot must never hide the run's outcome
            if is_full(err):
                return  # the run's error says that the disk is full
            warnings.warn(f"could not draw {self.out / 'curve.png'}: {err}", stacklevel=2)

    def _diverged_message(self, loss: float) -> str:
        kept = (f"the last good checkpoint is {self.job.product.path(self.committed)}"
                if self.committed is not None else "no checkpoint had been saved yet")
        return (f"the loss became {loss} at step {self.step}; training stopped and {kept} "
                "(try a lower --lr)")
