"""Prompt files: np.save payload + JSON sidecar."""

from __future__ import annotations

import json
import os

import keras
import numpy as np
import pytest

from softprompt.core.files import load_prompt, save_prompt, sidecar_path
from softprompt.core.model import PromptedT5


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
