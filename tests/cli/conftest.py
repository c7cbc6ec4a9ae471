"""Fixtures of the command-line tests: a tiny task written here, one short training run.

Every command runs in-process through click's `CliRunner` (same backend as the
test session, ``KERAS_BACKEND``); a few tests start real subprocesses.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from task_helpers import TASK, TRAIN, reuse_compilations, write_task


@pytest.fixture(scope="session")
def runner():
    return CliRunner()


@pytest.fixture(scope="session")
def cli():
    from softprompt.cli.main import cli as group

    return group


@pytest.fixture(scope="session")
def task_dir(tmp_path_factory) -> Path:
    reuse_compilations(tmp_path_factory.getbasetemp() / "jax-compilation-cache")
    return write_task(tmp_path_factory.mktemp("task"))


@pytest.fixture(scope="session")
def trained(tmp_path_factory, runner, cli, preset_v11, task_dir) -> Path:
    """``softprompt train`` for 4 steps with decode evaluation at steps 2 and 4."""
    out = tmp_path_factory.mktemp("run") / "out"
    result = runner.invoke(cli, ["train", "--preset", preset_v11, *TASK, "--data", str(task_dir),
                                 *TRAIN, "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out
