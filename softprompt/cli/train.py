"""``softprompt train``: prompt tuning or model tuning, with checkpoints, best-on-dev, logs and
exact resume.

Every training option is a `TrainConfig` field of the same name: its default
and its choices come from the library (`softprompt.core.training.config`);
this module adds only the help texts.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from softprompt import backends
from softprompt.cli.common import (
    EXIT_RUNTIME,
    backend_option,
    dtype_option,
    one_of,
    task_args,
    task_options,
    train_option,
    user_errors,
)
from softprompt.core.training.config import (
    DISTRIBUTIONS,
    INITS,
    METHODS,
    TRAINING_METHODS,
    TrainConfig,
    TrainingDiverged,
)
from softprompt.core.training.run_dir import check_out, read_run_config

#: The options that are `TrainConfig` fields (the same names).
_FIELDS = tuple(name for name in TrainConfig.defaults() if name != "task_args")
_TASK_ARGS = ("template", "target_field", "labels")
#: Where runs go when --out is not given.
DEFAULT_OUT = "runs/softprompt"


@click.command("train")
@backend_option
@train_option("preset", help="The frozen T5: a keras-hub preset name, kaggle:// or hf:// "
                              "handle, a local preset directory, or a Hugging Face T5 "
                              "(hf://ORG/NAME or a transformers folder; converted once into "
                              "softprompt's cache).")
@task_options
@train_option("data", help="The task's data: its files or folder, a saved `datasets` folder, "
                           "Parquet/CSV/JSONL, or hf://datasets/NAME[:CONFIG] (default: the "
                           "files softprompt's own tasks ship with, else the task's hub "
                           "dataset, see `softprompt tasks`).")
@train_option("method", callback=one_of(TRAINING_METHODS),
              metavar="[" + "|".join(TRAINING_METHODS) + "]",
               help="What trains: the prompt (the model frozen) or every weight of the model "
                    "(no prompt; the product is a keras-hub preset, OUT/best).")
@train_option("prompt_length", type=int, help="Prompt length P (prompt tuning).")
@train_option("init", type=click.Choice(INITS),
               help="Prompt initialization (default: class-labels when the task has labels, "
                    "else sampled-vocab).")
@train_option("init_text", help="Text for --init text.")
@train_option("init_file", help="Prompt file for --init file.")
@train_option("steps", type=int, help="Training steps.")
@train_option("batch_size", type=int)
@train_option("lr", type=float,
               help="Adafactor's constant learning rate (default: 0.3 for prompt tuning, as in "
                    "the paper; 1e-3 for model tuning, as T5X fine-tunes).")
@train_option("max_input_length", type=int)
@train_option("max_target_length", type=int,
               help="Default: the longest target of the training data.")
@train_option("eval_every", type=int, help="Steps between dev evaluations and checkpoints.")
@train_option("eval_split")
@train_option("eval_method", type=click.Choice(METHODS))
@train_option("eval_batch_size", type=int,
               help="Inputs per evaluation batch (default: --batch-size).")
@train_option("metric",
               help="The metric that selects best.npy (default: the task's main metric).")
@train_option("early_stopping", type=int,
               help="Stop after this many evaluations without a better dev score.")
@train_option("dropout", type=float,
               help="Backbone dropout while training (default: the preset's; the official "
                    "runs used 0.1).")
@train_option("seed", type=int)
@train_option("distribution", type=click.Choice(DISTRIBUTIONS),
               help="Spread training over devices: data parallel, or model parallel (JAX).")
@train_option("mesh", help="DATAxMODEL device mesh for --distribution model.")
@train_option("devices", type=int, help="Use the first N devices.")
@dtype_option(apply=False)
@click.option("--out", default=DEFAULT_OUT, show_default=True, help="The run directory.")
@click.option("--resume", is_flag=True,
              help="Continue the run in --out from its last checkpoint.")
@click.option("--resume-from-last-good", "from_last_good", is_flag=True,
              help="--resume, from the newest complete checkpoint when a file of the last one "
                   "is unreadable.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@user_errors
def train(**options):
    """Train a soft prompt for a frozen T5 on a task, or tune the whole model.

    Every --eval-every steps the prompt is evaluated on the dev split and
    saved as OUT/checkpoints/step-N.npy; OUT/best.npy is the best so far.
    With --method model-tuning every weight trains instead and each checkpoint
    is a keras-hub preset (OUT/checkpoints/step-N/, the best in OUT/best/).
    Logs: OUT/metrics.jsonl, OUT/train.csv, OUT/tensorboard, OUT/curve.png,
    OUT/config.json. --resume continues exactly where a stopped run left off
    (Ctrl-C stops after the current step with a checkpoint). One process at a
    time trains into an --out. Without --task and --data, the built-in demo runs.

    \b
    Example:
        softprompt train                      # the built-in demo, offline
        softprompt train --preset ./my-t5-base-lm-adapt --task boolq --data path/to/BoolQ \\
            --out runs/boolq
        softprompt train --task jsonl --template 'review: {text}' --target-field label \\
            --labels negative,positive --data path/to/reviews/ --steps 2000 --eval-every 200
        softprompt train --out runs/boolq --resume
        softprompt train --preset hf://google/t5-base-lm-adapt --task boolq
        softprompt train --method model-tuning --preset ./my-t5-base-lm-adapt --task boolq \\
            --data path/to/BoolQ --out runs/boolq-mt
    """
    ctx = click.get_current_context()
    explicit = {name for name in options
                if ctx.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT}
    from_last_good = options.pop("from_last_good")
    resume = options.pop("resume") or from_last_good
    quiet = options.pop("quiet")
    dtype = options.pop("dtype")
    demo = None
    if resume:
        values = read_run_config(options["out"])
        values.update({name: options[name] for name in explicit & set(_FIELDS)})
        if explicit & set(_TASK_ARGS):
            values["task_args"] = task_args(*(options[k] for k in _TASK_ARGS))
    else:
        if not options["task"] and not options["data"]:
            demo = _demo()
            options = demo.configure(dict(options), set(explicit))
        elif not options["task"]:
            raise ValueError("--data needs --task (e.g. --task jsonl --template '...')")
        elif not options["data"]:
            _check_hub_source(options["task"], task_args(*(options[k] for k in _TASK_ARGS)))
        values = {name: options[name] for name in _FIELDS}
        values["task_args"] = options.get("task_args") or task_args(
            *(options[k] for k in _TASK_ARGS))
    values["out"] = options["out"]
    config = TrainConfig.from_dict(_absolute(values)).validate()
    check_out(config.out, resume)  # cheap checks first, before the framework starts
    _start_backend(config.devices, dtype)
    if demo is not None:
        demo.prepare_backend()
    from softprompt.core.training.train import train as run_training  # keras loads here

    try:
        result = run_training(config, resume=resume, from_last_good=from_last_good,
                              progress=not quiet, echo=lambda text: click.echo(text, err=True))
    except TrainingDiverged as err:
        click.echo(f"Error: {err}", err=True)
        raise SystemExit(EXIT_RUNTIME) from None
    if demo is not None and result.best_step is not None and result.stopped != "interrupted":
        demo.report(config, result, echo=click.echo)
    elif result.best_step is not None:
        click.echo(f"best {result.metric} {result.best_score:.2f} at step {result.best_step}: "
                   f"{result.best_path}")
    if result.stopped == "interrupted":
        click.echo(f"stopped at step {result.step}; continue with: softprompt train "
                   f"--out {result.out} --resume", err=True)
        raise SystemExit(130)


def _absolute(values: dict) -> dict:
    """Local paths as absolute paths, so that a run resumes from any directory."""
    values = dict(values)
    for name in ("data", "init_file", "preset"):
        value = values.get(name)
        if value and "://" not in str(value) and Path(value).expanduser().exists():
            values[name] = str(Path(value).expanduser().resolve())
    return values


def _start_backend(devices, dtype) -> None:
    """Hand over to the adapter: re-launch under torchrun if needed, set dtype and devices."""
    adapter = backends.current()
    if adapter.needs_launch(devices):
        raise SystemExit(adapter.launch(devices, sys.argv))
    adapter.configure(dtype=dtype)


def _check_hub_source(task: str, args: dict) -> None:
    """Without --data softprompt's own tasks read the files they ship with, the others their
    hub dataset; a task with neither needs --data."""
    from softprompt import tasks

    the_task = tasks.get(task, **args)
    if getattr(the_task, "data", None) is not None:
        return
    if the_task.hub is None:
        raise ValueError(f"--task {task} needs --data (it has no hub dataset)")
    click.echo(f"data: {the_task.hub.uri} (the task's hub dataset)", err=True)


def _demo():
    """The built-in demo (``softprompt.core.demo``), run when no task or data is given.

    Its hooks: ``configure(options, explicit) -> options`` receives this
    command's options (by option name) and the names the user set, and
    returns them with ``preset``, ``task``, ``data`` and ``task_args`` filled
    in (it may change defaults the user did not set, e.g. ``steps``);
    ``prepare_backend()`` runs once the backend is set up (CPU threading for the
    small model); ``report(config, result, echo=...)`` prints the outcome after
    training.
    """
    try:
        from softprompt.core import demo
    except ModuleNotFoundError as err:
        if err.name != "softprompt.core.demo":
            raise
        raise ValueError(
            "the built-in demo is not available yet: pass --task and --data "
            "(and --preset) to train"
        ) from None
    return demo
