"""Fixtures of the library tests: the tiny task the training tests share."""

from __future__ import annotations

import pytest
from task_helpers import reuse_compilations, write_task


@pytest.fixture(scope="session")
def task_dir(tmp_path_factory):
    """A tiny jsonl task (`task_helpers.write_task`), written once per session."""
    reuse_compilations(tmp_path_factory.getbasetemp() / "jax-compilation-cache")
    return write_task(tmp_path_factory.mktemp("task"))
