"""Misuse, end to end: two runs in one folder, unreadable checkpoints, non-finite prompts, full disks.

Each test drives the commands as a user would (click's runner in this process, real
subprocesses where two processes or a real full file system are the point).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from task_helpers import TASK, TRAIN, start_holder
from test_cli import assert_user_error, error_lines

import softprompt
from softprompt.core.io.prompt_files import load_prompt, save_prompt
from softprompt.core.training import state as train_state

ROOT = Path(softprompt.__file__).resolve().parents[1]  # the code under test, for subprocesses
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3",
       "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}


def wait_for(predicate, timeout=600.0, proc=None, log=None):
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the process ended early: {log.read_text() if log else ''}")
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def check_readable(out, step: int) -> None:
    """Every file of the checkpoint of `step` reads."""
    load_prompt(train_state.prompt_path(out, step))
    with np.load(train_state.state_path(out, step), allow_pickle=False) as data:
        assert "record" in data.files


def train_steps(out) -> list[int]:
    return [json.loads(x)["step"] for x in (out / "metrics.jsonl").read_text().splitlines()]


# ---------------------------------------------------------------------- one run per folder


def test_a_second_training_into_a_held_folder_is_refused(runner, cli, preset_v11, task_dir,
                                                         tmp_path):
    """Two real `softprompt train --out same`: the second is refused while the first runs;
    once the first is killed, its stale lock is named and taken over by a resume."""
    out = tmp_path / "run"
    args = ["train", "--preset", preset_v11, *TASK, "--data", str(task_dir), *TRAIN]
    args[args.index("--steps") + 1] = "100000"
    log = tmp_path / "first.log"
    with open(log, "w") as sink:
        first = subprocess.Popen([sys.executable, "-m", "softprompt.cli.main", *args, "--out",
                                  str(out)], env=ENV, stdout=sink, stderr=sink)
    try:
        wait_for(lambda: (out / "checkpoints" / train_state.LATEST).is_file(), proc=first,
                 log=log)
        for extra in ([], ["--resume"]):
            second = runner.invoke(cli, [*args, "--out", str(out), *extra])
            assert_user_error(second, str(out), f"pid {first.pid} on ", "in use")
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=60)
    step = train_state.latest(out)["step"]
    third = runner.invoke(cli, ["train", "--out", str(out), "--resume", "--steps",
                                str(step + 1), "--quiet"])
    assert third.exit_code == 0, third.output
    assert f"pid {first.pid} on " in third.stderr and "no longer running" in third.stderr
    assert train_steps(out)[-1] == step + 1
    assert not (out / ".softprompt.lock").exists()


def test_adapt_refuses_a_held_run_folder(runner, cli, tmp_path):
    corpus = tmp_path / "lm.txt"
    corpus.write_text("the quick brown fox\n" * 20)
    workdir = tmp_path / "adapt-run"
    holder = start_holder(workdir)
    try:
        result = runner.invoke(cli, ["adapt", "--from-config", "test", "--corpus", str(corpus),
                                     "--out", str(tmp_path / "preset"), "--workdir",
                                     str(workdir)])
        assert_user_error(result, str(workdir), f"pid {holder.pid} on ")
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)


# ---------------------------------------------------------------------- unreadable checkpoints


def test_an_unreadable_checkpoint_names_the_file_and_offers_the_previous_one(
        runner, cli, trained, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(trained, out)
    (out / "checkpoints" / "state-4.npz").write_bytes(b"garbage where a checkpoint was")
    result = runner.invoke(cli, ["train", "--out", str(out), "--resume", "--steps", "6"])
    assert_user_error(result, "checkpoints/state-4.npz", "not a .npz archive",
                      "previous complete checkpoint is step 2", "--resume-from-last-good")
    assert "pickle" not in result.stderr

    result = runner.invoke(cli, ["train", "--out", str(out), "--resume-from-last-good",
                                 "--quiet"])
    assert result.exit_code == 0, result.output
    assert "resuming from step 2" in result.stderr
    assert train_steps(out) == [2, 4]
    # resumed from step 2, the run computes step 4 again exactly as the uninterrupted one did
    np.testing.assert_array_equal(load_prompt(out / "checkpoints/step-4.npy")[0],
                                  load_prompt(trained / "checkpoints/step-4.npy")[0])
    check_readable(out, 4)


def test_a_damaged_commit_record_offers_the_newest_complete_checkpoint(runner, cli, trained,
                                                                       tmp_path):
    out = tmp_path / "run"
    shutil.copytree(trained, out)
    (out / "checkpoints" / "latest.json").write_bytes(b"\x00\x00\x00")
    result = runner.invoke(cli, ["train", "--out", str(out), "--resume", "--steps", "6"])
    assert_user_error(result, "latest.json", "damaged", "step 4", "--resume-from-last-good")
    (out / "checkpoints" / "step-4.npy").write_bytes(b"")
    result = runner.invoke(cli, ["train", "--out", str(out), "--resume", "--steps", "6"])
    assert_user_error(result, "latest.json", "step 2")


# ---------------------------------------------------------------------- non-finite prompts


@pytest.fixture
def nan_prompt(trained, tmp_path):
    """best.npy with one NaN and one inf, its sidecar kept."""
    array, meta = load_prompt(trained / "best.npy")
    array[0, 1], array[2, 3] = np.nan, -np.inf
    meta.pop("shape")
    return save_prompt(tmp_path / "nan.npy", array, **meta)


@pytest.mark.parametrize("command", ["eval", "predict", "ensemble", "export-peft",
                                     "export-official", "neighbors", "init-file", "import"])
def test_every_command_refuses_a_non_finite_prompt(runner, cli, preset_v11, task_dir, trained,
                                                   nan_prompt, tmp_path, command):
    requests = tmp_path / "in.jsonl"
    requests.write_text('{"text": "review: good"}\n')
    good = str(trained / "best.npy")
    bad = str(nan_prompt)
    args = {
        "eval": ["eval", "--prompt", bad, "--data", str(task_dir)],
        "predict": ["predict", "--prompt", bad, "--input", str(requests)],
        "ensemble": ["ensemble", "--prompt", good, "--prompt", bad, "--data", str(task_dir)],
        "export-peft": ["export", bad, "--to", "peft", str(tmp_path / "adapter")],
        "export-official": ["export", bad, "--to", "official", str(tmp_path / "official")],
        "neighbors": ["neighbors", bad],
        "init-file": ["train", "--preset", preset_v11, *TASK, "--data", str(task_dir), *TRAIN,
                      "--init", "file", "--init-file", bad, "--out", str(tmp_path / "run")],
    }.get(command)
    where = f"prompt file {bad}"
    if command == "import":  # a PEFT adapter holding NaN
        from safetensors.numpy import save_file

        adapter = tmp_path / "adapter"
        result = runner.invoke(cli, ["export", good, "--to", "peft", str(adapter)])
        assert result.exit_code == 0, result.output
        array = np.load(good).copy()
        array[0, 0] = np.nan
        save_file({"prompt_embeddings": array}, str(adapter / "adapter_model.safetensors"))
        args, where = ["import", str(adapter), str(tmp_path / "imported.npy")], str(adapter)
    result = runner.invoke(cli, args)
    count = "1 non-finite value" if command == "import" else "2 non-finite values"
    assert_user_error(result, where, count, "NaN or inf")
    written = {"export-peft": "adapter", "export-official": "official", "import": "imported.npy",
               "init-file": "run"}.get(command)
    assert written is None or not (tmp_path / written).exists()


# ---------------------------------------------------------------------- full disk


class _FullDiskFile:
    """A file whose writes fail with ENOSPC once `room` bytes have been written."""

    def __init__(self, f, room: int):
        self._f, self._room = f, room

    def write(self, data):
        if len(data) > self._room:
            self._f.write(data[: self._room])
            self._room = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self._room -= len(data)
        return self._f.write(data)

    def __getattr__(self, name):
        return getattr(self._f, name)


@pytest.mark.parametrize("full_at", ["state-4.npz", "step-4.npy", "latest.json"])
def test_a_full_disk_keeps_the_last_checkpoint_and_resume_works(
        runner, cli, preset_v11, task_dir, trained, tmp_path, monkeypatch, full_at):
    """The write of one file of step 4's checkpoint fails with ENOSPC halfway through."""
    from softprompt.core.io import atomic
    from softprompt.core.io import prompt_files as files

    real = atomic.atomic_write

    def step_4(path):  # latest.json is rewritten at every step: fail its commit of step 4
        path = Path(path)
        return path.name == full_at and (full_at != "latest.json"
                                         or (path.parent / "state-4.npz").exists())

    @contextlib.contextmanager
    def atomic_write(path, mode="wb"):
        with real(path, mode) as f:
            yield _FullDiskFile(f, 100) if step_4(path) else f

    for module in (train_state, files):
        monkeypatch.setattr(module, "atomic_write", atomic_write)
    out = tmp_path / "run"
    args = ["train", "--preset", preset_v11, *TASK, "--data", str(task_dir), *TRAIN]
    result = runner.invoke(cli, [*args, "--out", str(out)])
    assert result.exit_code == 1, result.output
    lines = error_lines(result.stderr)
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"Error: no space left on the device of {out / 'checkpoints'}")
    assert "it needs about " in lines[0] and " free there" in lines[0]
    assert "the checkpoint of step 2 is intact" in lines[0] and "--resume" in lines[0]
    assert train_state.latest(out)["step"] == 2
    check_readable(out, 2)  # the previous checkpoint reads completely
    assert not list((out / "checkpoints").glob(".*.tmp"))  # no half-written file is left
    monkeypatch.undo()

    result = runner.invoke(cli, ["train", "--out", str(out), "--resume", "--quiet"])
    assert result.exit_code == 0, result.output
    assert train_steps(out) == [2, 4]
    np.testing.assert_array_equal(load_prompt(out / "checkpoints/step-4.npy")[0],
                                  load_prompt(trained / "checkpoints/step-4.npy")[0])


