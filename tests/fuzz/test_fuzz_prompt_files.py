"""Fuzzed prompt files, sidecars, PEFT adapters, checkpoints and Hugging Face configs.

Each reader returns what the file holds, checked (a finite float prompt, a sidecar of the
expected fields), or raises a user error naming the file; never a pickle, never numpy's
advice to load one. numpy, json and safetensors only: no framework is imported.
"""

from __future__ import annotations

import io
import json
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from fuzzing import budget, edges, expect_clean, file_with, json_values, mutated
from hypothesis import given
from hypothesis import strategies as st

from softprompt.core.interop.hf_t5 import read_hf_config
from softprompt.core.interop.peft import read_peft
from softprompt.core.io.prompt_files import load_prompt, read_sidecar
from softprompt.core.training import state as train_state
from softprompt.core.training.checkpoint_recovery import (
    UnreadableCheckpoint,
    read_state,
    resume_step,
)

DTYPES = ["<f4", ">f4", "<f2", "<f8", "<i4", "|u1", "|b1", "<c8", "|O", "<U3", "|V4", "|S0",
          "<M8[s]", "[('a', '<f4')]", "('<f4', (2,))"]


@st.composite
def npy_files(draw):
    """An .npy file: a real one (maybe holding NaN/inf), one with a forged header, or junk."""
    kind = draw(st.sampled_from(["real", "forged", "junk"]))
    if kind == "junk":
        return draw(st.binary(max_size=300))
    if kind == "real":
        shape = draw(st.lists(st.integers(0, 5), min_size=0, max_size=4))
        dtype = draw(st.sampled_from(["<f4", ">f8", "<f2", "<i8"]))
        values = draw(st.lists(st.floats(allow_nan=True, allow_infinity=True, width=16),
                               min_size=int(np.prod(shape)), max_size=int(np.prod(shape))))
        array = np.array(values, dtype=np.float64).reshape(shape)
        buffer = io.BytesIO()
        with np.errstate(invalid="ignore", over="ignore"):
            np.save(buffer, array.astype(dtype), allow_pickle=False)
        data = buffer.getvalue()
        return data[: draw(st.integers(0, len(data)))] if draw(st.booleans()) else data
    header = {
        "descr": draw(st.sampled_from(DTYPES) | st.text(max_size=6)),
        "fortran_order": draw(st.booleans() | st.integers(-1, 2)),
        "shape": draw(st.lists(st.integers(-2, 10**12), max_size=4).map(tuple)
                      | st.text(max_size=4)),
    }
    text = draw(st.sampled_from([repr(header), repr(header)[:-3], "{}", "[]", "x" * 200]))
    version = draw(st.sampled_from([b"\x01\x00", b"\x02\x00", b"\x03\x00", b"\x09\x00"]))
    size = len(text) + 1
    length = size.to_bytes(2 if version == b"\x01\x00" else 4, "little")
    return (b"\x93NUMPY" + version + length + text.encode("latin1", "replace") + b"\n"
            + draw(st.binary(max_size=200)))


def _check_prompt(result, path):
    if result is None:
        return
    array, meta = result
    assert array.dtype == np.float32 and array.ndim in (2, 3) and array.size > 0
    assert np.isfinite(array).all() and isinstance(meta, dict)
    reference = np.load(path, allow_pickle=False)  # what numpy reads, for a file that loads
    np.testing.assert_array_equal(array, reference.astype(np.float32))


@budget(300)
@given(npy_files())
def test_prompt_payloads(data):
    with file_with("p.npy", data) as path:
        _check_prompt(expect_clean(lambda: load_prompt(path), path), path)


SIDECAR = {"task": "boolq", "task_args": {}, "labels": ["False", "True"], "eval_method": "rank",
           "eval_batch_size": 32, "max_input_length": 512, "max_target_length": 4,
           "step": 100, "metrics": {"accuracy": 71.0}, "prompt_length": 2,
           "backbone": {"preset": "t5_base", "hidden_dim": 3, "vocabulary_size": 100,
                        "embedding_fingerprint": "0123"}}


@budget(200)
@given(st.binary(max_size=200) | json_values().map(json.dumps) | mutated(SIDECAR).map(json.dumps))
def test_sidecars_and_their_use(sidecar):
    """Any sidecar: checked fields, or one line naming it; then what eval/predict read from it."""
    from softprompt.cli.common import make_task

    sidecar = sidecar.encode("utf-8", "surrogatepass") if isinstance(sidecar, str) else sidecar
    with tempfile.TemporaryDirectory() as tmp:
        np.save(Path(tmp) / "p.npy", np.ones((2, 3), np.float32))
        (Path(tmp) / "p.json").write_bytes(sidecar)
        loaded = expect_clean(lambda: load_prompt(Path(tmp) / "p.npy"), Path(tmp) / "p.json")
    if loaded is None:
        return
    meta = loaded[1]
    assert meta == read_sidecar_bytes(sidecar)
    task = expect_clean(lambda: make_task(None, meta=meta), "task")
    if task is not None:
        assert task.name == meta["task"].strip().lower()


def read_sidecar_bytes(data: bytes) -> dict:
    with file_with("s.json", data) as path:
        return read_sidecar(path)


