"""Prompt files: np.save payload + JSON sidecar."""

from __future__ import annotations

import json
import os

import keras
import numpy as np
import pytest

from softprompt.core.io.prompt_files import load_prompt, save_prompt, sidecar_path
from softprompt.core.model.prompted_t5 import PromptedT5


def test_round_trip_with_sidecar(tmp_path):
    prompt = np.random.default_rng(0).normal(size=(5, 16)).astype(np.float32)
    path = save_prompt(tmp_path / "best.npy", prompt, task="boolq", step=1000,
                       metrics={"accuracy": np.float32(71.5)})
    array, meta = load_prompt(path)
    np.testing.assert_array_equal(array, prompt)
    assert meta["task"] == "boolq" and meta["step"] == 1000 and meta["metrics"]["accuracy"] == 71.5
    assert meta["shape"] == [5, 16] and "softprompt_version" in meta
    assert sidecar_path(path) == tmp_path / "best.json"
    # the payload is exactly what np.save writes
    assert np.array_equal(np.load(path, allow_pickle=False), prompt)
    assert sorted(os.listdir(tmp_path)) == ["best.json", "best.npy"]  # no temp files left


def test_official_file_without_extension(tmp_path):
    """The official code's released prompts: an .npy payload, no extension, no sidecar."""
    prompt = np.random.default_rng(1).normal(size=(100, 16)).astype(np.float32)
    with open(tmp_path / "boolq_prompt", "wb") as f:
        np.save(f, prompt)
    array, meta = load_prompt(tmp_path / "boolq_prompt")
    np.testing.assert_array_equal(array, prompt)
    assert meta == {}
    save_prompt(tmp_path / "copy", prompt)
    assert (tmp_path / "copy").is_file() and (tmp_path / "copy.json").is_file()


def test_refuses_pickles_and_bad_arrays(tmp_path):
    with open(tmp_path / "obj.npy", "wb") as f:
        np.save(f, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="obj.npy"):
        load_prompt(tmp_path / "obj.npy")
    with open(tmp_path / "ints.npy", "wb") as f:
        np.save(f, np.zeros((3, 4), np.int32))
    with pytest.raises(ValueError, match="dtype int32, expected a float array"):
        load_prompt(tmp_path / "ints.npy")
    with open(tmp_path / "vec.npy", "wb") as f:
        np.save(f, np.zeros((4,), np.float32))
    with pytest.raises(ValueError, match=r"shape \(4,\), expected \(P, d\)"):
        load_prompt(tmp_path / "vec.npy")
    (tmp_path / "text.npy").write_text("not numpy")
    with pytest.raises(ValueError, match="text.npy"):
        load_prompt(tmp_path / "text.npy")
    with pytest.raises(FileNotFoundError, match="missing.npy does not exist"):
        load_prompt(tmp_path / "missing.npy")


def test_model_load_checks_hidden_size_and_fingerprint(preset_v10, preset_v11, tmp_path):
    a = PromptedT5.from_preset(preset_v10, prompt_length=4, seed=0)
    b = PromptedT5.from_preset(preset_v11, prompt_length=4, seed=1)
    path = a.save_prompt(tmp_path / "a.npy", task="demo")
    meta = json.loads((tmp_path / "a.json").read_text())
    assert meta["backbone"]["hidden_dim"] == a.backbone.hidden_dim
    assert meta["backbone"]["embedding_fingerprint"] == a.identity()["embedding_fingerprint"]
    assert meta["prompt_length"] == 4 and meta["task"] == "demo"
    with pytest.warns(UserWarning, match="fingerprint"):
        b.load_prompt(path)  # same hidden size, another backbone: warns, names both
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(b.prompt.embeddings), keras.ops.convert_to_numpy(a.prompt.embeddings)
    )
    wide = np.zeros((4, a.backbone.hidden_dim + 1), np.float32)
    with pytest.raises(ValueError, match=r"hidden size 17, the model's is 16"):
        a.load_prompt(wide)
    with pytest.raises(ValueError, match=r"has shape \(1, 3, 16\), the model's prompt is \(1, 4, 16\)"):
        a.load_prompt(np.zeros((3, 16), np.float32))


