"""One process per run folder: a second process is refused, a crashed owner's lock is taken over.

The holders are real processes (``python -c`` holding `hold_run_folder`), so the
kernel's lock semantics are what is tested. No framework is imported.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
from task_helpers import start_holder

from softprompt.core.io import run_lock
from softprompt.core.io.run_lock import LOCK_NAME, Owner, RunFolderBusy, hold_run_folder


def test_a_second_process_is_refused_naming_the_folder_and_the_owner(tmp_path):
    folder = tmp_path / "run"
    holder = start_holder(folder)
    try:
        with pytest.raises(RunFolderBusy) as info, hold_run_folder(folder):
            pass
        message = str(info.value)
        assert str(folder) in message and f"pid {holder.pid} on " in message
        assert "\n" not in message
    finally:
        holder.stdin.close()
        assert holder.wait(timeout=60) == 0
    assert not (folder / LOCK_NAME).exists()  # a normal exit removes the lock file
    notes = []
    with hold_run_folder(folder, echo=notes.append):
        assert Owner.from_bytes((folder / LOCK_NAME).read_bytes()).pid == os.getpid()
    assert notes == []  # nothing stale after a clean exit


def test_the_lock_of_a_killed_process_is_taken_over_and_said_so(tmp_path):
    folder = tmp_path / "run"
    holder = start_holder(folder)
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=60)
    assert (folder / LOCK_NAME).exists()  # a crash leaves the file, not the lock
    notes = []
    with hold_run_folder(folder, echo=notes.append):
        pass
    assert len(notes) == 1 and f"pid {holder.pid} on " in notes[0], notes
    assert "no longer running" in notes[0] and str(folder) in notes[0]


def test_the_folder_it_created_is_removed_when_left_empty(tmp_path):
    with hold_run_folder(tmp_path / "new" / "run"):
        pass
    assert not (tmp_path / "new" / "run").exists()
    with hold_run_folder(tmp_path / "kept") as folder:
        (folder / "config.json").write_text("{}")
    assert sorted(os.listdir(tmp_path / "kept")) == ["config.json"]


def test_without_flock_the_owner_record_decides(tmp_path, monkeypatch):
    """Some cluster and FUSE file systems have no flock: the pid on this host decides."""
    monkeypatch.setattr(run_lock, "fcntl", None)
    folder = tmp_path / "run"
    folder.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (folder / LOCK_NAME).write_bytes(Owner(dead.pid, run_lock.socket.gethostname(), 0.0).to_bytes())
    notes = []
    with hold_run_folder(folder, echo=notes.append):
        with pytest.raises(RunFolderBusy, match=f"pid {os.getpid()} on "), hold_run_folder(folder):
            pass
    assert "no longer running" in notes[0]
    (folder / LOCK_NAME).write_bytes(Owner(1, "another-host", 0.0).to_bytes())
    with pytest.raises(RunFolderBusy, match=f"if that run is gone, delete {folder / LOCK_NAME}"):
        with hold_run_folder(folder):
            pass
