"""The body of a training run (`Run`): set-up, the step loop, evaluations and checkpoints.

`softprompt.core.training.train.train` creates a `Run` inside the distribution's scope
and calls `Run.run`; see that module for what a run does and writes.
"""

from __future__ import annotations

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

from softprompt import backends, tasks
from softprompt.core.inference.evaluate import evaluate, target_length
from softprompt.core.io.atomic import append_line, atomic_write
from softprompt.core.io.disk_space import DiskFull, is_full
from softprompt.core.io.prompt_files import load_prompt, save_prompt
from softprompt.core.text import batching
from softprompt.core.training import callbacks as cb
from softprompt.core.training import state as train_state
from softprompt.core.training.adafactor import Adafactor
from softprompt.core.training.config import TrainConfig, TrainingDiverged, TrainResult
from softprompt.core.training.run_dir import (
    CONFIG,
    METRICS,
    create_out,
    truncate_jsonl,
    versions,
)
from softprompt.core.training.run_parts import (
    build_model,
    check_metric,
    dtype_policy,
    graceful_interrupt,
)

# ---------------------------------------------------------------------- the run


class Run:
    """The state of one training run: model, data, logs and the checkpoint schedule."""

    def __init__(self, config: TrainConfig, resume: bool, callbacks: Sequence, progress,
                 echo, dist, start: int | None = None):
        self.config = config
        self.echo = echo
        self.out = Path(config.out)
        self.adapter = backends.current()
        self.dist = dist
        self.chief = bool(dist.is_writer)
        self.step = 0
        self.best: tuple[float, int] | None = None
        self.bad_evals = 0
        self.last_metrics = None
        self.losses_since_eval: list[float] = []
        self.committed: int | None = None
        self.start = start  # the checked step to resume from (default: the committed one)
        self.checkpointing: int | None = None  # the step whose checkpoint is being written

        train_examples = self._read_task()
        self._prepare_out()
        self._build_model()
        self._make_stream(train_examples)
        if resume:
            self._restore()
        self._write_config(resume)
        self.callbacks = self._callbacks(callbacks, progress)

    # -------------------------------------------------------------- set-up
    def _read_task(self) -> list:
        """Read the task's splits and check the selecting metric; returns the training examples."""
        config = self.config
        self.task = tasks.get(config.task, **config.task_args)
        train_examples = self.task.train_examples(self.task.read(config.data, "train"))
        if not train_examples:
            where = config.data or self.task.hub.label
            raise ValueError(f"task {config.task!r} has no training examples in {where}")
        self.dev = self.task.read(config.data, config.eval_split)
        self.metric = check_metric(self.task, self.dev, config.metric)
        return train_examples

    def _prepare_out(self) -> None:
        """Create the run directory (the writer only, after every process checked it)."""
        self.dist.barrier()
        if self.chief:
            create_out(self.out)
        self.dist.barrier()

    def _build_model(self) -> None:
        """Seed, build the model inside the distribution and compile it with Adafactor."""
        self.adapter.seed(self.config.seed)
        self.model = self.dist.prepare(build_model(self.config, self.task))
        self.model.compile(optimizer=Adafactor(learning_rate=self.config.lr))
        self.model.optimizer.build(self.model.trainable_variables)

    def _make_stream(self, train_examples) -> None:
        """Tokenize the training pairs once and make the seeded batch stream."""
        config = self.config
        tokenizer = self.model.tokenizer
        pairs = [self.task.format(ex) for ex in train_examples]
        self.max_target_length = config.max_target_length or target_length(
            tokenizer, self.task, train_examples
        )
        encoded = batching.encode_pairs(tokenizer, pairs, config.max_input_length,
                                        self.max_target_length)
        if encoded.cut_inputs:
            self.echo(f"note: {encoded.cut_inputs} of {len(encoded)} training inputs were cut "
                      f"to {config.max_input_length} tokens")
        if encoded.cut_targets:
            self.echo(f"note: {encoded.cut_targets} training targets were cut to "
                      f"{self.max_target_length} tokens")
        self.stream = batching.TrainBatches(
            encoded, config.batch_size, config.seed, self.max_target_length,
            batching.bucket_lengths(config.max_input_length),
        )

    def _restore(self):
        step = self.start if self.start is not None else int(train_state.latest(self.out)["step"])
        self.model.load_prompt(str(train_state.prompt_path(self.out, step)))
        state = train_state.restore_state(self.out, step, self.model)
        expected = self.stream.state(step)["fingerprint"]
        if state["data"]["fingerprint"] != expected:
            raise ValueError(
                "the training data or its batching differ from the stopped run "
                f"(fingerprint {state['data']['fingerprint']} vs {expected}): resume needs the "
                "same data, batch size, seed and length limits"
            )
        iterations = int(ops.convert_to_numpy(self.model.optimizer.iterations))
        if iterations != step:
            raise ValueError(f"checkpoint of step {step} holds optimizer step {iterations}")
        self.step = step
        self.committed = step
        if state.get("best") is not None:
            self.best = (float(state["best"][0]), int(state["best"][1]))
        self.bad_evals = int(state.get("bad_evals", 0))
        self.last_metrics = state.get("last_metrics")
        if self.chief:
            truncate_jsonl(self.out / METRICS, step)
            if self.best is not None:  # best.npy may be newer than the commit: re-copy it
                self._copy_best(self.best[1])
        self.echo(f"resuming {self.out} at step {step}")

    def _write_config(self, resume: bool):
        if not self.chief:
            return
        path = self.out / CONFIG
        if resume:
            record = json.loads(path.read_text())
            record["options"]["steps"] = self.config.steps
            record.setdefault("resumed", []).append(
                {"at_step": self.step, "steps": self.config.steps, "time": time.time(),
                 "versions": versions(), "command": sys.argv}
            )
        else:
            record = {
                "options": self.config.to_dict(),
                "resolved": {
                    "preset": self.model.preset,
                    "init": self.model.init,
                    "metric": self.metric,
                    "max_target_length": self.max_target_length,
                    "eval_batch_size": self.eval_batch_size,
                    "labels": self.task.labels,
                    "train_batches_per_epoch": self.stream.batches_per_epoch,
                    "batch_shapes": self.stream.shapes(),
                },
                "versions": versions(),
                "backend": backends.name(),
                "dtype_policy": dtype_policy(),
                "distribution": repr(self.dist),
                "devices": [d.name for d in self.adapter.devices()],
                "command": sys.argv,
                "started": time.time(),
            }
        with atomic_write(path, "w") as f:
            json.dump(record, f, indent=2, default=str)

    def _callbacks(self, extra, progress):
        items = []
        if progress and self.chief:
            stream = progress if hasattr(progress, "write") else None
            items.append(cb.ProgressBar(self.config.steps, self.step, stream, metric=self.metric))
        if self.chief:
            items.append(cb.CsvLog(self.out / "train.csv", self.step))
            items.append(cb.EventLog(self.out / "tensorboard", self.step))
        items.extend(extra)
        return keras.callbacks.CallbackList(items, model=self.model)

    @property
    def eval_batch_size(self) -> int:
        return self.config.eval_batch_size or self.config.batch_size

    # -------------------------------------------------------------- checkpoints
    def sidecar(self, step: int, metrics: dict | None) -> dict:
        return {
            "task": self.task.name,
            "task_args": self.config.task_args,
            "labels": self.task.labels,
            "step": step,
            "metrics": metrics,
            "metric": self.metric,
            "eval_split": self.config.eval_split,
            "eval_method": self.config.eval_method,
            "eval_batch_size": self.eval_batch_size,
            "max_input_length": self.config.max_input_length,
            "max_target_length": self.max_target_length,
            "seed": self.config.seed,
        }

    def evaluate(self) -> dict:
        metrics, _ = evaluate(
            self.model, self.task, self.dev, self.config.eval_method,
            batch_size=self.eval_batch_size, max_input_length=self.config.max_input_length,
            max_target_length=self.max_target_length,
        )
        return {k: float(v) for k, v in metrics.items()}

    def checkpoint(self, step: int, metrics: dict | None) -> None:
        """Save the prompt, update best/metrics.jsonl, save the resume state, then commit."""
        self.checkpointing = step
        improved = False
        if metrics is not None:
            score = metrics[self.metric]
            improved = self.best is None or score > self.best[0]
            if improved:
                self.best = (score, step)
                self.bad_evals = 0
            else:
                self.bad_evals += 1
            self.last_metrics = metrics
        if not self.chief:
            self.committed = step
            self.dist.barrier()
            return
        self.model.save_prompt(train_state.prompt_path(self.out, step),
                               **self.sidecar(step, metrics))
        if improved:
            self._copy_best(step)
        if metrics is not None:
            loss = float(np.mean(self.losses_since_eval)) if self.losses_since_eval else None
            line = {"step": step, **metrics, "train_loss": loss, "best": improved,
                    "time": time.time()}
            append_line(self.out / METRICS, json.dumps(line))
        record = {
            "data": self.stream.state(step),
            "best": list(self.best) if self.best else None,
            "bad_evals": self.bad_evals,
            "last_metrics": self.last_metrics,
            "metric": self.metric,
        }
        train_state.save_state(self.out, step, self.model, record)
        train_state.commit(self.out, step, metrics=metrics)
        train_state.prune(self.out, step)
        self.committed = step
        self.checkpointing = None
        self.dist.barrier()

    def _copy_best(self, step: int) -> None:
        array, meta = load_prompt(train_state.prompt_path(self.out, step))
        save_prompt(self.out / "best.npy", array, **{k: v for k, v in meta.items()
                                                     if k not in ("shape",)})

    def checkpoint_bytes(self) -> int:
        """About how many bytes one checkpoint adds: the step prompt, best.npy, the state."""
        def nbytes(v):
            return int(np.prod(v.shape)) * np.dtype(v.dtype).itemsize

        prompt = nbytes(self.model.prompt.embeddings) + 4096  # + header and sidecar
        variables = [v for group in train_state.resume_variables(self.model).values()
                     for v in group]
        state = sum(nbytes(v) + 256 for v in variables) + 16384  # + zip entries and record
        return 2 * prompt + state

    def _disk_full(self) -> DiskFull:
        kept = (f"the checkpoint of step {self.committed} is intact" if self.committed
                else "no checkpoint had been committed yet")
        what = (f"the checkpoint of step {self.checkpointing}" if self.checkpointing
                else f"the logs of step {self.step}")
        return DiskFull.when_writing(
            train_state.checkpoint_dir(self.out), what,
            self.checkpoint_bytes(),
            f"{kept}: free some space, then continue with: softprompt train --out {self.out} "
            "--resume" if self.committed else f"{kept}: free some space and start again")

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
        config = self.config
        model = self.model
        stopped = "completed"
        self.callbacks.on_train_begin()
        try:
            with graceful_interrupt() as interrupt:
                while self.step < config.steps:
                    x, y, weight = self.dist.shard_batch(*self.stream.batch(self.step))
                    self.callbacks.on_train_batch_begin(self.step + 1)
                    logs = model.train_on_batch(x, y, sample_weight=weight, return_dict=True)
                    loss = float(logs["loss"])
                    self.step += 1
                    if not math.isfinite(loss):
                        raise TrainingDiverged(self._diverged_message(loss))
                    self.losses_since_eval.append(loss)
                    self.callbacks.on_train_batch_end(self.step, {"loss": loss})
                    if self.step % config.eval_every == 0 or self.step == config.steps:
                        self.callbacks.on_test_begin()
                        metrics = self.evaluate()
                        self.checkpoint(self.step, metrics)
                        self.losses_since_eval = []
                        self.callbacks.on_test_end({"step": self.step, **metrics})
                        if (config.early_stopping is not None
                                and self.bad_evals >= config.early_stopping):
                            stopped = "early_stopping"
                            self.echo(f"early stopping at step {self.step}: no better "
                                      f"{self.metric} in {self.bad_evals} evaluations")
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
            metric=self.metric,
            stopped=stopped,
            last_metrics=self.last_metrics,
        )

    def _draw_curve(self) -> None:
        try:
            cb.draw_curve(self.out, self.metric)
        except Exception as err:  # noqa: BLE001 - a plot must never hide the run's outcome
            if is_full(err):
                return  # the run's error says that the disk is full
            warnings.warn(f"could not draw {self.out / 'curve.png'}: {err}", stacklevel=2)

    def _diverged_message(self, loss: float) -> str:
        kept = (
            f"the last good checkpoint is {train_state.prompt_path(self.out, self.committed)}"
            if self.committed is not None else "no checkpoint had been saved yet"
        )
        return (f"the loss became {loss} at step {self.step}; training stopped and {kept} "
                "(try a lower --lr)")


