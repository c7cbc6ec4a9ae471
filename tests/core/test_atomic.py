"""Atomic writes of files and directories: complete or not there at all."""

from __future__ import annotations

import json
import os

import pytest

from softprompt.core.io.atomic import atomic_directory, atomic_write
from softprompt.core.io.json_files import read_directory_json


def test_a_failed_file_write_leaves_the_old_file(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("old")
    with pytest.raises(RuntimeError), atomic_write(path, "w") as f:
        f.write("new")
        raise RuntimeError("killed")
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["a.txt"]


def test_a_directory_replaces_the_old_one_only_when_complete(tmp_path):
    target = tmp_path / "preset"
    target.mkdir()
    (target / "old.json").write_text("{}")
    with pytest.raises(RuntimeError), atomic_directory(target) as tmp:
        (tmp / "half.json").write_text("{")
        raise RuntimeError("killed")
    assert sorted(os.listdir(tmp_path)) == ["preset"]
    assert os.listdir(target) == ["old.json"]
    with atomic_directory(target) as tmp:
        (tmp / "new.json").write_text("{}")
    assert sorted(os.listdir(tmp_path)) == ["preset"]
    assert os.listdir(target) == ["new.json"]
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o777 & ~umask  # not the temporary dir's 0700


def test_a_librarys_directory_json_errors_name_the_directory_and_line(tmp_path):
    with pytest.raises(FileNotFoundError, match="PEFT adapter directory .* does not exist"):
        read_directory_json(tmp_path / "none", "adapter_config.json", "PEFT adapter")
    with pytest.raises(FileNotFoundError, match="has no adapter_config.json: not a PEFT"):
        read_directory_json(tmp_path, "adapter_config.json", "PEFT adapter")
    (tmp_path / "adapter_config.json").write_text('{"a": 1,\n  oops}')
    with pytest.raises(ValueError, match=r"adapter_config.json is not valid JSON \(line 2\)"):
        read_directory_json(tmp_path, "adapter_config.json", "PEFT adapter")
    (tmp_path / "adapter_config.json").write_text(json.dumps({"a": 1}))
    assert read_directory_json(tmp_path, "adapter_config.json", "PEFT adapter") == {"a": 1}
