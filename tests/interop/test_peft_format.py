"""Prompt files to and from PEFT's adapter layout and the official layout (no transformers needed)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors.numpy import save_file

from softprompt.core.interop.official import export_official, select_prompt
from softprompt.core.interop.peft import export_peft, import_peft, read_peft
from softprompt.core.io.prompt_files import load_prompt, save_prompt

P, D = 5, 16
BACKBONE = {"preset": "tiny", "hidden_dim": D, "vocabulary_size": 120,
            "embedding_fingerprint": "0123456789abcdef"}


@pytest.fixture
def prompt_file(tmp_path):
    array = np.random.default_rng(0).uniform(-0.5, 0.5, (P, D)).astype(np.float32)
    path = save_prompt(tmp_path / "prompt.npy", array, backbone=BACKBONE, task="boolq", step=7)
    return path, array


def write_adapter(path, tensor, **config):
    path.mkdir(parents=True, exist_ok=True)
    base = {"peft_type": "PROMPT_TUNING", "task_type": "SEQ_2_SEQ_LM", "num_virtual_tokens": P,
            "token_dim": D, "num_transformer_submodules": None, "base_model_name_or_path": "t5"}
    base.update(config)
    (path / "adapter_config.json").write_text(json.dumps(base))
    if tensor is not None:
        save_file({"prompt_embeddings": tensor}, path / "adapter_model.safetensors")
    return path


def test_round_trip_through_peft_is_bit_identical(tmp_path, prompt_file):
    path, array = prompt_file
    adapter = export_peft(path, tmp_path / "adapter")
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert config["peft_type"] == "PROMPT_TUNING" and config["task_type"] == "SEQ_2_SEQ_LM"
    assert config["num_virtual_tokens"] == P and config["token_dim"] == D
    assert config["num_transformer_submodules"] == 1
    assert config["base_model_name_or_path"] == "tiny"  # from the sidecar

    back, info = import_peft(adapter, tmp_path / "back.npy")
    assert info["dropped_rows"] == 0
    again, meta = load_prompt(back)
    assert again.dtype == np.float32 and again.tobytes() == array.tobytes()
    assert meta["backbone"] == BACKBONE and meta["task"] == "boolq" and meta["step"] == 7
    assert meta["imported_from"]["format"] == "peft"


def test_base_model_name_override(tmp_path, prompt_file):
    adapter = export_peft(prompt_file[0], tmp_path / "a", base_model="google/t5-base-lm-adapt")
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == "google/t5-base-lm-adapt"


def test_peft_default_seq2seq_layout_keeps_the_first_p_rows(tmp_path):
    tensor = np.arange(2 * P * D, dtype=np.float32).reshape(2 * P, D)
    adapter = write_adapter(tmp_path / "a", tensor, num_transformer_submodules=2)
    array, info = read_peft(adapter)
    assert array.tobytes() == tensor[:P].tobytes()
    assert info["rows"] == 2 * P and info["dropped_rows"] == P
    path, _ = import_peft(adapter, tmp_path / "p.npy")
    assert load_prompt(path)[1]["imported_from"]["dropped_rows"] == P


def test_multi_prompt_files_need_an_index(tmp_path):
    prompts = np.random.default_rng(1).normal(size=(3, P, D)).astype(np.float32)
    path = save_prompt(tmp_path / "three.npy", prompts)
    with pytest.raises(ValueError, match="holds 3 prompts; choose one"):
        export_peft(path, tmp_path / "a")
    with pytest.raises(ValueError, match="prompt index 3 does not exist"):
        export_official(path, tmp_path / "o", prompt_index=3)
    back, _ = import_peft(export_peft(path, tmp_path / "a", prompt_index=1), tmp_path / "b.npy")
    assert load_prompt(back)[0].tobytes() == prompts[1].tobytes()
    # Prompts of different lengths are stored right-aligned; the chosen one is cut to its length.
    assert select_prompt(prompts, {"prompt_lengths": [5, 2, 5]}, 1).shape == (2, D)


def test_official_export_is_a_plain_npy_payload(tmp_path, prompt_file):
    path, array = prompt_file
    out = export_official(path, tmp_path / "exports" / "boolq_prompt")  # no extension, like theirs
    with open(out, "rb") as f:
        loaded = np.load(f, allow_pickle=False)
    assert loaded.dtype == np.float32 and loaded.shape == (P, D)
    assert loaded.tobytes() == array.tobytes()
    assert load_prompt(out)[1]["backbone"] == BACKBONE


@pytest.mark.parametrize(
    "peft_type", ["LORA", "PREFIX_TUNING", "P_TUNING", "MULTITASK_PROMPT_TUNING"]
)
def test_other_adapter_types_are_refused(tmp_path, peft_type):
    adapter = write_adapter(tmp_path / "a", np.zeros((P, D), np.float32), peft_type=peft_type)
    with pytest.raises(ValueError, match=f"is a {peft_type} adapter; only PROMPT_TUNING"):
        read_peft(adapter)


def test_bad_adapters(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_peft(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="no adapter_config.json"):
        read_peft(tmp_path)
    with pytest.raises(FileNotFoundError, match="neither adapter_model.safetensors"):
        read_peft(write_adapter(tmp_path / "noweights", None))
    bad = tmp_path / "badname"
    write_adapter(bad, None)
    save_file({"embedding.weight": np.zeros((P, D), np.float32)}, bad / "adapter_model.safetensors")
    with pytest.raises(ValueError, match="no 'prompt_embeddings' tensor .found: embedding.weight"):
        read_peft(bad)
    with pytest.raises(ValueError, match="has shape \\(5, 8\\), expected"):
        read_peft(write_adapter(tmp_path / "narrow", np.zeros((P, 8), np.float32)))
    with pytest.raises(ValueError, match="has 10 rows, expected 5"):
        read_peft(write_adapter(tmp_path / "rows", np.zeros((2 * P, D), np.float32),
                                num_transformer_submodules=1))
    with pytest.raises(ValueError, match="is a file"):
        read_peft(tmp_path / "badname" / "adapter_config.json")
