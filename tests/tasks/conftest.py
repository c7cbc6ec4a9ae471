"""Fixture writers for the task tests: every source file is written here, from the test's text."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest


def jsonl(records) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


@pytest.fixture
def write(tmp_path):
    """``write("BoolQ/val.jsonl", [records])`` or ``write("x.tsv", "text")`` → the file's Path.

    A list is written as JSONL, a dict as a JSON document, a string as is; ``*.gz`` is gzipped.
    """

    def _write(relpath: str, content) -> Path:
        path = tmp_path / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, list):
            text = jsonl(content)
        elif isinstance(content, dict):
            text = json.dumps(content, indent=1)
        else:
            text = content
        data = text.encode("utf-8")
        path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
        return path

    return _write


def error_of(exc_info) -> str:
    """The message of a raised error, checked to be one line."""
    message = str(exc_info.value)
    assert "\n" not in message, message
    return message


@pytest.fixture
def one_line():
    """``one_line(exc_info)`` → the error message, asserted to be a single line."""
    return error_of
