"""``softprompt convert hf-t5``, ``export`` and ``import``: thin commands, one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from softprompt.cli.main import cli
from softprompt.core.io.prompt_files import load_prompt, save_prompt

pytestmark = [
    pytest.mark.filterwarnings("ignore::UserWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def test_convert_hf_t5(hf_dirs, tmp_path):
    out = tmp_path / "preset"
    out.mkdir()
    (out / "old.txt").write_text("an earlier conversion")
    refused = run("convert", "hf-t5", hf_dirs["relu-tied"], out)
    assert refused.exit_code == 2 and "not empty" in refused.stderr
    result = run("convert", "hf-t5", hf_dirs["relu-tied"], out, "--overwrite")
    assert result.exit_code == 0, result.output
    assert "converted" in result.stdout and ", tied LM head" in result.stdout
    assert (out / "model.weights.h5").is_file() and not (out / "old.txt").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["preset"]  # no temporary leftovers


def test_convert_errors_are_one_line(tmp_path):
    (tmp_path / "bert").mkdir()
    (tmp_path / "bert" / "config.json").write_text(json.dumps({"model_type": "bert"}))
    for src, message in ((tmp_path / "nowhere", "does not exist"),
                         (tmp_path / "bert", "model_type 'bert' is not a T5 model")):
        result = run("convert", "hf-t5", src, tmp_path / "out")
        assert result.exit_code == 2
        assert message in result.stderr and result.stderr.count("\n") == 1


def test_export_import_round_trip(tmp_path):
    array = np.random.default_rng(0).normal(size=(2, 4, 16)).astype(np.float32)
    prompt = save_prompt(tmp_path / "p.npy", array, task="demo")

    missing_index = run("export", prompt, "--to", "peft", tmp_path / "adapter")
    assert missing_index.exit_code == 2 and "choose one" in missing_index.stderr

    result = run("export", prompt, "--to", "peft", tmp_path / "adapter", "--index", "1")
    assert result.exit_code == 0, result.output
    result = run("import", tmp_path / "adapter", tmp_path / "back.npy")
    assert result.exit_code == 0, result.output
    assert "4 x 16" in result.stdout
    back, meta = load_prompt(tmp_path / "back.npy")
    assert back.tobytes() == array[1].tobytes() and meta["task"] == "demo"

    result = run("export", prompt, "--to", "official", tmp_path / "official", "--index", "0")
    assert result.exit_code == 0, result.output
    with open(tmp_path / "official", "rb") as f:
        assert np.load(f).tobytes() == array[0].tobytes()


def test_import_says_when_it_drops_rows(tmp_path):
    from safetensors.numpy import save_file

    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps(
        {"peft_type": "PROMPT_TUNING", "task_type": "SEQ_2_SEQ_LM", "num_virtual_tokens": 3,
         "token_dim": 8, "num_transformer_submodules": 2}
    ))
    save_file({"prompt_embeddings": np.ones((6, 8), np.float32)},
              adapter / "adapter_model.safetensors")
    result = run("import", adapter, tmp_path / "p.npy")
    assert result.exit_code == 0, result.output
    assert "uses only the first 3, dropped the other 3" in result.stderr


def test_import_refuses_other_adapters(tmp_path):
    adapter = tmp_path / "lora"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA"}))
    result = run("import", adapter, tmp_path / "p.npy")
    assert result.exit_code == 2
    assert "is a LORA adapter; only PROMPT_TUNING adapters hold a soft prompt" in result.stderr
