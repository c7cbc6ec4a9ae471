"""``softprompt eval``: a prompt file's metrics on a task split."""

from __future__ import annotations

import click

from softprompt.cli import common
from softprompt.core.inference.methods import METHODS


@click.command("eval")
@common.backend_option
@common.dtype_option
@click.option("--prompt", "prompt_file", required=True, type=common.FilePath(dir_okay=False),
              help="The prompt file (.npy; its .json sidecar names the model).")
@common.prompts_on_task_options
@click.option("--method", type=click.Choice(METHODS), default=None,
              help="Greedy decoding or rank classification (default: as in training).")
@click.option("--output", type=common.FilePath(dir_okay=False), default=None,
              help="Also write the metrics to this JSON file.")
@common.user_errors
def evaluate(prompt_file, method, output, **options):
    """Evaluate a trained prompt on a task split and print the task's metrics.

    The model comes from the prompt's sidecar unless --preset is given; a
    prompt from the official implementation (no sidecar) needs --preset.
    Lengths, method and batch size default to those the prompt was trained
    with, so the dev score recorded at a checkpoint is reproduced.

    \b
    Example:
        softprompt eval --prompt runs/boolq/best.npy --data path/to/BoolQ
        softprompt eval --prompt path/to/official_boolq_prompt --preset ./my-t5-base-lm-adapt \\
            --task boolq --data path/to/BoolQ --method rank --output metrics.json
    """
    run = common.load_prompts_on_task([prompt_file], **options)
    from softprompt.core.inference.evaluate import evaluate as run_evaluation

    method = method or run.metas[0].get("eval_method") or METHODS[0]
    metrics, _ = run_evaluation(run.model, run.task, run.examples, method, **run.settings)
    split = options["split"]
    click.echo(f"{run.task.name} {split} ({len(run.examples)} examples, {method}):")
    common.echo_table([(k, float(v)) for k, v in metrics.items()], header=("metric", "value"))
    if output:
        common.write_json(output, {
            "prompt": str(prompt_file), "task": run.task.name, "split": split,
            "method": method, "examples": len(run.examples), "metrics": metrics,
        })
