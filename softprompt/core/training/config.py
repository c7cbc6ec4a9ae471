"""What a training run is given and what it ends with: `TrainConfig`, `TrainResult`.

The options, their defaults (the paper's) and their choices are defined here
once; the CLI (``softprompt train``) builds its options from these fields.
Importing this module is cheap (no keras), so the CLI can read it at start-up.

Example:
    >>> config = TrainConfig(out="runs/rte", task="rte", data="path/to/RTE",
    ...                      preset="./my-t5-base-lm-adapt").validate()
    >>> config.steps, config.learning_rate
    (30000, 0.3)
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

from softprompt import tasks
from softprompt.backends.base import KINDS as DISTRIBUTIONS
from softprompt.core.inference.methods import METHODS
from softprompt.core.model.init import INITS
from softprompt.core.training.methods import NAMES as TRAINING_METHODS
from softprompt.core.training.methods import get as get_method

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
        data: the task's data (anything `Task.read` accepts: files, a folder, a saved
            dataset, ``hf://datasets/NAME[:CONFIG]``); ``None``: softprompt's own tasks
            (``animal_food``, ``color_food``) read the files they ship with, the others
            their hub dataset.
        preset: the frozen model (anything `PromptedT5.from_preset` accepts); with
            model tuning, the model to tune.
        method: one of `TRAINING_METHODS`: ``prompt-tuning`` (the prompt trains,
            the model is frozen) or ``model-tuning`` (every weight trains, no
            prompt); see `softprompt.core.training.methods`.
        task_args: keyword arguments of the task (``template``, ``target_field``,
            ``labels`` for ``jsonl``).
        prompt_length: P (paper: 100); prompt tuning only.
        init: prompt initializer, one of `INITS`; default ``class-labels`` when
            the task has labels, else ``sampled-vocab``.
        init_text, init_file: for ``init="text"`` / ``"file"``.
        steps: training steps (paper: 30,000).
        batch_size: examples per step (paper: 32).
        lr: Adafactor's constant learning rate (default: the method's, 0.3 for
            prompt tuning as in the paper, 1e-3 for model tuning as in T5X).
        max_input_length: encoder tokens kept per input (paper: 512).
        max_target_length: target tokens; default: the longest target of the
            task's training data and labels.
        eval_every: steps between dev evaluations and checkpoints.
        eval_split: the split that selects the best checkpoint.
        eval_method: one of `METHODS`: ``decode`` (greedy decoding) or ``rank``.
        metric: the selecting metric (default: the task's main metric).
        early_stopping: stop after this many evaluations without improvement
            (`None`: never).
        dropout: the backbone's dropout rate while training (`None`: the
            preset's own, 0.1 for T5 checkpoints as in the official runs).
        seed: seeds the prompt initializer, dropout and the data order.
        eval_batch_size: inputs per evaluation batch (default: `batch_size`).
        distribution: one of `DISTRIBUTIONS`: ``auto``, ``none``, ``data`` or
            ``model`` (the adapter's `distribute`); resume is exact on the same devices.
        mesh: ``"DATAxMODEL"`` for ``distribution="model"``.
        devices: use the first N devices (default: all).
    """

    out: str
    task: str | None = None
    data: str | None = None
    preset: str | None = None
    task_args: dict = dataclasses.field(default_factory=dict)
    method: str = "prompt-tuning"
    prompt_length: int = 100
    init: str | None = None
    init_text: str | None = None
    init_file: str | None = None
    steps: int = 30000
    batch_size: int = 32
    lr: float | None = None
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
        if self.method not in TRAINING_METHODS:
            raise ValueError(f"unknown method {self.method!r}: expected one of "
                             f"{', '.join(TRAINING_METHODS)}")
        if self.lr is not None and not (isinstance(self.lr, (int, float)) and self.lr > 0
                                        and math.isfinite(self.lr)):
            raise ValueError(f"lr must be a positive number, got {self.lr!r}")
        if self.dropout is not None and not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        for name, choices in (("eval_method", METHODS), ("distribution", DISTRIBUTIONS)):
            if getattr(self, name) not in choices:
                raise ValueError(f"{name} must be one of {', '.join(choices)}, "
                                 f"got {getattr(self, name)!r}")
        if self.init is not None and self.init not in INITS:
            raise ValueError(f"init must be one of {', '.join(INITS)}, got {self.init!r}")
        if not self.task:
            raise ValueError("no task given: name one (e.g. boolq, or jsonl for your own data)")
        if not self.data:  # softprompt's own tasks know where their data lies, others their hub
            task = tasks.get(self.task, **self.task_args)
            builtin = getattr(task, "data", None)
            if builtin is not None:
                self.data = str(builtin)
            elif task.hub is None:
                raise ValueError(f"no data given for task {self.task!r} (it has no hub dataset)")
        if not self.preset:
            raise ValueError("no preset given: name the frozen T5 model to prompt")
        return self

    @property
    def learning_rate(self) -> float:
        """The learning rate: `lr`, or the method's default."""
        return float(self.lr if self.lr is not None else get_method(self.method).lr)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown training option(s): {', '.join(unknown)}")
        return cls(**values)

    @classmethod
    def defaults(cls) -> dict:
        """Every option's default by name (``task_args`` and ``out`` excluded).

        Example:
            >>> TrainConfig.defaults()["method"]
            'prompt-tuning'
        """
        return {f.name: f.default for f in dataclasses.fields(cls)
                if f.default is not dataclasses.MISSING}


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
        loss: the last step's training loss.
        best_name: the best checkpoint's product in `out`.
    """

    out: Path
    step: int
    best_step: int | None
    best_score: float | None
    metric: str
    stopped: str
    last_metrics: dict | None = None
    loss: float | None = None
    best_name: str = "best.npy"

    @property
    def best_path(self) -> Path:
        """The best checkpoint's product: ``best.npy`` (a prompt) or ``best/`` (a preset)."""
        return self.out / self.best_name