ADAPTER = {"peft_type": "PROMPT_TUNING", "num_virtual_tokens": 2, "token_dim": 3,
           "num_transformer_submodules": 1, "task_type": "SEQ_2_SEQ_LM",
           "base_model_name_or_path": "t5-base"}


@st.composite
def safetensors_files(draw):
    from safetensors.numpy import save

    if draw(st.booleans()):
        return draw(st.binary(max_size=200))
    rows = draw(st.integers(0, 6))
    values = draw(st.lists(st.floats(allow_nan=True, width=32), min_size=rows * 3,
                           max_size=rows * 3))
    array = np.array(values, np.float32).reshape(rows, 3)
    name = draw(st.sampled_from(["prompt_embeddings", "other"]))
    metadata = {"softprompt": draw(st.text(max_size=20) | mutated(SIDECAR).map(json.dumps))}
    data = save({name: array}, metadata=metadata)
    return data[: draw(st.integers(0, len(data)))] if draw(st.booleans()) else data


@budget(120)
@given(st.binary(max_size=100) | mutated(ADAPTER).map(json.dumps), safetensors_files())
def test_peft_adapters(config, weights):
    with tempfile.TemporaryDirectory() as tmp:
        adapter = Path(tmp) / "adapter"
        adapter.mkdir()
        (adapter / "adapter_config.json").write_bytes(
            config.encode("utf-8", "surrogatepass") if isinstance(config, str) else config)
        (adapter / "adapter_model.safetensors").write_bytes(weights)
        result = expect_clean(lambda: read_peft(adapter), adapter)
    if result is not None:
        array, info = result
        assert array.dtype == np.float32 and array.shape == (info["num_virtual_tokens"],
                                                             info["token_dim"])
        assert np.isfinite(array).all() and isinstance(info["metadata"], dict)


@st.composite
def state_files(draw):
    """A state-N.npz: junk, a zip with fuzzed members, or a real one cut short."""
    kind = draw(st.sampled_from(["junk", "zip", "real"]))
    if kind == "junk":
        return draw(st.binary(max_size=200))
    buffer = io.BytesIO()
    record = draw(mutated({"step": 2, "variables": {"optimizer": ["a"], "seed": []}}))
    if kind == "real":
        np.savez(buffer, **{"optimizer/0000": np.zeros(3, np.float32),
                            "record": np.frombuffer(json.dumps(record).encode(), np.uint8)})
        data = buffer.getvalue()
        return data[: draw(st.integers(0, len(data)))]
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in draw(st.lists(st.sampled_from(["record.npy", "optimizer/0000.npy",
                                                   "x.txt"]), max_size=3)):
            archive.writestr(name, draw(npy_files()))
    return buffer.getvalue()


@budget(150)
@given(state_files(), st.binary(max_size=40) | mutated({"step": 2}).map(json.dumps))
def test_checkpoint_state_and_commit_record(state, latest):
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        folder = train_state.checkpoint_dir(out)
        folder.mkdir()
        np.save(folder / "step-2.npy", np.ones((2, 3), np.float32))
        (folder / "state-2.npz").write_bytes(state)
        (folder / "latest.json").write_bytes(
            latest.encode("utf-8", "surrogatepass") if isinstance(latest, str) else latest)
        arrays = expect_clean(lambda: read_state(folder / "state-2.npz"), folder / "state-2.npz")
        if arrays is not None:
            assert isinstance(arrays[1], dict)
        try:
            step = resume_step(out)
        except UnreadableCheckpoint as err:
            assert str(folder) in str(err) and "allow_pickle" not in str(err)
        except FileNotFoundError as err:
            assert str(out) in str(err)
        else:
            assert step == 2 and arrays is not None


HF_CONFIG = {"model_type": "t5", "d_model": 8, "d_ff": 16, "d_kv": 4, "num_heads": 2,
             "num_layers": 1, "num_decoder_layers": 1, "vocab_size": 32,
             "feed_forward_proj": "gated-gelu", "tie_word_embeddings": False,
             "layer_norm_epsilon": 1e-6, "relative_attention_num_buckets": 32,
             "relative_attention_max_distance": 128, "dropout_rate": 0.1}


@budget(150)
@given(st.binary(max_size=100) | mutated(HF_CONFIG).map(json.dumps)
       | st.fixed_dictionaries({}, optional={k: edges for k in HF_CONFIG}).map(json.dumps))
def test_hugging_face_configs(config):
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "config.json").write_bytes(
            config.encode("utf-8", "surrogatepass") if isinstance(config, str) else config)
        args = expect_clean(lambda: read_hf_config(tmp), tmp)
    if args is not None:
        for key in ("hidden_dim", "intermediate_dim", "num_heads", "vocabulary_size"):
            assert isinstance(args[key], int) and args[key] > 0, (key, args)


@pytest.mark.parametrize("junk", [b"", b"\x00" * 10])
def test_an_empty_adapter_weights_file_is_named(junk, tmp_path):
    (tmp_path / "adapter_config.json").write_text(json.dumps(ADAPTER))
    (tmp_path / "adapter_model.safetensors").write_bytes(junk)
    with pytest.raises(ValueError, match="adapter_model.safetensors"):
        read_peft(tmp_path)
