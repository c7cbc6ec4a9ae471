"""The prompt registry: what it serves, what it refuses (one log line naming the file)."""

from __future__ import annotations

import io
import json
import logging

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from softprompt.core.io.prompt_files import save_prompt
from softprompt.core.serving.registry import PromptRegistry, read_entry

MODEL = {"preset": "served", "hidden_dim": 8, "embedding_fingerprint": "f" * 16}


def _save(folder, name, array=None, **meta):
    array = np.ones((3, 8), np.float32) if array is None else array
    meta.setdefault("backbone", dict(MODEL))
    return save_prompt(folder / f"{name}.npy", array, **meta)


def _refusals(caplog):
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_serves_good_files_and_refuses_bad_ones_with_one_line_each(tmp_path, caplog):
    _save(tmp_path, "good", labels=["yes", "no"], max_target_length=3)
    _save(tmp_path, "stacked", np.ones((1, 3, 8), np.float32))  # (1, P, d) is one prompt
    _save(tmp_path, "narrow", np.ones((3, 4), np.float32))
    _save(tmp_path, "nan", np.full((3, 8), np.nan, np.float32))
    _save(tmp_path, "two", np.ones((2, 3, 8), np.float32))
    _save(tmp_path, "other", backbone={**MODEL, "embedding_fingerprint": "0" * 16})
    _save(tmp_path, "labels", labels="yes")
    (tmp_path / "garbage.npy").write_bytes(b"not a numpy file")
    np.save(tmp_path / "pickled.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with caplog.at_level(logging.INFO, logger="softprompt.serve"):
        table = PromptRegistry(tmp_path, MODEL).reload()
    assert table.names == ["good", "stacked"]
    good = table["good"]
    assert good.labels == ["yes", "no"] and good.max_target_length == 3
    assert good.array.shape == (3, 8) and table["stacked"].array.shape == (3, 8)
    assert len(good.sha256) == 64
    refused = _refusals(caplog)
    for name, why in [("narrow", "hidden size 4"), ("nan", "non-finite"), ("two", "2 prompts"),
                      ("other", "--allow-mismatch"), ("labels", "'labels'"),
                      ("garbage", "numpy"), ("pickled", "pickle")]:
        lines = [m for m in refused if f"{name}.npy" in m]
        assert len(lines) == 1, (name, refused)
        assert why in lines[0] and "\n" not in lines[0]
    assert len(refused) == 7


def test_allow_mismatch_serves_prompts_of_another_backbone(tmp_path):
    _save(tmp_path, "other", backbone={**MODEL, "embedding_fingerprint": "0" * 16})
    assert PromptRegistry(tmp_path, MODEL, allow_mismatch=True).reload().names == ["other"]


def test_reload_adds_replaces_removes_and_keeps_the_last_good_version(tmp_path, caplog):
    registry = PromptRegistry(tmp_path, MODEL)
    _save(tmp_path, "a")
    first = registry.reload()
    assert first.names == ["a"]
    assert registry.reload() is first  # nothing changed: the same table, nothing read
    _save(tmp_path, "b")
    second = registry.reload()
    assert second.names == ["a", "b"] and second.version == first.version + 1
    assert second["a"] is first["a"]  # unchanged files are not read again
    _save(tmp_path, "a", np.full((3, 8), 2.0, np.float32))
    third = registry.reload()
    assert third["a"].sha256 != first["a"].sha256 and float(third["a"].array[0, 0]) == 2.0
    (tmp_path / "a.npy").write_bytes(b"half a file")  # broken: the last good version stays
    with caplog.at_level(logging.INFO, logger="softprompt.serve"):
        fourth = registry.reload()
        assert registry.reload() is fourth  # the refused file is not read (or logged) again
    assert fourth["a"] is third["a"]
    assert len([m for m in _refusals(caplog) if "a.npy" in m and "still serving" in m]) == 1
    (tmp_path / "b.npy").unlink()
    assert registry.reload().names == ["a"]


def test_sidecar_written_by_hand_is_checked(tmp_path, caplog):
    path = _save(tmp_path, "x")
    sidecar = json.loads((tmp_path / "x.json").read_text())
    (tmp_path / "x.json").write_text(json.dumps({**sidecar, "max_target_length": 0}))
    with caplog.at_level(logging.INFO, logger="softprompt.serve"):
        assert PromptRegistry(tmp_path, MODEL).reload().names == []
    assert any("max_target_length" in m for m in _refusals(caplog))
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(ValueError, match="x.json"):
        read_entry(path, MODEL)


def _npy(array) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


ARRAYS = hnp.arrays(st.sampled_from([np.float32, np.float64, np.float16, np.int32, np.bool_]),
                    hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=9))
SIDECARS = st.one_of(
    st.none(), st.binary(max_size=60),
    st.builds(lambda d: json.dumps(d).encode(), st.dictionaries(
        st.sampled_from(["labels", "max_target_length", "backbone", "task"]),
        st.one_of(st.none(), st.integers(-2, 5), st.text(max_size=4),
                  st.lists(st.text(max_size=3), max_size=3),
                  st.fixed_dictionaries({"embedding_fingerprint": st.text(max_size=16)})))),
)


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=st.one_of(st.binary(max_size=200), ARRAYS.map(_npy)), sidecar=SIDECARS)
def test_any_file_is_served_or_refused_never_crash(tmp_path, payload, sidecar):
    """Whatever a prompt file and its sidecar hold, reading them gives an entry or a one-line
    ValueError naming the file."""
    path = tmp_path / "fuzz.npy"
    path.write_bytes(payload)
    side = tmp_path / "fuzz.json"
    if sidecar is None:
        side.unlink(missing_ok=True)
    else:
        side.write_bytes(sidecar)
    try:
        entry = read_entry(path, MODEL)
    except ValueError as err:
        assert "fuzz" in str(err) and "\n" not in str(err)
    else:
        assert entry.array.ndim == 2 and entry.array.shape[1] == 8
        assert entry.array.shape[0] >= 1 and np.isfinite(entry.array).all()
