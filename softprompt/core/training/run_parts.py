"""The parts of a training run that hold no state: its model, its selecting metric, Ctrl-C.

`softprompt.core.training.loop.Run` calls them while it sets a run up and steps it.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from pathlib import Path

import keras

from softprompt.core.model.prompted_t5 import PromptedT5
from softprompt.core.training.config import TrainConfig


def dtype_policy() -> str:
    """The name of keras' global dtype policy (recorded in a run's config.json)."""
    return keras.config.dtype_policy().name


def _resolve_preset_path(preset: str) -> str:
    """A local preset directory as an absolute path, so sidecars find it from anywhere."""
    path = Path(preset).expanduser()
    if "://" not in preset and path.is_dir():
        return str(path.resolve())
    return preset


def build_model(config: TrainConfig, task):
    """The `PromptedT5` of a run: preset, prompt length, initializer, dropout."""
    init = config.init or ("class-labels" if task.labels else "sampled-vocab")
    model = PromptedT5.from_preset(
        _resolve_preset_path(config.preset),
        prompt_length=config.prompt_length,
        init=init,
        init_labels=task.labels if init == "class-labels" else None,
        init_text=config.init_text,
        init_file=config.init_file,
        seed=config.seed,
    )
    if config.dropout is not None:
        model.set_dropout(config.dropout, seed=config.seed)
    return model


def check_metric(task, examples, metric: str | None) -> str:
    """The selecting metric, checked against what the task reports on `examples`.

    Scores the gold targets as predictions (cheap), which also checks that
    the split has gold labels before any training happens.
    """
    golds = [task.format(ex)[1] for ex in examples]
    reported = task.evaluate(examples, golds)
    metric = metric or task.main_metric
    if metric not in reported:
        raise ValueError(
            f"task {task.name!r} reports no metric {metric!r} (it reports {', '.join(reported)})"
        )
    return metric


@contextlib.contextmanager
def graceful_interrupt():
    """The first Ctrl-C asks the loop to stop after the current step; a second one aborts."""
    flag = {"stop": False}
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum, frame):
        if flag["stop"]:
            raise KeyboardInterrupt
        flag["stop"] = True
        print("\nstopping after this step (Ctrl-C again to abort)", file=sys.stderr, flush=True)

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)