FILL_AND_TRAIN = """
import json, os, sys
from softprompt.core.training import state as train_state
from softprompt.cli.main import cli

mount, args = sys.argv[1], json.loads(sys.argv[2])
real_save_state = train_state.save_state


def fill(path):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    for size in (1 << 16, 1 << 12, 1):
        try:
            while True:
                os.write(fd, bytes(size))
        except OSError as err:
            assert err.errno == 28, err
    os.close(fd)


def save_state(out, step, model, record):
    if step == 4:  # the disk fills up just before step 4's optimizer state is written
        fill(os.path.join(mount, "filler"))
    return real_save_state(out, step, model, record)


train_state.save_state = save_state
codes = []
for attempt in (args, ["train", "--out", args[args.index("--out") + 1], "--resume", "--quiet"]):
    print("--- attempt", file=sys.stderr, flush=True)
    try:
        cli.main(attempt, prog_name="softprompt")
    except SystemExit as stop:
        codes.append(stop.code or 0)
    if os.path.exists(os.path.join(mount, "filler")):
        os.unlink(os.path.join(mount, "filler"))
        train_state.save_state = real_save_state
print(json.dumps(codes))
"""


def test_a_really_full_tmpfs(preset_v11, task_dir, trained, tmp_path):
    """The same on a real 8 MiB tmpfs (in a private mount namespace), filled to the last byte
    just before step 4's state is written: the kernel's ENOSPC, not a patched write."""
    unshare = shutil.which("unshare")
    mount = tmp_path / "mnt"
    mount.mkdir()
    probe = subprocess.run([unshare or "unshare", "-rm", "sh", "-c",
                            f"mount -t tmpfs -o size=8m tmpfs {mount}"], capture_output=True)
    if unshare is None or probe.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (unshare -rm and mount are needed)")
    script = tmp_path / "fill_and_train.py"
    script.write_text(textwrap.dedent(FILL_AND_TRAIN))
    out = mount / "run"
    args = ["train", "--preset", preset_v11, *TASK, "--data", str(task_dir), *TRAIN,
            "--out", str(out)]
    q = shlex.quote
    inner = (f"mount -t tmpfs -o size=8m tmpfs {q(str(mount))} || exit 99; "
             f"{q(sys.executable)} {q(str(script))} {q(str(mount))} {q(json.dumps(args))}; "
             f"status=$?; cp -r {q(str(out))} {q(str(tmp_path / 'copy'))}; exit $status")
    done = subprocess.run([unshare, "-rm", "sh", "-c", inner], capture_output=True, text=True,
                          timeout=900, env=ENV, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == [1, 0], done.stderr
    # TensorFlow's AutoGraph warns (three lines) when a fresh process first traces the train
    # step under the tensorflow backend; that is the framework's output, not softprompt's.
    autograph = ("WARNING:tensorflow:AutoGraph could not transform", "Cause: Unable to locate",
                 "To silence this warning")
    first = [line for line in error_lines(done.stderr.split("--- attempt")[1])
             if not line.startswith(autograph)]
    assert len(first) == 1 and first[0].startswith(
        f"Error: no space left on the device of {out / 'checkpoints'}"), first
    assert "the checkpoint of step 2 is intact" in first[0]
    copy = tmp_path / "copy"
    assert train_steps(copy) == [2, 4]
    np.testing.assert_array_equal(load_prompt(copy / "checkpoints/step-4.npy")[0],
                                  load_prompt(trained / "checkpoints/step-4.npy")[0])
