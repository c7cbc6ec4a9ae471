"""Options, error handling and output helpers shared by the commands.

Commands import keras (and so the backend) only inside their bodies, after
`backend_option` has set ``KERAS_BACKEND``; nothing imported here loads it.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import sys
from pathlib import Path

import click

from softprompt import backends, tasks
from softprompt.backends.base import DTYPES
from softprompt.core.inference.methods import DEFAULT_BATCH_SIZE, DEFAULT_MAX_INPUT_LENGTH
from softprompt.core.io.atomic import atomic_write
from softprompt.core.io.disk_space import DiskFull
from softprompt.core.io.run_lock import RunFolderBusy
from softprompt.core.training.config import TrainConfig

EXIT_RUNTIME = 1
EXIT_USAGE = 2


class UserInputError(click.ClickException):
    """A mistake the user can fix: one line, exit code 2."""

    exit_code = EXIT_USAGE

    def show(self, file=None):
        click.echo(f"Error: {self.format_message()}", err=True, file=file)


class FilePath(click.Path):
    """`click.Path` that also refuses a NUL byte as a usage error.

    ``os.stat`` raises `ValueError` for a NUL byte, which click would let escape as a
    traceback while it parses the options.
    """

    def convert(self, value, param, ctx):
        if isinstance(value, str) and "\x00" in value:
            self.fail(f"{value!r} holds a NUL byte", param, ctx)
        return super().convert(value, param, ctx)


def _set_backend(ctx, param, value):
    if value is None:
        value = os.environ.get("KERAS_BACKEND")
        if value is None:
            return None
    try:
        return backends.select(value)
    except ValueError as err:
        raise click.BadParameter(str(err), ctx=ctx, param=param) from None


def backend_option(f):
    """``--backend jax|torch|tensorflow``: sets KERAS_BACKEND before keras loads."""
    return click.option(
        "--backend",
        type=str,
        default=None,
        is_eager=True,
        expose_value=False,
        callback=_set_backend,
        help="Framework to run on: jax, torch or tensorflow (default: $KERAS_BACKEND).",
    )(f)


def _set_dtype(ctx, param, value):
    if value is None or value == "float32":
        return value
    backends.current().set_dtype(value)  # keras' policy for the models built afterwards
    return value


def dtype_option(f=None, *, apply=True):
    """``--dtype float32|bfloat16|mixed_bfloat16``: the frozen model's dtype policy.

    With ``apply=True`` it is applied when the options are parsed, before any
    model is built (after ``--backend``, which is eager); with ``apply=False``
    the command receives ``dtype`` and hands it to the adapter itself
    (``softprompt train`` does, after a possible torchrun re-launch). The
    prompt stays float32.
    """
    def decorate(f):
        return click.option(
            "--dtype",
            type=click.Choice(DTYPES),
            default="float32",
            show_default=True,
            expose_value=not apply,
            callback=_set_dtype if apply else None,
            help="Frozen model's weights/compute dtype (bfloat16: faster and half the memory "
                 "where the hardware multiplies bfloat16; norms, softmax and logits stay "
                 "float32).",
        )(f)

    return decorate if f is None else decorate(f)


def debug_option(f):
    return click.option(
        "--debug", is_flag=True, default=False, help="Show full tracebacks on errors."
    )(f)


def user_errors(f):
    """Turn the errors a user can cause into one-line messages with exit code 2.

    `ValueError`, `FileNotFoundError`, `NotADirectoryError`, `IsADirectoryError`,
    `PermissionError` and `RunFolderBusy` become ``Error: <message>`` (exit 2);
    `DiskFull` is ``Error: <message>`` with exit 1, and any other exception is a
    runtime failure (exit 1, one line, its type named). ``--debug`` re-raises
    so the traceback shows.
    """

    @functools.wraps(f)
    def wrapper(*args, debug=False, **kwargs):
        if not debug:
            backends.quiet_tensorflow_import()
        try:
            return f(*args, **kwargs)
        except click.ClickException:
            raise
        except (ValueError, FileNotFoundError, NotADirectoryError, IsADirectoryError,
                PermissionError, RunFolderBusy) as err:
            if debug:
                raise
            raise UserInputError(_one_line(err)) from None
        except DiskFull as err:
            if debug:
                raise
            click.echo(f"Error: {_one_line(err)}", err=True)
            sys.exit(EXIT_RUNTIME)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)
        except Exception as err:  # noqa: BLE001 - last line of defence for a CLI
            if debug:
                raise
            click.echo(f"Error: {type(err).__name__}: {_one_line(err)}", err=True)
            sys.exit(EXIT_RUNTIME)

    return debug_option(wrapper)


def _one_line(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    if isinstance(err, KeyError):
        text = text.strip("'\"")
    return " ".join(text.split())


# ---------------------------------------------------------------------- tasks and output


def one_of(choices):
    """An option callback that accepts only `choices`: a one-line error (exit 2) otherwise,
    where ``click.Choice`` would print the usage too."""
    def check(ctx, param, value):
        if value is not None and value not in choices:
            raise UserInputError(f"unknown {param.name.replace('_', ' ')} {value!r}: expected "
                                 f"one of {', '.join(choices)}")
        return value
    return check


def config_option(config, name: str, **kwargs):
    """A ``--name`` option for the field `name` of the dataclass `config`, with its default.

    Example:
        >>> @config_option(AdaptConfig, "steps", type=int)   # --steps, default 10000
    """
    default = next(f.default for f in dataclasses.fields(config) if f.name == name)
    if default is dataclasses.MISSING:
        raise TypeError(f"{config.__name__}.{name} has no default to show")
    return click.option("--" + name.replace("_", "-"), default=default,
                        show_default=default is not None, **kwargs)


def train_option(name: str, **kwargs):
    """A ``--name`` option for the `TrainConfig` field `name`, with the field's default."""
    return config_option(TrainConfig, name, **kwargs)


