"""``softprompt export`` / ``softprompt import``: prompts to and from PEFT and the official code."""

from __future__ import annotations

import click

from softprompt.cli.common import FilePath, backend_option, user_errors


@click.command()
@click.argument("prompt", type=FilePath(dir_okay=False, path_type=str))
@click.option(
    "--to", "to", type=click.Choice(["peft", "official"]), required=True,
    help="peft: a PEFT prompt-tuning adapter directory; official: a float32 (P, d) .npy payload.",
)
@click.argument("out", type=FilePath(path_type=str))
@click.option("--index", "prompt_index", type=int, default=None,
              help="Which prompt of a multi-prompt file (N, P, d) to export.")
@click.option("--base-model", default=None,
              help="PEFT's base_model_name_or_path (default: from the prompt's sidecar).")
@backend_option
@user_errors
def export(prompt, to, out, prompt_index, base_model):
    """Export the prompt file PROMPT for PEFT or the official implementation, into OUT.

    \b
    Example:
        softprompt export runs/demo/best.npy --to peft my-adapters/demo   # after the demo
        softprompt export runs/boolq/best.npy --to official exports/boolq_prompt
    """
    from softprompt.core.interop.official import export_official
    from softprompt.core.interop.peft import export_peft

    if to == "peft":
        path = export_peft(prompt, out, base_model=base_model, prompt_index=prompt_index)
        click.echo(f"wrote PEFT prompt-tuning adapter {path}")
    else:
        if base_model is not None:
            raise click.UsageError("--base-model applies only to --to peft")
        path = export_official(prompt, out, prompt_index=prompt_index)
        click.echo(f"wrote official-layout prompt {path}")


@click.command("import")
@click.argument("peft_dir", type=FilePath(path_type=str))
@click.argument("out", type=FilePath(dir_okay=False, path_type=str))
@backend_option
@user_errors
def import_(peft_dir, out):
    """Import the PEFT prompt-tuning adapter PEFT_DIR as the prompt file OUT (.npy + sidecar).

    Official-layout prompt files need no import: every command loads them as they are.

    \b
    Example:
        softprompt import path/to/peft-adapter boolq.npy
    """
    from softprompt.core.interop.peft import import_peft

    path, info = import_peft(peft_dir, out)
    if info["dropped_rows"]:
        click.echo(
            f"note: the adapter holds {info['rows']} rows; prompt tuning uses only the first "
            f"{info['num_virtual_tokens']}, dropped the other {info['dropped_rows']}",
            err=True,
        )
    click.echo(
        f"wrote {path} ({info['num_virtual_tokens']} x {info['token_dim']} prompt)"
    )
