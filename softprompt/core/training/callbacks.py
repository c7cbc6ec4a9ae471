"""Keras callbacks of the training loop: progress bar, ``train.csv``, TensorBoard, the curve.

The loop (`softprompt.core.training.train`) calls ``on_train_batch_end(step, logs)``
with the global step number (1-based: updates done so far) and
``logs = {"loss": ...}``, and ``on_test_end(logs)`` after every dev
evaluation with ``logs = {"step": ..., <metric>: ..., ...}``.

TensorBoard events are written with the `tensorboard` package's record writer
(no TensorFlow summary ops), so they cost the same on every backend. `tensorboard`
is a dependency of softprompt; where it is missing anyway, the run warns once and
writes every other output.

Example:
    >>> callbacks = keras.callbacks.CallbackList([ProgressBar(1000), CsvLog("out/train.csv")])
"""

from __future__ import annotations

import collections
import csv
import json
import math
import os
import socket
import sys
import time
import warnings
from pathlib import Path

import keras


class ProgressBar(keras.callbacks.Callback):
    """One status line: step, loss, steps/s, time left and the best dev score so far.

    On a terminal the line is redrawn in place; otherwise (a log file) a line
    is printed every `every_s` seconds and at each evaluation.
    """

    def __init__(self, total: int, start: int = 0, stream=None, every_s: float = 30.0,
                 metric: str | None = None, higher_is_better: bool = True):
        super().__init__()
        self.higher_is_better = bool(higher_is_better)
        self.total = int(total)
        self.start = int(start)
        self.stream = stream or sys.stderr
        self.every_s = float(every_s)
        self.metric = metric
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.best: tuple[float, int] | None = None
        self._t0 = time.perf_counter()
        self._recent: collections.deque = collections.deque(maxlen=50)
        self._last_print = 0.0
        self._rate = 0.0
        self._loss = float("nan")
        self._step = self.start

    def on_train_batch_end(self, batch, logs=None):
        now = time.perf_counter()
        self._step = int(batch)
        self._loss = float((logs or {}).get("loss", float("nan")))
        self._recent.append((now, self._step))
        if len(self._recent) > 1:  # over the last steps: compiling and evaluating fade out
            (t_first, s_first), (t_last, s_last) = self._recent[0], self._recent[-1]
            self._rate = (s_last - s_first) / max(t_last - t_first, 1e-9)
        else:
            self._rate = (self._step - self.start) / max(now - self._t0, 1e-9)
        if self.tty:
            if now - self._last_print >= 0.1 or self._step == self.total:
                self._write("\r" + self.line() + "\x1b[K")
                self._last_print = now
        elif now - self._last_print >= self.every_s:
            self._write(self.line() + "\n")
            self._last_print = now

    def on_test_end(self, logs=None):
        logs = logs or {}
        self._recent.clear()  # the evaluation's time is not training speed
        if self.metric in logs:
            value = float(logs[self.metric])
            if self.best is None or (value > self.best[0] if self.higher_is_better
                                     else value < self.best[0]):
                self.best = (value, int(logs.get("step", self._step)))
        text = ", ".join(f"{k} {v:.4g}" for k, v in logs.items()
                         if k != "step" and isinstance(v, (int, float)))
        prefix = "\r\x1b[K" if self.tty else ""
        self._write(f"{prefix}step {int(logs.get('step', self._step))}: {text}\n")

    def on_train_end(self, logs=None):
        if self.tty:
            self._write("\r" + self.line() + "\x1b[K\n")

    def line(self) -> str:
        left = (self.total - self._step) / self._rate if self._rate > 0 else float("nan")
        parts = [
            f"step {self._step}/{self.total}",
            f"loss {self._loss:.4f}",
            f"{self._rate:.2f} steps/s",
            f"eta {_duration(left)}",
        ]
        if self.best is not None:
            parts.append(f"best {self.metric} {self.best[0]:.4g} @{self.best[1]}")
        width = 24
        filled = int(width * self._step / max(self.total, 1))
        return f"[{'#' * filled}{'.' * (width - filled)}] " + "  ".join(parts)

    def _write(self, text):
        self.stream.write(text)
        self.stream.flush()


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class CsvLog(keras.callbacks.Callback):
    """``train.csv``: one row per step (step, loss, steps/s, seconds since the run started).

    `start` > 0 (a resumed run) keeps the rows up to that step and drops later ones.
    """

    COLUMNS = ("step", "loss", "steps_per_sec", "elapsed_s")

    def __init__(self, path, start: int = 0, flush_every: int = 50):
        super().__init__()
        self.path = Path(path)
        self.flush_every = int(flush_every)
        self._elapsed0 = truncate_csv(self.path, start) if start else 0.0
        if not start or not self.path.exists():
            with open(self.path, "w", newline="") as f:
                csv.writer(f).writerow(self.COLUMNS)
        self._file = None
        self._t0 = time.perf_counter()
        self._last = (self._t0, start)

    def on_train_begin(self, logs=None):
        self._file = open(self.path, "a", newline="")
        self._writer = csv.writer(self._file)

    def on_train_batch_end(self, batch, logs=None):
        now = time.perf_counter()
        t_last, s_last = self._last
        rate = (batch - s_last) / max(now - t_last, 1e-9)
        self._last = (now, batch)
        loss = float((logs or {}).get("loss", float("nan")))
        self._writer.writerow([int(batch), f"{loss:.6g}", f"{rate:.4g}",
                               f"{self._elapsed0 + now - self._t0:.3f}"])
        if batch % self.flush_every == 0:
            self._file.flush()

    def on_train_end(self, logs=None):
        if self._file is not None:
            self._file.close()
            self._file = None