def task_options(f):
    """``--task`` plus the ``jsonl`` task's ``--template``, ``--target-field``, ``--labels``."""
    f = click.option("--labels", default=None,
                     help="jsonl task: comma-separated label strings (classification).")(f)
    f = click.option("--target-field", default=None,
                     help="jsonl task: the field holding the target.")(f)
    f = click.option("--template", default=None,
                     help="jsonl task: the input template, e.g. 'review: {text}'.")(f)
    f = click.option("--task", default=None,
                     help="Task name (boolq, rte, …, or jsonl for your own data).")(f)
    return f


def task_args(template, target_field, labels) -> dict:
    """Keyword arguments for `softprompt.tasks.get` from the jsonl options."""
    args = {}
    if template is not None:
        args["template"] = template
    if target_field is not None:
        args["target_field"] = target_field
    if labels is not None:
        args["labels"] = [x.strip() for x in labels.split(",") if x.strip()]
    return args


def make_task(task, template=None, target_field=None, labels=None, meta=None):
    """The task named by the options, else by a prompt's sidecar (`meta`)."""
    args = task_args(template, target_field, labels)
    if task is None and meta:
        task = meta.get("task")
    if not args and meta and task == meta.get("task"):
        args = dict(meta.get("task_args") or {})
    if task is None:
        raise ValueError("no task given and the prompt's sidecar names none: pass --task")
    return tasks.get(task, **args)


def echo_table(rows, header=None) -> None:
    """Print rows of cells as aligned columns (numbers with 2 decimals)."""
    cells = [[_cell(c) for c in row] for row in ([header] if header else []) + list(rows)]
    widths = [max(len(r[i]) for r in cells) for i in range(len(cells[0]))]
    for row in cells:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def write_json(path, data) -> None:
    """Write `data` as indented JSON, atomically."""
    with atomic_write(Path(path), "w") as f:
        json.dump(data, f, indent=2)
        f.write("\n")


