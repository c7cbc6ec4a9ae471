"""``scripts/check_main_command.py`` (CI's check of ``softprompt train``) passes a complete run
and fails one that lacks a promised output."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import keras
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "check_main_command.py"


@pytest.fixture(scope="module")
def checker():
    spec = importlib.util.spec_from_file_location("check_main_command", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def failures(checker, root, code=0, stderr=""):
    checks = checker.Checks(keras.backend.backend())
    checker.check_outputs(checks, root, code, stderr)
    return checks.failed


def test_a_complete_run_passes(checker, trained, tmp_path):
    shutil.copytree(trained, tmp_path / "runs" / "x")
    assert failures(checker, tmp_path) == []


@pytest.mark.parametrize("damage", ["curve.png", "tensorboard", "checkpoints/step-4.npy",
                                    "metrics.jsonl", "train.csv", "best.npy"])
def test_a_missing_output_fails(checker, trained, tmp_path, damage):
    run = tmp_path / "runs" / "x"
    shutil.copytree(trained, run)
    target = run / damage
    shutil.rmtree(target) if target.is_dir() else target.unlink()
    assert failures(checker, tmp_path)


def test_events_without_the_dev_metric_fail(checker, trained, tmp_path):
    run = tmp_path / "runs" / "x"
    shutil.copytree(trained, run)
    for events in (run / "tensorboard").glob("events.out.tfevents.*"):
        events.write_bytes(b"")
    assert any("dev/accuracy" in name for name in failures(checker, tmp_path))


def test_a_failed_command_or_a_missing_tensorboard_fails(checker, trained, tmp_path):
    shutil.copytree(trained, tmp_path / "runs" / "x")
    assert "exit code 0" in failures(checker, tmp_path, code=1)
    warning = "UserWarning: tensorboard is not installed: no TensorBoard events are written"
    assert "TensorBoard available" in failures(checker, tmp_path, stderr=warning)
