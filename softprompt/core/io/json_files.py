"""The JSON file that names what a directory of another library holds.

A Hugging Face model directory has ``config.json``, a PEFT adapter directory
``adapter_config.json``; reading one checks the directory, the file and the
JSON with one-line errors that name them.

Example:
    >>> config = read_directory_json("checkpoints/t5-small", "config.json", "Hugging Face model")
"""

from __future__ import annotations

import json
import os
from pathlib import Path


def read_directory_json(directory: str | os.PathLike, name: str, kind: str):
    """The parsed JSON file `name` of the `kind` directory `directory`.

    Raises `FileNotFoundError` for a missing directory or file and `ValueError`
    (with the file and line) for invalid JSON or JSON that is not an object.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"{kind} directory {directory} does not exist")
    path = directory / name
    if not path.is_file():
        raise FileNotFoundError(f"{directory} has no {name}: not a {kind} directory")
    try:
        value = json.loads(path.read_bytes().decode("utf-8-sig"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON (line {err.lineno})") from None
    except (ValueError, RecursionError) as err:  # not UTF-8, nested too deeply, huge numbers
        raise ValueError(f"{path} is not valid JSON ({type(err).__name__})") from None
    if not isinstance(value, dict):
        raise ValueError(f"{path} holds a {type(value).__name__}, expected a JSON object")
    return value


def read_object_or_nothing(directory: str | os.PathLike, name: str) -> dict:
    """The JSON object in `directory`/`name`, or ``{}`` when it is missing or unreadable
    (for records a directory may hold, such as a preset's ``conversion.json``).

    Example:
        >>> read_object_or_nothing("runs/mt/best", "softprompt.json").get("metrics")
    """
    try:
        return read_directory_json(directory, name, "")
    except (FileNotFoundError, ValueError):
        return {}