def test_non_finite_prompts_are_refused_with_the_count(tmp_path):
    prompt = np.random.default_rng(2).normal(size=(4, 16)).astype(np.float32)
    prompt[0, 3] = np.nan
    prompt[2, 5] = np.inf
    prompt[3, 0] = -np.inf
    save_prompt(tmp_path / "bad.npy", prompt, task="boolq")
    with pytest.raises(ValueError, match=r"prompt file .*bad\.npy holds 3 non-finite values"):
        load_prompt(tmp_path / "bad.npy")
    # float64 beyond float32's range would load as inf: refused as well
    with open(tmp_path / "huge.npy", "wb") as f:
        np.save(f, np.full((2, 16), 1e300))
    with pytest.raises(ValueError, match=r"huge\.npy holds 32 non-finite values"):
        load_prompt(tmp_path / "huge.npy")


def test_model_refuses_a_non_finite_prompt_array(preset_v10):
    model = PromptedT5.from_preset(preset_v10, prompt_length=4, seed=0)
    array = np.zeros((4, 16), np.float32)
    array[1, 2] = np.nan
    with pytest.raises(ValueError, match="prompt array holds 1 non-finite value"):
        model.load_prompt(array)


@pytest.mark.parametrize("content,reason", [
    (b"garbage bytes, not numpy", "not a numpy file"),
    (b"", "empty"),
    (b"PK\x03\x04 an archive", "zip archive"),
    (b"\x80\x04\x95 a pickle", "never loads pickles"),
    (b"\x93NUMPY\x01\x00\x10\x00{'descr': '<f4'", "damaged .npy header"),
])
def test_unreadable_prompt_files_say_why_and_never_suggest_pickles(tmp_path, content, reason):
    (tmp_path / "p.npy").write_bytes(content)
    with pytest.raises(ValueError) as info:
        load_prompt(tmp_path / "p.npy")
    message = str(info.value)
    assert str(tmp_path / "p.npy") in message and reason in message, message
    assert "allow_pickle" not in message and "unsafe" not in message


def test_truncated_prompt_file_is_named_before_anything_is_allocated(tmp_path):
    with open(tmp_path / "t.npy", "wb") as f:
        np.save(f, np.zeros((100, 16), np.float32))
    data = (tmp_path / "t.npy").read_bytes()
    (tmp_path / "t.npy").write_bytes(data[:-10])
    with pytest.raises(ValueError, match=r"t\.npy is truncated: its header promises 6400 bytes"):
        load_prompt(tmp_path / "t.npy")
    # a forged header asking for terabytes is refused the same way, at once
    with open(tmp_path / "t.npy", "wb") as f:
        np.lib.format.write_array_header_1_0(
            f, {"descr": "<f4", "fortran_order": False, "shape": (10**12, 16)})
        f.write(bytes(64))
    with pytest.raises(ValueError, match="header promises 64000000000000 bytes of data, the "
                                         "file holds 64"):
        load_prompt(tmp_path / "t.npy")


@pytest.mark.parametrize("sidecar,fragment", [
    (b"[1, 2]", "holds a list, expected a JSON object"),
    (b"\xff\xfe{}", "is not UTF-8 text"),
    (b'{"task": 3}', "field 'task' must be a string"),
    (b'{"eval_batch_size": "32"}', "field 'eval_batch_size' must be a positive integer"),
    (b'{"backbone": "t5"}', "field 'backbone' must be an object"),
    (b'{"backbone": {"preset": 1}}', "field 'backbone.preset' must be a string"),
    (b'{"labels": ["a", 1]}', "field 'labels' must be a list of strings"),
    (b"[" * 100000, "is not valid JSON"),
])
def test_damaged_sidecars_are_one_line_errors(tmp_path, sidecar, fragment):
    save_prompt(tmp_path / "p.npy", np.zeros((2, 16), np.float32))
    (tmp_path / "p.json").write_bytes(sidecar)
    with pytest.raises(ValueError, match="prompt sidecar .*p.json") as info:
        load_prompt(tmp_path / "p.npy")
    assert fragment in str(info.value)
