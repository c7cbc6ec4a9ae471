"""``softprompt eval``: a prompt file's metrics on a task split (plus options shared by commands)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from softprompt.cli.common import FilePath, backend_option, dtype_option, user_errors

# ---------------------------------------------------------------------- shared by commands


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
    from softprompt import tasks

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
    from softprompt.core.atomic import atomic_write

    with atomic_write(Path(path), "w") as f:
        json.dump(data, f, indent=2)
        f.write("\n")


# ---------------------------------------------------------------------- eval


@click.command("eval")
@backend_option
@dtype_option
@click.option("--prompt", "prompt_file", required=True, type=FilePath(dir_okay=False),
              help="The prompt file (.npy; its .json sidecar names the model).")
@task_options
@click.option("--data", required=True, help="The task's data: a file or its directory.")
@click.option("--split", default="validation", show_default=True, help="Split to evaluate.")
@click.option("--method", type=click.Choice(["decode", "rank"]), default=None,
              help="Greedy decoding or rank classification (default: as in training).")
@click.option("--batch-size", type=int, default=None,
              help="Inputs per batch (default: as in training, else 32).")
@click.option("--preset", default=None,
              help="The frozen model (default: the one the sidecar names).")
@click.option("--allow-mismatch", is_flag=True,
              help="Use --preset even if the sidecar names another model.")
@click.option("--max-input-length", type=int, default=None,
              help="Input tokens kept (default: as in training, else 512).")
@click.option("--max-target-length", type=int, default=None,
              help="Tokens to decode (default: as in training, else from the task).")
@click.option("--output", type=FilePath(dir_okay=False), default=None,
              help="Also write the metrics to this JSON file.")
@user_errors
def evaluate(prompt_file, task, template, target_field, labels, data, split, method,
             batch_size, preset, allow_mismatch, max_input_length, max_target_length, output):
    """Evaluate a trained prompt on a task split and print the task's metrics.

    The model comes from the prompt's sidecar unless --preset is given; a
    prompt from the official implementation (no sidecar) needs --preset.
    Lengths, method and batch size default to those the prompt was trained
    with, so the dev score recorded at a checkpoint is reproduced.

    \b
    Example:
        softprompt eval --prompt runs/boolq/best.npy --data data/BoolQ
        softprompt eval --prompt official/boolq_prompt --preset t5_base_lm_adapt \\
            --task boolq --data data/BoolQ --method rank --output metrics.json
    """
    from softprompt.core import evaluate as ev

    for name, value in (("--batch-size", batch_size), ("--max-input-length", max_input_length),
                        ("--max-target-length", max_target_length)):
        if value is not None and value < 1:
            raise ValueError(f"{name} must be at least 1, got {value}")
    model, _, metas = ev.model_for_prompts([prompt_file], preset, allow_mismatch)
    meta = metas[0]
    the_task = make_task(task, template, target_field, labels, meta)
    examples = the_task.read(data, split)
    method = method or meta.get("eval_method") or "decode"
    batch_size = batch_size or meta.get("eval_batch_size") or 32
    max_input_length = max_input_length or meta.get("max_input_length") or 512
    if max_target_length is None and meta.get("task") == the_task.name:
        max_target_length = meta.get("max_target_length")
    metrics, _ = ev.evaluate(model, the_task, examples, method, batch_size=batch_size,
                             max_input_length=max_input_length,
                             max_target_length=max_target_length)
    click.echo(f"{the_task.name} {split} ({len(examples)} examples, {method}):")
    echo_table([(k, float(v)) for k, v in metrics.items()], header=("metric", "value"))
    if output:
        write_json(output, {
            "prompt": str(prompt_file), "task": the_task.name, "split": split,
            "method": method, "examples": len(examples), "metrics": metrics,
        })
