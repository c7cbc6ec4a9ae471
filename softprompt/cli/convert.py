"""``softprompt convert``: bring checkpoints from other libraries into keras-hub presets."""

from __future__ import annotations

import click

from softprompt.cli.common import FilePath, backend_option, user_errors


@click.group()
def convert():
    """Convert checkpoints of other libraries into keras-hub presets.

    \b
    Example:
        softprompt convert hf-t5 path/to/t5-base-lm-adapt ./my-t5-base-lm-adapt
    """


@convert.command("hf-t5")
@click.argument("src", type=FilePath(file_okay=False, path_type=str))
@click.argument("out", type=FilePath(path_type=str))
@click.option("--overwrite", is_flag=True, help="Replace OUT if it exists and is not empty.")
@click.option("--dtype", default=None, help="Dtype policy of the saved backbone (default float32).")
@backend_option
@user_errors
def hf_t5(src, out, overwrite, dtype):
    """Convert the Hugging Face T5 directory SRC into the keras-hub preset OUT.

    SRC holds config.json, model.safetensors (or sharded safetensors with their
    index, or pytorch_model.bin) and spiece.model, as transformers'
    save_pretrained writes them: T5 1.0, T5 1.1, the LM-adapted T5 1.1, Flan-T5, mT5.

    \b
    Example:
        softprompt convert hf-t5 path/to/t5-base-lm-adapt ./my-t5-base-lm-adapt
        softprompt train --preset ./my-t5-base-lm-adapt --task boolq --data path/to/BoolQ
    """
    from softprompt.core.interop.hf_t5 import conversion_record, convert_hf_t5

    path = convert_hf_t5(src, out, overwrite=overwrite, dtype=dtype)
    record = conversion_record(path)
    head = "tied" if record.get("tie_embedding_weights") else "untied"
    click.echo(
        f"converted {src} ({record.get('model_type')}, {record.get('feed_forward_proj')}, "
        f"{head} LM head, {record.get('num_layers')} layers, d={record.get('hidden_dim')}) "
        f"-> {path}"
    )
