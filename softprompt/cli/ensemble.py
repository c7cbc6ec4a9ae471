"""``softprompt ensemble``: N prompts, one batched pass, majority vote (the paper's Table 3)."""

from __future__ import annotations

from pathlib import Path

import click

from softprompt.cli import common
from softprompt.core.inference.methods import METHODS


@click.command("ensemble")
@common.backend_option
@common.dtype_option
@click.option("--prompt", "prompt_files", multiple=True, required=True,
              type=common.FilePath(dir_okay=False),
              help="A prompt file; repeat for each member of the ensemble.")
@common.prompts_on_task_options
@click.option("--method", type=click.Choice(METHODS), default="decode",
              show_default=True,
              help="decode: majority vote (ties: summed log-likelihood); rank: mean "
                   "log-likelihood of the candidates.")
@click.option("--metric", default=None, help="Metric of the table (default: the task's main).")
@click.option("--output", type=common.FilePath(dir_okay=False), default=None,
              help="Also write every prompt's metrics and the ensemble's to this JSON file.")
@common.user_errors
def ensemble(prompt_files, method, metric, output, **options):
    """Evaluate prompts alone and as an ensemble over one frozen model.

    Each input is replicated N times with the N prompts in one batched
    forward pass. Prints each prompt's score, their average, the best, and
    the ensemble's (the columns of the paper's Table 3).

    \b
    Example:
        softprompt ensemble --prompt runs/s0/best.npy --prompt runs/s1/best.npy \\
            --prompt runs/s2/best.npy --task boolq --data path/to/BoolQ
    """
    run = common.load_prompts_on_task(prompt_files, **options)
    from softprompt.core.inference.ensemble import ensemble as run_ensemble

    result = run_ensemble(run.model, run.arrays, run.task, run.examples, method,
                          names=_names(prompt_files), metric=metric, **run.settings)
    split = options["split"]
    click.echo(f"{run.task.name} {split} ({len(run.examples)} examples, {len(run.arrays)} "
               f"prompts, {method}):")
    common.echo_table(list(result.table().items()), header=("prompt", result.metric))
    if output:
        common.write_json(output, {"task": run.task.name, "split": split, "method": method,
                                   "examples": len(run.examples), **result.to_dict()})


def _names(files) -> list[str]:
    """Short distinct names: the file paths as given, numbered when repeated."""
    names, seen = [], {}
    for f in files:
        name = str(Path(f))
        seen[name] = seen.get(name, 0) + 1
        names.append(name if seen[name] == 1 else f"{name}#{seen[name]}")
    return names
