"""``softprompt predict``: mixed-task inference, many prompts over one frozen model."""

from __future__ import annotations

import json
from pathlib import Path

import click

from softprompt.cli.common import FilePath, backend_option, dtype_option, user_errors
from softprompt.core.inference.methods import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_MAX_INPUT_LENGTH,
    METHODS,
)
from softprompt.core.io.atomic import atomic_write
from softprompt.tasks import readers


def prompt_files(specs) -> dict[str, Path]:
    """``NAME=FILE`` specs (or directories of ``*.npy`` prompts) -> {name: file}."""
    found: dict[str, Path] = {}
    for spec in specs:
        if "=" in spec:
            name, path = spec.split("=", 1)
            name, path = name.strip(), Path(path)
            if not name:
                raise ValueError(f"--prompt {spec!r}: the name before '=' is empty")
            if not path.is_file():
                raise FileNotFoundError(f"--prompt {spec!r}: {path} is not a file")
            entries = [(name, path)]
        else:
            path = Path(spec)
            if path.is_dir():
                entries = [(p.stem, p) for p in sorted(path.glob("*.npy"))]
                if not entries:
                    raise FileNotFoundError(f"--prompt {path}: no .npy prompt files in it")
            elif path.is_file():
                entries = [(path.stem, path)]
            else:
                raise FileNotFoundError(f"--prompt {spec!r}: no such file or directory")
        for name, file in entries:
            if name in found:
                raise ValueError(f"two prompts are named {name!r}: use NAME=FILE to rename one")
            found[name] = file
    if not found:
        raise ValueError("no prompts given: pass --prompt NAME=FILE (repeatable) or a directory")
    return found


def read_requests(path) -> list[tuple[str, dict]]:
    """``(where, record)`` per non-blank line of the input JSONL (as task files are read)."""

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"input file {path} does not exist")
    out = list(readers.iter_jsonl(path))
    if not out:
        raise ValueError(f"input file {path} holds no requests")
    return out


@click.command("predict")
@backend_option
@dtype_option
@click.option("--prompt", "prompt_specs", multiple=True, required=True,
              help="NAME=FILE (repeatable), or a prompt file, or a directory of prompt files "
                   "(named by file stem).")
@click.option("--input", "input_path", required=True, type=FilePath(dir_okay=False),
              help="JSONL requests: {\"prompt\": NAME, \"text\": ...} or task fields.")
@click.option("--output", default="-", show_default=True,
              help="JSONL predictions ('-': stdout).")
@click.option("--method", type=click.Choice(METHODS), default="decode",
              show_default=True)
@click.option("--batch-size", type=int, default=DEFAULT_BATCH_SIZE, show_default=True)
@click.option("--preset", default=None,
              help="The frozen model (default: the one the prompts' sidecars name).")
@click.option("--allow-mismatch", is_flag=True,
              help="Use --preset even if a sidecar names another model.")
@click.option("--max-input-length", type=int, default=DEFAULT_MAX_INPUT_LENGTH,
              show_default=True)
@click.option("--max-target-length", type=int, default=None,
              help="Tokens to decode (default: each prompt's training setting, else 32).")
@user_errors
def predict(prompt_specs, input_path, output, method, batch_size, preset, allow_mismatch,
            max_input_length, max_target_length):
    """Predict with several prompts at once over one frozen model.

    Each input line names its prompt ("prompt"; optional with one prompt) and
    gives either the model's input text ("text") or the fields of the
    prompt's task (the task is the line's "task", else the one in the
    prompt's sidecar), which is formatted and its prediction postprocessed.
    Lines for different prompts share batches. Rank classification scores
    the line's "candidates", else the task's.

    \b
    Example:
        softprompt predict --prompt boolq=runs/boolq/best.npy --prompt rte=runs/rte/best.npy \\
            --input path/to/requests.jsonl --output predictions.jsonl
        # requests.jsonl:
        # {"prompt": "boolq", "passage": "...", "question": "..."}
        # {"prompt": "rte", "text": "hypothesis: ... premise: ..."}
    """
    from softprompt.core.inference import predict as pr

    if batch_size < 1:
        raise ValueError(f"--batch-size must be at least 1, got {batch_size}")
    files = prompt_files(prompt_specs)
    requests = read_requests(input_path)
    results = pr.predict_requests(files, requests, method=method, batch_size=batch_size,
                                  preset=preset, allow_mismatch=allow_mismatch,
                                  max_input_length=max_input_length,
                                  max_target_length=max_target_length)
    lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in results)
    if output == "-":
        click.echo(lines, nl=False)
    else:
        with atomic_write(Path(output), "w") as f:
            f.write(lines)
        click.echo(f"{len(results)} predictions -> {output}", err=True)
