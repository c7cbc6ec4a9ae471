"""``softprompt train``: prompt tuning with checkpoints, best-on-dev, logs and exact resume."""

from __future__ import annotations

import click

from softprompt.backends.base import DTYPES
from softprompt.cli.common import EXIT_RUNTIME, backend_option, user_errors
from softprompt.cli.evaluate import task_args, task_options

#: Option name -> TrainConfig field, for every option that is a training option.
_FIELDS = {
    "preset": "preset", "task": "task", "data": "data", "prompt_length": "prompt_length",
    "init": "init", "init_text": "init_text", "init_file": "init_file", "steps": "steps",
    "batch_size": "batch_size", "lr": "lr", "max_input_length": "max_input_length",
    "max_target_length": "max_target_length", "eval_every": "eval_every",
    "eval_split": "eval_split", "eval_method": "eval_method", "metric": "metric",
    "early_stopping": "early_stopping", "dropout": "dropout", "seed": "seed",
    "eval_batch_size": "eval_batch_size", "distribution": "distribution", "mesh": "mesh",
    "devices": "devices",
}
_TASK_ARGS = ("template", "target_field", "labels")


@click.command("train")
@backend_option
@click.option("--preset", default=None,
              help="The frozen T5: a keras-hub preset name, kaggle:// or hf:// handle, or a "
                   "local preset directory.")
@task_options
@click.option("--data", default=None, help="The task's data: a file or its directory.")
@click.option("--prompt-length", type=int, default=100, show_default=True,
              help="Prompt length P.")
@click.option("--init", type=click.Choice(["class-labels", "sampled-vocab", "uniform", "text",
                                           "file"]),
              default=None, help="Prompt initialization (default: class-labels when the task "
                                 "has labels, else sampled-vocab).")
@click.option("--init-text", default=None, help="Text for --init text.")
@click.option("--init-file", default=None, help="Prompt file for --init file.")
@click.option("--steps", type=int, default=30000, show_default=True, help="Training steps.")
@click.option("--batch-size", type=int, default=32, show_default=True)
@click.option("--lr", type=float, default=0.3, show_default=True,
              help="Adafactor's constant learning rate.")
@click.option("--max-input-length", type=int, default=512, show_default=True)
@click.option("--max-target-length", type=int, default=None,
              help="Default: the longest target of the training data.")
@click.option("--eval-every", type=int, default=1000, show_default=True,
              help="Steps between dev evaluations and checkpoints.")
@click.option("--eval-split", default="validation", show_default=True)
@click.option("--eval-method", type=click.Choice(["decode", "rank"]), default="decode",
              show_default=True)
@click.option("--eval-batch-size", type=int, default=None,
              help="Inputs per evaluation batch (default: --batch-size).")
@click.option("--metric", default=None,
              help="The metric that selects best.npy (default: the task's main metric).")
@click.option("--early-stopping", type=int, default=None,
              help="Stop after this many evaluations without a better dev score.")
@click.option("--dropout", type=float, default=None,
              help="Backbone dropout while training (default: the preset's; the official "
                   "runs used 0.1).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--distribution", type=click.Choice(["auto", "none", "data", "model"]),
              default="auto", show_default=True,
              help="Spread training over devices: data parallel, or model parallel (JAX).")
@click.option("--mesh", default=None, help="DATAxMODEL device mesh for --distribution model.")
@click.option("--devices", type=int, default=None, help="Use the first N devices.")
@click.option("--dtype", type=click.Choice(DTYPES),
              default="float32", show_default=True,
              help="Frozen backbone's weights/compute dtype; the prompt stays float32. bfloat16 "
                   "pays where the hardware multiplies bfloat16 natively (measured on a CPU "
                   "with AVX512-BF16: 1.3-1.8x faster train steps, README); norms, softmax "
                   "and logits stay float32.")
@click.option("--out", default="runs/softprompt", show_default=True,
              help="The run directory.")
@click.option("--resume", is_flag=True,
              help="Continue the run in --out from its last checkpoint.")
