"""``softprompt ensemble``: N prompts, one batched pass, majority vote (the paper's Table 3)."""

from __future__ import annotations

from pathlib import Path

import click

from softprompt.cli.common import FilePath, backend_option, dtype_option, user_errors
from softprompt.cli.evaluate import echo_table, make_task, task_options, write_json


@click.command("ensemble")
@backend_option
@dtype_option
@click.option("--prompt", "prompt_files", multiple=True, required=True,
              type=FilePath(dir_okay=False),
              help="A prompt file; repeat for each member of the ensemble.")
@task_options
@click.option("--data", required=True, help="The task's data: a file or its directory.")
@click.option("--split", default="validation", show_default=True)
@click.option("--method", type=click.Choice(["decode", "rank"]), default="decode",
              show_default=True,
              help="decode: majority vote (ties: summed log-likelihood); rank: mean "
                   "log-likelihood of the candidates.")
@click.option("--metric", default=None, help="Metric of the table (default: the task's main).")
@click.option("--batch-size", type=int, default=None,
              help="Inputs per batch, each run under all N prompts (default: as in training, "
                   "else 32).")
@click.option("--preset", default=None,
              help="The frozen model (default: the one the sidecars name).")
@click.option("--allow-mismatch", is_flag=True,
              help="Use --preset even if a sidecar names another model.")
@click.option("--max-input-length", type=int, default=None,
              help="Input tokens kept (default: as in training, else 512).")
@click.option("--max-target-length", type=int, default=None,
              help="Tokens to decode (default: as in training, else from the task).")
@click.option("--output", type=FilePath(dir_okay=False), default=None,
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
    from softprompt.core import ensemble as ens
    from softprompt.core import evaluate as ev

    for name, value in (("--batch-size", batch_size), ("--max-input-length", max_input_length),
                        ("--max-target-length", max_target_length)):
        if value is not None and value < 1:
            raise ValueError(f"{name} must be at least 1, got {value}")
    model, arrays, metas = ev.model_for_prompts(list(prompt_files), preset, allow_mismatch)
    the_task = make_task(task, template, target_field, labels, metas[0])
    examples = the_task.read(data, split)
    meta = metas[0]
    batch_size = batch_size or meta.get("eval_batch_size") or 32
    max_input_length = max_input_length or meta.get("max_input_length") or 512
    if max_target_length is None and meta.get("task") == the_task.name:
        max_target_length = meta.get("max_target_length")
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