# ---------------------------------------------------------------------- a trained prompt's settings


def prompts_on_task_options(f):
    """The options of commands that run prompt files on a task split.

    ``--task`` (and the jsonl task's options), ``--data``, ``--split``,
    ``--batch-size``, ``--preset``, ``--allow-mismatch``, ``--max-input-length``
    and ``--max-target-length``: by default, the task, the model and the
    settings the prompts were trained with (`load_prompts_on_task`).
    """
    for option in reversed([
        task_options,
        click.option("--data", default=None,
                     help="The task's data: its files or folder, a saved `datasets` folder, "
                          "Parquet/CSV/JSONL, or hf://datasets/NAME[:CONFIG] (default: the "
                          "task's hub dataset)."),
        click.option("--split", default="validation", show_default=True,
                     help="Split to evaluate."),
        click.option("--batch-size", type=int, default=None,
                     help=f"Inputs per batch (default: as in training, else "
                          f"{DEFAULT_BATCH_SIZE})."),
        click.option("--preset", default=None,
                     help="The frozen model (default: the one the sidecars name)."),
        click.option("--allow-mismatch", is_flag=True,
                     help="Use --preset even if a sidecar names another model."),
        click.option("--max-input-length", type=int, default=None,
                     help=f"Input tokens kept (default: as in training, else "
                          f"{DEFAULT_MAX_INPUT_LENGTH})."),
        click.option("--max-target-length", type=int, default=None,
                     help="Tokens to decode (default: as in training, else from the task)."),
    ]):
        f = option(f)
    return f


@dataclasses.dataclass
class PromptsOnTask:
    """What `load_prompts_on_task` loaded: the model holding the prompts, the task split,
    and the inference settings (``batch_size``, ``max_input_length``, ``max_target_length``)."""

    model: object
    arrays: list
    metas: list[dict]
    task: object
    examples: list
    settings: dict


def load_prompts_on_task(prompt_files, *, task, template, target_field, labels, data, split,
                         batch_size, preset, allow_mismatch, max_input_length,
                         max_target_length) -> PromptsOnTask:
    """Load the model the prompt files name, holding them, and the task split to run.

    Takes the options of `prompts_on_task_options`; settings not given are the
    first prompt's training settings (`as_trained`).
    """
    check_positive(batch_size=batch_size, max_input_length=max_input_length,
                   max_target_length=max_target_length)
    from softprompt.core.inference.prompts import model_for_prompts  # keras loads there

    model, arrays, metas = model_for_prompts(list(prompt_files), preset, allow_mismatch)
    the_task = make_task(task, template, target_field, labels, metas[0])
    examples = the_task.read(data, split)
    batch_size, max_input_length, max_target_length = as_trained(
        metas[0], the_task, batch_size, max_input_length, max_target_length)
    settings = dict(batch_size=batch_size, max_input_length=max_input_length,
                    max_target_length=max_target_length)
    return PromptsOnTask(model, arrays, metas, the_task, examples, settings)


def check_positive(**options) -> None:
    """Raise a one-line `ValueError` for an option given below 1 (`None`: not given)."""
    for name, value in options.items():
        if value is not None and value < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be at least 1, got {value}")


def as_trained(meta: dict, task, batch_size=None, max_input_length=None,
               max_target_length=None) -> tuple[int, int, int | None]:
    """``(batch_size, max_input_length, max_target_length)``: the given values, else the
    prompt's sidecar's (its training settings), else the library's defaults.

    The target length comes from the sidecar only when it names the same task.
    """
    batch_size = batch_size or meta.get("eval_batch_size") or DEFAULT_BATCH_SIZE
    max_input_length = (max_input_length or meta.get("max_input_length")
                        or DEFAULT_MAX_INPUT_LENGTH)
    if max_target_length is None and meta.get("task") == task.name:
        max_target_length = meta.get("max_target_length")
    return batch_size, max_input_length, max_target_length