@click.option("--resume-from-last-good", "from_last_good", is_flag=True,
              help="--resume, from the newest complete checkpoint when a file of the last one "
                   "is unreadable.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@user_errors
def train(**options):
    """Train a soft prompt for a frozen T5 on a task.

    Every --eval-every steps the prompt is evaluated on the dev split and
    saved as OUT/checkpoints/step-N.npy; OUT/best.npy is the best so far.
    Logs: OUT/metrics.jsonl, OUT/train.csv, OUT/tensorboard, OUT/curve.png,
    OUT/config.json. --resume continues exactly where a stopped run left off
    (Ctrl-C stops after the current step with a checkpoint). One process at a
    time trains into an --out. Without --task and --data, the built-in demo runs.

    \b
    Example:
        softprompt train --preset t5_base_lm_adapt --task boolq --data data/BoolQ \\
            --out runs/boolq
        softprompt train --task jsonl --template 'review: {text}' --target-field label \\
            --labels negative,positive --data reviews/ --steps 2000 --eval-every 200
        softprompt train --out runs/boolq --resume
    """
    from softprompt.core.train import TrainConfig, TrainingDiverged, check_out, read_run_config
    from softprompt.core.train import train as run_training

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
        for name in explicit & set(_FIELDS):
            values[_FIELDS[name]] = options[name]
        if explicit & set(_TASK_ARGS):
            values["task_args"] = task_args(*(options[k] for k in _TASK_ARGS))
        values["out"] = options["out"]
    else:
        if not options["task"] and not options["data"]:
            demo = _demo()
            options = demo.configure(dict(options), set(explicit))
        elif not options["task"]:
            raise ValueError("--data needs --task (e.g. --task jsonl --template '...')")
        elif not options["data"]:
            raise ValueError(f"--task {options['task']} needs --data")
        values = {field: options[name] for name, field in _FIELDS.items()}
        values["task_args"] = options.get("task_args") or task_args(
            *(options[k] for k in _TASK_ARGS))
        values["out"] = options["out"]
    config = TrainConfig.from_dict(_absolute(values)).validate()
    check_out(config.out, resume)  # cheap checks first, before the framework starts
    _start_backend(config.devices, dtype)
    if demo is not None:
        demo.prepare_backend()
    try:
        result = run_training(config, resume=resume, from_last_good=from_last_good,
                              progress=not quiet, echo=lambda text: click.echo(text, err=True))
    except TrainingDiverged as err:
        click.echo(f"Error: {err}", err=True)
        raise SystemExit(EXIT_RUNTIME) from None
    if (demo is not None and hasattr(demo, "report") and result.best_step is not None
            and result.stopped != "interrupted"):
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
    from pathlib import Path

    values = dict(values)
    for name in ("data", "init_file", "preset"):
        value = values.get(name)
        if value and "://" not in str(value) and Path(value).expanduser().exists():
            values[name] = str(Path(value).expanduser().resolve())
    return values


def _start_backend(devices, dtype) -> None:
    """Hand over to the adapter: re-launch under torchrun if needed, set dtype and devices."""
    import sys

    from softprompt import backends

    adapter = backends.current()
    needs_launch = getattr(adapter, "needs_launch", None)
    if needs_launch is not None and needs_launch(devices):
        raise SystemExit(adapter.launch(devices, sys.argv))
    configure = getattr(adapter, "configure", None)
    if configure is not None:
        configure(dtype=dtype)
    elif dtype != "float32":
        raise ValueError(f"backend {adapter.name!r} cannot set --dtype {dtype}")


def _demo():
    """The built-in demo (``softprompt.core.demo``), run when no task or data is given.

    Its hooks: ``configure(options, explicit) -> options`` receives this
    command's options (by option name) and the names the user set, and
    returns them with ``preset``, ``task``, ``data`` and ``task_args`` filled
    in (it may change defaults the user did not set, e.g. ``steps``);
    ``prepare_backend()`` runs once the backend is set up (CPU threading for the
    small model); ``report(config, result, echo=...)``, if present, prints the
    outcome after training.
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
