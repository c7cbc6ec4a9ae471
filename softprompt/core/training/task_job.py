"""A task's training job for the loop: prompt tuning or model tuning of a `PromptedT5`.

`TaskJob` sets up what `softprompt.core.training.loop.Run` trains, in named
steps: read the task (`_read_task`), build the model with the method's
trainable part and optimizer (`_build_model`), tokenize the training pairs
once into the seeded batch stream (`_make_stream`). The two methods
(`softprompt.core.training.methods`) differ only there:

- prompt tuning: `PromptedT5` over the frozen preset, its prompt initialised
  (class labels when the task has labels), the paper's Adafactor; the product
  is prompt files (``best.npy``);
- model tuning: the same class with no prompt (`PromptedT5.without_prompt`)
  and every backbone weight trainable, Adafactor as T5X fine-tunes; the
  product is keras-hub presets (``best/``).

Data, batching, evaluation (greedy decoding or rank classification on the
dev split), best-on-dev, checkpoints, exact resume, distribution and logs are
the same code for both.

Example:
    >>> job = TaskJob(TrainConfig(out="runs/mt", method="model-tuning", ...), dist, print)
    >>> job.product.best_name
    'best'
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from softprompt import backends, tasks
from softprompt.core.inference.evaluate import evaluate, target_length
from softprompt.core.model.prompted_t5 import PromptedT5
from softprompt.core.text import batching
from softprompt.core.training.adafactor import Adafactor
from softprompt.core.training.config import TrainConfig
from softprompt.core.training.methods import get as get_method
from softprompt.core.training.products import PresetFiles, PromptFiles


def _resolve_preset_path(preset: str) -> str:
    """A local preset directory as an absolute path, so sidecars find it from anywhere."""
    path = Path(preset).expanduser()
    if "://" not in preset and path.is_dir():
        return str(path.resolve())
    return preset


def whole_model(backbone, tokenizer):
    """A `PromptedT5` with no prompt whose every backbone weight trains (model tuning, LM
    adaptation): the same network prompt tuning runs, minus the prompt.

    Example:
        >>> model = whole_model(keras_hub.models.T5Backbone.from_preset(p), tokenizer)
        >>> len(model.trainable_variables) == len(model.backbone.weights)
        True
    """
    model = PromptedT5(backbone, prompt_length=1, init="zeros", tokenizer=tokenizer,
                       prompt_lengths=[0])
    model.backbone.trainable = True
    model.prompt.trainable = False
    return model


def build_model(config: TrainConfig, task):
    """The `PromptedT5` of a run: what the method trains is trainable, the rest frozen.

    Prompt tuning: the preset with a prompt of ``prompt_length`` vectors
    (initialised with ``init``), the backbone frozen. Model tuning: the
    preset with no prompt, every backbone weight trainable.
    """
    method = get_method(config.method)
    preset = _resolve_preset_path(config.preset)
    if method.trains == "backbone":
        loaded = PromptedT5.from_preset(preset, prompt_length=1, init="zeros")
        model = whole_model(loaded.backbone, loaded.tokenizer)
        model.preset = loaded.preset
    else:
        init = config.init or ("class-labels" if task.labels else "sampled-vocab")
        model = PromptedT5.from_preset(
            preset, prompt_length=config.prompt_length, init=init,
            init_labels=task.labels if init == "class-labels" else None,
            init_text=config.init_text, init_file=config.init_file, seed=config.seed)
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


def product_type(config: TrainConfig) -> type:
    """What a checkpoint of `config`'s method writes: `PromptFiles` or `PresetFiles`
    (its class, so a resume checks the files before anything is built)."""
    return PresetFiles if get_method(config.method).product == "preset" else PromptFiles


def parameter_count(variables) -> int:
    return int(sum(int(np.prod(v.shape)) for v in variables))


class TaskJob:
    """Prompt tuning or model tuning on a task (see the module's docs).

    Args:
        config: the run's `TrainConfig` (validated).
        dist: the backend's `Distribution`; the model is built inside its scope.
        echo: a function for one-line notes.
    """

    higher_is_better = True
    keeps_best = True

    def __init__(self, config: TrainConfig, dist, echo):
        self.config = config
        self.method = get_method(config.method)
        self.dist = dist
        self.echo = echo
        self.out = Path(config.out)
        self.title = self.method.name.replace("-", " ")
        train_examples = self._read_task()
        self._build_model()
        self._make_stream(train_examples)
        if product_type(config) is PresetFiles:
            self.product = PresetFiles(self.out, self.model.backbone, self.model.tokenizer)
        else:
            self.product = PromptFiles(self.out, self.model)
        self.resume_hint = f"softprompt train --out {self.out} --resume"

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

    def _build_model(self) -> None:
        """Seed, build the model inside the distribution and compile it with Adafactor."""
        adapter = backends.current()
        adapter.seed(self.config.seed)
        self.model = self.dist.prepare(build_model(self.config, self.task))
        self.model.compile(optimizer=Adafactor(learning_rate=self.config.learning_rate,
                                               **self.method.adafactor))
        self.model.optimizer.build(self.model.trainable_variables)
        if self.method.trains == "backbone":
            adapter.prepare_full_training(self.model)

    def _make_stream(self, train_examples) -> None:
        """Tokenize the training pairs once and make the seeded batch stream."""
        config = self.config
        tokenizer = self.model.tokenizer
        pairs = [self.task.format(ex) for ex in train_examples]
        self.max_target_length = config.max_target_length or target_length(
            tokenizer, self.task, train_examples)
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
            batching.bucket_lengths(config.max_input_length))

    @property
    def eval_batch_size(self) -> int:
        return self.config.eval_batch_size or self.config.batch_size

    # -------------------------------------------------------------- what the loop asks
    def evaluate(self) -> dict:
        metrics, _ = evaluate(
            self.model, self.task, self.dev, self.config.eval_method,
            batch_size=self.eval_batch_size, max_input_length=self.config.max_input_length,
            max_target_length=self.max_target_length)
        return {k: float(v) for k, v in metrics.items()}

    def sidecar(self, step: int, metrics: dict | None) -> dict:
        """What a checkpoint records: the task, its dev metrics and how they were measured."""
        record = {
            "method": self.method.name,
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
        if self.method.product == "preset":
            record["tuned_from"] = self.model.preset
        return record

    def config_record(self) -> dict:
        return {
            "options": self.config.to_dict(),
            "resolved": {
                "preset": self.model.preset,
                "method": self.method.name,
                "learning_rate": self.config.learning_rate,
                "init": self.model.init if self.method.trains == "prompt" else None,
                "metric": self.metric,
                "max_target_length": self.max_target_length,
                "eval_batch_size": self.eval_batch_size,
                "labels": self.task.labels,
                "train_batches_per_epoch": self.stream.batches_per_epoch,
                "batch_shapes": self.stream.shapes(),
                "parameters": {
                    "backbone": parameter_count(self.model.backbone.weights),
                    "trained": parameter_count(self.model.trainable_variables),
                },
            },
        }
