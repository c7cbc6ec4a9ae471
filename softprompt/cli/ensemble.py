"""``softprompt ensemble``: N prompts, one batched pass, majority vote (the paper's Table 3)."""

from __future__ import annotations

from pathlib import Path

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


@click.command("ensemble")
@backend_option
@dtype_option
@click.option("--prompt", "prompt_files", multiple=True, required=True,
              type=click.Path(dir_okay=False),
              help="A prompt file; repeat for each member of the ensemble.")
@task_options
@click.option("--data", required=True, help="The task's data: a file or its directory.")
@click.option("--split", default="validation", show_default=True)
@click.option("--method", type=click.Choice(METHODS), default="decode",
              show_default=True,
              help="decode: majority vote (ties: summed log-likelihood); rank: mean "
                   "log-likelihood of the candidates.")
@click.option("--metric", default=None, help="Metric of the table (default: the task's main).")
@trained_prompt_options
@click.option("--output", type=click.Path(dir_okay=False), default=None,
              help="Also write every prompt's metrics and the ensemble's to this JSON file.")
@user_errors
def ensemble(prompt_files, task, template, target_field, labels, data, split, method, metric,
             batch_size, preset, allow_mismatch, max_input_length, max_target_length, output):
    """Evaluate prompts alone and as an ensemble over one frozen model.

    Each input is replicated N times with the N prompts in one batched
    forward pass. Prints each prompt's score, their average, the best, and
    the ensemble's (the columns of the paper's Table 3).

    \b
    Example:
        softprompt ensemble --prompt runs/s0/best.npy --prompt runs/s1/best.npy \\
            --prompt runs/s2/best.npy --task boolq --data data/BoolQ
    """
    from softprompt.core.inference import ensemble as ens
    from softprompt.core.inference.prompts import model_for_prompts

    check_positive(batch_size=batch_size, max_input_length=max_input_length,
                   max_target_length=max_target_length)
    model, arrays, metas = model_for_prompts(list(prompt_files), preset, allow_mismatch)
    the_task = make_task(task, template, target_field, labels, metas[0])
    examples = the_task.read(data, split)
    batch_size, max_input_length, max_target_length = as_trained(
        metas[0], the_task, batch_size, max_input_length, max_target_length)
    names = _names(prompt_files)
    result = ens.ensemble(model, arrays, the_task, examples, method, names=names, metric=metric,
                          batch_size=batch_size, max_input_length=max_input_length,
                          max_target_length=max_target_length)
    click.echo(f"{the_task.name} {split} ({len(examples)} examples, {len(arrays)} prompts, "
               f"{method}):")
    echo_table(list(result.table().items()), header=("prompt", result.metric))
    if output:
        write_json(output, {"task": the_task.name, "split": split, "method": method,
                            "examples": len(examples), **result.to_dict()})


def _names(files) -> list[str]:
    """Short distinct names: the file paths as given, numbered when repeated."""
    names, seen = [], {}
    for f in files:
        name = str(Path(f))
        seen[name] = seen.get(name, 0) + 1
        names.append(name if seen[name] == 1 else f"{name}#{seen[name]}")
    return names