def truncate_csv(path: Path, step: int) -> float:
    """Keep the rows of `path` up to `step`; return the last kept row's elapsed seconds."""
    if not path.is_file():
        return 0.0
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    kept = [rows[0]] if rows else [list(CsvLog.COLUMNS)]
    elapsed = 0.0
    for row in rows[1:]:
        try:
            if int(row[0]) <= step:
                kept.append(row)
                elapsed = float(row[3])
        except (ValueError, IndexError):
            continue
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as f:
        csv.writer(f).writerows(kept)
    os.replace(tmp, path)
    return elapsed


class EventLog(keras.callbacks.Callback):
    """TensorBoard scalars in ``OUT/tensorboard``: ``train/loss`` per step, ``dev/<metric>``.

    A resumed run starts a new event file that begins with a "restart at step
    N" marker, so TensorBoard drops the old file's points after N.
    """

    def __init__(self, logdir, start: int = 0):
        super().__init__()
        self.logdir = Path(logdir)
        self.start = int(start)
        self._writer = None
        try:
            from tensorboard.compat.proto import event_pb2, summary_pb2
            from tensorboard.summary.writer.record_writer import RecordWriter
        except ImportError:
            warnings.warn("tensorboard is not installed: no TensorBoard events are written "
                          "(pip install tensorboard); every other output is", stacklevel=2)
            return
        self._event_pb2, self._summary_pb2 = event_pb2, summary_pb2
        self.logdir.mkdir(parents=True, exist_ok=True)
        name = f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}.{os.getpid()}"
        self._writer = RecordWriter(open(self.logdir / name, "wb"))
        self._event(file_version="brain.Event:2")
        if self.start:
            self._event(step=self.start,
                        session_log=event_pb2.SessionLog(status=event_pb2.SessionLog.START))

    def _event(self, **fields):
        event = self._event_pb2.Event(wall_time=time.time(), **fields)
        self._writer.write(event.SerializeToString())

    def scalars(self, step: int, values: dict) -> None:
        if self._writer is None:
            return
        value = self._summary_pb2.Summary.Value
        summary = self._summary_pb2.Summary(
            value=[value(tag=k, simple_value=float(v)) for k, v in values.items()]
        )
        self._event(step=int(step), summary=summary)

    def on_train_batch_end(self, batch, logs=None):
        if logs and "loss" in logs:
            self.scalars(batch, {"train/loss": logs["loss"]})

    def on_test_end(self, logs=None):
        logs = dict(logs or {})
        step = logs.pop("step", None)
        if step is None:
            return
        values = {f"dev/{k}": v for k, v in logs.items() if isinstance(v, (int, float))}
        self.scalars(step, values)
        if self._writer is not None:
            self._writer.flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def draw_curve(out, metric: str, path=None, title: str | None = None) -> Path | None:
    """Draw ``curve.png``: train loss and the dev `metric` against the step.

    Reads ``train.csv`` and ``metrics.jsonl`` in `out`; uses matplotlib's Agg
    canvas directly (no pyplot, no global backend change). Returns the path,
    or `None` when matplotlib is not installed.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        warnings.warn("matplotlib is not installed: no curve.png", stacklevel=2)
        return None
    out = Path(out)
    path = Path(path) if path else out / "curve.png"
    steps, losses = [], []
    if (out / "train.csv").is_file():
        with open(out / "train.csv", newline="") as f:
            for row in csv.DictReader(f):
                try:
                    steps.append(int(row["step"]))
                    losses.append(float(row["loss"]))
                except (KeyError, ValueError, TypeError):
                    continue
    evals = []
    if (out / "metrics.jsonl").is_file():
        for line in (out / "metrics.jsonl").read_text().splitlines():
            if line.strip():
                record = json.loads(line)
                if metric in record:
                    evals.append((record["step"], record[metric]))
    fig = Figure(figsize=(7, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    if steps:
        ax.plot(steps, losses, color="tab:blue", linewidth=0.8, alpha=0.5, label="train loss")
        smooth = _moving_average(losses, max(1, len(losses) // 50))
        ax.plot(steps, smooth, color="tab:blue", linewidth=1.5)
    ax.set_xlabel("step")
    ax.set_ylabel("train loss", color="tab:blue")
    if evals:
        ax2 = ax.twinx()
        ax2.plot([s for s, _ in evals], [v for _, v in evals], "o-", color="tab:orange")
        ax2.set_ylabel(f"dev {metric}", color="tab:orange")
    ax.set_title(title or "prompt tuning")
    fig.tight_layout()
    tmp = path.with_name("." + path.name + ".tmp.png")
    fig.savefig(tmp)
    os.replace(tmp, path)
    return path


def _moving_average(values, window: int):
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out
