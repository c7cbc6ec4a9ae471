"""``softprompt eval``: a prompt file's metrics on a task split."""

from __future__ import annotations

import click

from softprompt.cli.common import (
    as_trained,
    backend_option,
    check_positive,
    dtype_option,
    echo_table,
    make_task,
    task_options,
    trained_prompt_options,
    user_errors,
    write_json,
)
from softprompt.core.inference.methods import METHODS

# ---------------------------------------------------------------------- eval


@click.command("eval")
@backend_option
@dtype_option
@click.option("--prompt", "prompt_file", required=True, type=click.Path(dir_okay=False),
              help="The prompt file (.npy; its .json sidecar names the model).")
@task_options
@click.option("--data", required=True, help="The task's data: a file or its directory.")
@click.option("--split", default="validation", show_default=True, help="Split to evaluate.")
@click.option("--method", type=click.Choice(METHODS), default=None,
              help="Greedy decoding or rank classification (default: as in training).")
@trained_prompt_options
@click.option("--output", type=click.Path(dir_okay=False), default=None,
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
    from softprompt.core.inference import evaluate as ev
    from softprompt.core.inference.prompts import model_for_prompts

    check_positive(batch_size=batch_size, max_input_length=max_input_length,
                   max_target_length=max_target_length)
    model, _, metas = model_for_prompts([prompt_file], preset, allow_mismatch)
    meta = metas[0]
    the_task = make_task(task, template, target_field, labels, meta)
    examples = the_task.read(data, split)
    method = method or meta.get("eval_method") or METHODS[0]
    batch_size, max_input_length, max_target_length = as_trained(
        meta, the_task, batch_size, max_input_length, max_target_length)
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
