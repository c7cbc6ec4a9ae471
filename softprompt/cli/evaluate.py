"""``softprompt eval``: a prompt file's metrics on a task split, or the model's alone.

Three ways to evaluate, one inference path (`softprompt.core.inference.evaluate`):
a trained prompt (``--prompt``), a model alone (``--preset``: a model-tuned
preset, or any frozen model with no prompt), and prompt design (``--preset``
with ``--instruction`` and/or ``--shots``, `softprompt.core.experiments.prompt_design`).
"""

from __future__ import annotations

import click

from softprompt.cli import common
from softprompt.core.inference.methods import METHODS


@click.command("eval")
@common.backend_option
@common.dtype_option
@click.option("--prompt", "prompt_file", default=None, type=common.FilePath(dir_okay=False),
              help="The prompt file (.npy; its .json sidecar names the model). Without it, "
                   "the --preset model is evaluated alone.")
@click.option("--instruction", default=None,
              help="Prompt design: this text in front of every input (no --prompt).")
@click.option("--shots", type=int, default=0, show_default=True,
              help="Prompt design: this many training examples, formatted as the task formats "
                   "them, after the instruction (dropped first when an input is too long).")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Prompt design: seeds the draw of the --shots examples.")
@common.prompts_on_task_options
@click.option("--method", type=click.Choice(METHODS), default=None,
              help="Greedy decoding or rank classification (default: as in training).")
@click.option("--output", type=common.FilePath(dir_okay=False), default=None,
              help="Also write the metrics to this JSON file.")
@common.user_errors
def evaluate(prompt_file, instruction, shots, seed, method, output, **options):
    """Evaluate a trained prompt, a model alone, or prompt design on a task split.

    With --prompt, the model comes from the prompt's sidecar unless --preset
    is given; a prompt from the official implementation (no sidecar) needs
    --preset. Without --prompt, the --preset model runs with no prompt: a
    model-tuned preset (softprompt train --method model-tuning, OUT/best), or
    prompt design with --instruction and --shots. Lengths, method, batch size
    and task default to those the prompt or preset was trained with, so the
    dev score recorded at a checkpoint is reproduced.

    \b
    Example:
        softprompt eval --prompt runs/boolq/best.npy --data path/to/BoolQ
        softprompt eval --prompt path/to/official_boolq_prompt --preset ./my-t5-base-lm-adapt \\
            --task boolq --data path/to/BoolQ --method rank --output metrics.json
        softprompt eval --preset runs/boolq-mt/best --data path/to/BoolQ
        softprompt eval --preset softprompt_tiny --task jsonl --template '{sentence}' \\
            --target-field food --labels meat,fish --data path/to/data/ --method rank \\
            --instruction 'tell me what the animal eats.' --shots 4 --seed 1
    """
    if prompt_file is not None:
        if instruction is not None or shots:
            raise ValueError("--instruction and --shots evaluate the model alone (prompt "
                             "design): leave out --prompt")
        run = common.load_prompts_on_task([prompt_file], **options)
        model, the_task, examples, settings = run.model, run.task, run.examples, run.settings
        meta = run.metas[0]
        from softprompt.core.inference.evaluate import evaluate as run_evaluation

        method = method or meta.get("eval_method") or METHODS[0]
        metrics, _ = run_evaluation(model, the_task, examples, method, **settings)
    else:
        metrics, the_task, examples, method = _alone(instruction or "", shots, seed, method,
                                                     **options)
    split = options["split"]
    click.echo(f"{the_task.name} {split} ({len(examples)} examples, {method}):")
    common.echo_table([(k, float(v)) for k, v in metrics.items()], header=("metric", "value"))
    if output:
        common.write_json(output, {
            "prompt": None if prompt_file is None else str(prompt_file),
            "preset": options["preset"], "instruction": instruction, "shots": shots,
            "seed": seed, "task": the_task.name, "split": split, "method": method,
            "examples": len(examples), "metrics": metrics,
        })


def _alone(instruction, shots, seed, method, *, task, template, target_field, labels, data,
           split, batch_size, preset, allow_mismatch, max_input_length, max_target_length):
    """The --preset model with no prompt (and prompt design's text); checks come first."""
    del allow_mismatch  # no prompt to mismatch
    from softprompt.core.experiments.prompt_design import draw_shots, evaluate_alone
    from softprompt.core.interop.presets import training_record

    if not preset:
        raise ValueError("give --prompt FILE, or --preset MODEL to evaluate a model alone "
                         "(a model-tuned preset, or prompt design with --instruction/--shots)")
    common.check_positive(batch_size=batch_size, max_input_length=max_input_length,
                          max_target_length=max_target_length)
    meta = training_record(preset)
    the_task = common.make_task(task, template, target_field, labels, meta)
    examples = the_task.read(data, split)
    train = the_task.train_examples(the_task.read(data, "train")) if shots else []
    drawn = draw_shots(train, shots, seed)
    batch_size, max_input_length, max_target_length = common.as_trained(
        meta, the_task, batch_size, max_input_length, max_target_length)
    method = method or meta.get("eval_method") or METHODS[0]
    metrics, _ = evaluate_alone(preset, the_task, examples, instruction=instruction,
                                shots=drawn, method=method, batch_size=batch_size,
                                max_input_length=max_input_length,
                                max_target_length=max_target_length)
    return metrics, the_task, examples, method
