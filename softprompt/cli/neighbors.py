"""``softprompt neighbors``: the vocabulary tokens nearest to each prompt vector."""

from __future__ import annotations

import click

from softprompt.cli.common import FilePath, backend_option, make_task, user_errors, write_json


@click.command("neighbors")
@backend_option
@click.argument("prompt", type=FilePath(dir_okay=False))
@click.option("--preset", default=None,
              help="The frozen model (default: the one the sidecar names).")
@click.option("-k", "k", type=int, default=5, show_default=True, help="Neighbours per position.")
@click.option("--task", default=None,
              help="Highlight this task's label words (default: the sidecar's labels).")
@click.option("--labels", default=None, help="Comma-separated label words to highlight.")
@click.option("--allow-mismatch", is_flag=True,
              help="Use --preset even if the sidecar names another model.")
@click.option("--output", type=FilePath(dir_okay=False), default=None,
              help="Also write the neighbours to this JSON file.")
@user_errors
def neighbors(prompt, preset, k, task, labels, allow_mismatch, output):
    """Show the top-k vocabulary tokens (cosine similarity) of each prompt position.

    Positions whose neighbours include a piece of a label word are marked
    with '*' (the paper's interpretability analysis).

    \b
    Example:
        softprompt neighbors runs/demo/best.npy -k 5     # after `softprompt train`
        softprompt neighbors path/to/official_prompt --preset ./my-t5-base-lm-adapt \\
            --task boolq --output neighbors.json
    """
    from softprompt.core.inference.neighbors import nearest_tokens
    from softprompt.core.inference.prompts import model_for_prompts

    if k < 1:
        raise ValueError(f"-k must be at least 1, got {k}")
    model, arrays, metas = model_for_prompts([prompt], preset, allow_mismatch)
    meta = metas[0]
    if labels is not None:
        words = [w.strip() for w in labels.split(",") if w.strip()]
    elif task is not None:
        words = make_task(task).labels or []
    else:
        words = meta.get("labels") or []
    rows = nearest_tokens(arrays[0], model.embedding_matrix(), model.tokenizer, k=k,
                          labels=words)
    width = len(str(len(rows) - 1))
    for row in rows:
        mark = "*" if row["labels"] else " "
        tokens = "  ".join(f"{t} ({s:.2f})" for t, s in zip(row["tokens"], row["similarities"]))
        line = f"{mark} {row['position']:>{width}}  {tokens}"
        if row["labels"]:
            line += f"   <- {', '.join(row['labels'])}"
            line = click.style(line, bold=True)
        click.echo(line)
    if words:
        hits = sum(bool(r["labels"]) for r in rows)
        click.echo(f"{hits} of {len(rows)} positions have a label word ({', '.join(words)}) "
                   f"among their {k} nearest tokens")
    if output:
        write_json(output, {"prompt": str(prompt), "k": k, "labels": words, "positions": rows})
