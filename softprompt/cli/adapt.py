"""``softprompt adapt``: LM adaptation / pretraining of a whole T5 (prefix-LM objective)."""

from __future__ import annotations

import json

import click

from softprompt.cli.common import backend_option, config_option, user_errors
from softprompt.core.pretraining import scratch
from softprompt.core.pretraining.adapt_config import (
    DEFAULT_LR,
    OPTIMIZERS,
    VOCAB_MODELS,
    AdaptConfig,
)


def adapt_option(name: str, **kwargs):
    """A ``--name`` option for the `AdaptConfig` field `name`, with the field's default."""
    return config_option(AdaptConfig, name, **kwargs)


def _config_value(text: str | None):
    """A config name (``tiny``) or a JSON object of `T5Backbone` sizes."""
    if text is None or not text.lstrip().startswith("{"):
        return text
    try:
        return json.loads(text)  # text starting with "{" is an object or invalid
    except json.JSONDecodeError as err:
        raise ValueError(f"--from-config {text!r} is not valid JSON ({err.msg})") from None


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--preset", default=None, help="The T5 preset to adapt (name or directory).")
@click.option("--from-config", "from_config", default=None,
              help=f"Start from random weights instead: {', '.join(scratch.CONFIGS)}, or a "
                   "JSON object of T5Backbone sizes; a vocabulary is trained on the corpus.")
@adapt_option("style", type=click.Choice(list(scratch.STYLES)),
              help="With --from-config: t5.1.1 (gated GELU, untied) or t5.1.0 (relu, tied).")
@adapt_option("vocab_size", type=int,
              help="With --from-config: sentencepiece pieces to train (at most).")
@adapt_option("vocab_model", type=click.Choice(list(VOCAB_MODELS)),
              help="With --from-config: sentencepiece algorithm.")
@click.option("--corpus", "corpus", multiple=True, required=True,
              help="A corpus file (repeat for a mixture): text lines, or JSONL with "
                   '{"text"} or {"inputs", "targets"} records.')
@adapt_option("steps", type=int, help="Optimizer steps.")
@adapt_option("batch_size", type=int)
@adapt_option("optimizer", type=click.Choice(list(OPTIMIZERS)))
@adapt_option("lr", type=float, help="Peak learning rate (default: "
              + ", ".join(f"{lr:g} for {name}" for name, lr in DEFAULT_LR.items()) + ").")
@adapt_option("warmup_steps", type=int,
              help="Linear warm-up steps, then 1/sqrt decay (default: min(1000, steps/10)).")
@adapt_option("max_input_length", type=int)
@adapt_option("max_target_length", type=int)
@adapt_option("dropout", type=float,
              help="Dropout while training (default: the preset's; 0 from a config).")
@adapt_option("eval_every", type=int, help="Steps between held-out evaluations and checkpoints.")
@adapt_option("seed", type=int)
@click.option("--out", required=True, help="The preset directory to write.")
@click.option("--workdir", default=None,
              help="Run directory: logs, checkpoints (default: OUT.adapt).")
@click.option("--resume", is_flag=True, help="Continue the run in the run directory.")
@click.option("--resume-from-last-good", "from_last_good", is_flag=True,
              help="--resume, from the previous checkpoint when the last one is unreadable.")
@backend_option
@user_errors
def adapt(preset, from_config, style, vocab_size, vocab_model, corpus, steps, batch_size, optimizer, lr,
          warmup_steps, max_input_length, max_target_length, dropout, eval_every, seed, out,
          workdir, resume, from_last_good):
    """Continue training a whole T5 with the prefix-LM objective (LM adaptation).

    Each corpus text is split at a random token: the encoder reads the prefix,
    the decoder learns the continuation. JSONL pairs train as they are, so a
    corpus can mix tasks in. Writes a keras-hub preset that every other
    command accepts as --preset.

    \b
    Example:
        softprompt adapt --preset softprompt_tiny --corpus path/to/text.txt --steps 10000 \\
            --out my-adapted-t5
        softprompt adapt --from-config tiny --vocab-size 2000 --corpus path/to/text.txt \\
            --corpus path/to/tasks.jsonl --steps 5000 --out my-tiny-t5
    """
    from softprompt.core.pretraining.adapt import adapt as run_adapt

    config = AdaptConfig(
        out=out, corpus=list(corpus), preset=preset, from_config=_config_value(from_config),
        style=style, vocab_size=vocab_size, vocab_model=vocab_model, steps=steps, batch_size=batch_size, lr=lr,
        optimizer=optimizer, warmup_steps=warmup_steps, max_input_length=max_input_length,
        max_target_length=max_target_length, dropout=dropout, eval_every=eval_every, seed=seed,
        workdir=workdir,
    )
    result = run_adapt(config, resume=resume or from_last_good, from_last_good=from_last_good)
    click.echo(f"preset: {result.out}")
