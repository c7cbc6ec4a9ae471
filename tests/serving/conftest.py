"""Fixtures of the serving tests: the embedded model, four prompts saved as training saves
them, and one engine shared by the in-process servers (whatever ``KERAS_BACKEND`` says)."""

from __future__ import annotations

import pytest
from serving_helpers import LIMITS, TASKS, write_prompt
from task_helpers import reuse_compilations


@pytest.fixture(scope="session")
def engine(tmp_path_factory):
    """The embedded model behind every in-process server (compiled shapes are shared)."""
    from softprompt.core.serving.engine import Engine

    reuse_compilations(tmp_path_factory.getbasetemp() / "jax-compilation-cache")
    return Engine.from_preset("softprompt_tiny", **LIMITS)


@pytest.fixture(scope="session")
def prompt_dir(tmp_path_factory, engine):
    """Five prompts of different lengths for the embedded model (`TASKS`)."""
    folder = tmp_path_factory.mktemp("prompts")
    for seed, (name, length) in enumerate(TASKS.items()):
        write_prompt(folder, name, engine.base, length, seed)
    return folder
