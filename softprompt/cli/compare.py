"""``softprompt compare`` and ``softprompt transfer``: the paper's comparisons on your models.

Both call `softprompt.core.experiments` (`compare`, `transfer`); the options that
shape each training run are `TrainConfig` fields with its defaults.
"""

from __future__ import annotations

from pathlib import Path

import click

from softprompt.cli import common
from softprompt.core.experiments.compare import METHODS, TRAINED, CompareConfig
from softprompt.core.experiments.transfer import TransferConfig, parse_evals
from softprompt.core.training.config import METHODS as EVAL_METHODS

#: `TrainConfig` fields every trained cell takes from the command line.
TRAIN_FIELDS = ("prompt_length", "batch_size", "eval_every", "max_input_length",
                "eval_batch_size", "dropout")


def train_fields(f):
    """The `TRAIN_FIELDS` options, plus ``--steps`` and ``--seeds``."""
    for option in reversed([
        common.train_option("steps", type=int, help="Training steps of every trained run."),
        click.option("--seeds", type=int, default=3, show_default=True,
                     help="Runs per cell, with seeds 0..N-1."),
        common.train_option("prompt_length", type=int, help="Prompt length P (prompt tuning)."),
        common.train_option("batch_size", type=int),
        common.train_option("eval_every", type=int,
                            help="Steps between dev evaluations and checkpoints."),
        common.train_option("max_input_length", type=int),
        common.train_option("eval_batch_size", type=int,
                            help="Inputs per evaluation batch (default: --batch-size)."),
        common.train_option("dropout", type=float,
                            help="Backbone dropout while training (default: the preset's)."),
        click.option("--quiet", is_flag=True, help="No progress bars."),
    ]):
        f = option(f)
    return f


def _train_options(options: dict) -> dict:
    return {name: options.pop(name) for name in TRAIN_FIELDS}


def _echo(text: str) -> None:
    click.echo(text, err=True)


@click.command("compare")
@common.backend_option
@click.option("--preset", "presets", multiple=True,
              help="A model to compare (repeat: one per size).")
@common.task_options
@click.option("--data", default=None, help="The task's data: a file or its directory.")
@click.option("--methods", default=",".join(METHODS), show_default=True,
              help=f"Comma-separated, of: {', '.join(METHODS)}.")
@train_fields
@click.option("--instruction", default="", help="Prompt design's instruction.")
@click.option("--shots", type=int, default=0, show_default=True,
              help="Prompt design's number of training examples in front of each input.")
@common.train_option("eval_split")
@common.train_option("eval_method", type=click.Choice(EVAL_METHODS))
@click.option("--out", required=True, help="The comparison's folder.")
@common.user_errors
def compare(presets, task, template, target_field, labels, data, methods, seeds, quiet, out,
            instruction, shots, eval_split, eval_method, **options):
    """Compare model tuning, prompt tuning and prompt design across models.

    Every (preset, method, seed) cell is its own run folder under OUT/cells;
    a rerun skips finished cells and resumes stopped ones. Writes
    OUT/results.csv, OUT/results.md (mean ± std over seeds, parameter counts)
    and OUT/scale.png (score against the frozen model's parameters).

    \b
    Example:
        softprompt compare --preset softprompt_tiny --preset softprompt_small \\
            --preset softprompt_base --task jsonl --template '{sentence}' \\
            --target-field food --labels meat,fish,... --data path/to/color_food/ \\
            --instruction 'tell me what the animal eats. options: ...' \\
            --seeds 3 --steps 300 --out runs/compare
    """
    from softprompt.core.experiments.compare import compare as run_compare

    config = CompareConfig(
        out=out, presets=list(presets), task=task, data=data,
        task_args=common.task_args(template, target_field, labels), methods=methods,
        seeds=seeds, steps=options.pop("steps"), train_options=_train_options(options),
        instruction=instruction, shots=shots, eval_split=eval_split, eval_method=eval_method,
    ).validate()
    result = run_compare(config, progress=not quiet, echo=_echo)
    click.echo(result.table_path.read_text().rstrip())
    click.echo(f"results: {result.out / 'results.csv'}, {result.table_path}, "
               f"{result.out / 'scale.png'}")


@click.command("transfer")
@common.backend_option
@click.option("--preset", default=None, help="The model to train (prompt or whole).")
@click.option("--train-task", required=True, help="The task to train on (e.g. squad, qqp).")
@click.option("--train-data", required=True, help="Its data: a file or its directory.")
@click.option("--eval", "evals", multiple=True,
              help="TASK=PATH: a set to evaluate on zero-shot (repeat), e.g. "
                   "mrqa/textbookqa=data/TextbookQA.jsonl.gz or mrpc=glue/MRPC.")
@click.option("--methods", default=",".join(TRAINED), show_default=True,
              help=f"Comma-separated, of: {', '.join(TRAINED)}.")
@train_fields
@common.train_option("eval_split")
@click.option("--out", required=True, help="The experiment's folder.")
@common.user_errors
def transfer(preset, train_task, train_data, evals, methods, seeds, quiet, eval_split, out,
             **options):
    """Train on one task, evaluate zero-shot on others: the domain-shift table.

    Trains each method once per seed (run folders under OUT/runs), evaluates
    each run's best checkpoint on every --eval set, and writes
    OUT/transfer.csv and OUT/transfer.md (model tuning, prompt tuning and
    their difference, mean ± std over seeds). Label words are mapped between
    tasks that have as many labels (QQP's duplicate -> MRPC's equivalent).

    \b
    Example:
        softprompt transfer --preset ./my-t5-base-lm-adapt --train-task squad \\
            --train-data path/to/squad --eval mrqa/textbookqa=path/to/TextbookQA.jsonl.gz \\
            --eval mrqa/bioasq=path/to/BioASQ.jsonl.gz --seeds 3 --out runs/transfer
        softprompt transfer --preset ./my-t5-base-lm-adapt --train-task qqp \\
            --train-data path/to/QQP --eval mrpc=path/to/MRPC --out runs/qqp-mrpc
    """
    from softprompt.core.experiments.transfer import transfer as run_transfer

    config = TransferConfig(
        out=out, preset=preset, train_task=train_task, train_data=train_data,
        evals=parse_evals(evals), methods=methods, seeds=seeds, steps=options.pop("steps"),
        train_options=_train_options(options), eval_split=eval_split,
    ).validate()
    run_transfer(config, progress=not quiet, echo=_echo)
    click.echo((Path(config.out) / "transfer.md").read_text().rstrip())
