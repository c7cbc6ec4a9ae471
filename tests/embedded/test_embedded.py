"""The shipped model `softprompt_tiny`, the built-in task, the demo hooks, the build script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]


def test_the_embedded_preset_loads_as_float32():
    from keras import ops

    from softprompt.core.interop.presets import embedded_presets
    from softprompt.core.model.prompted_t5 import PromptedT5

    assert "softprompt_tiny" in embedded_presets()
    size = sum(p.stat().st_size for p in embedded_presets()["softprompt_tiny"].rglob("*"))
    assert size < 8 * 2**20, f"the shipped preset is {size / 2**20:.1f} MB"
    model = PromptedT5.from_preset("softprompt_tiny", prompt_length=4, init="class-labels",
                                   init_labels=["red", "blue"], seed=0)
    assert all(ops.convert_to_numpy(w).dtype == np.float32 for w in model.backbone.weights)
    assert model.prompt.embeddings.shape == (1, 4, model.backbone.hidden_dim)
    assert model.tokenizer.vocabulary_size() == model.backbone.vocabulary_size
    # its build record names no path of the machine that built it
    record = (embedded_presets()["softprompt_tiny"] / "adapt.json").read_text()
    assert '"/' not in record and "\\\\" not in record
    assert json.loads(record)["options"]["out"] == "softprompt/presets/softprompt_tiny"


def test_demo_data_is_what_the_generator_writes(tmp_path):
    from softprompt.core import demo
    from softprompt.data import synthetic

    synthetic.write_demo(tmp_path, seed=0)
    for split in ("train", "validation"):
        assert (tmp_path / f"{split}.jsonl").read_bytes() == \
            (demo.DATA / f"{split}.jsonl").read_bytes(), split
    task = demo.task()
    train = task.read(demo.DATA, "train")
    dev = task.read(demo.DATA, "validation")
    assert len(train) == 800 and len(dev) == 200
    assert not {e["sentence"] for e in train} & {e["sentence"] for e in dev}
    assert {e["food"] for e in dev} == set(task.labels)
    # the demo's sentences and instruction never occur in the pretraining text
    lines, pairs = synthetic.pretraining_texts(2000, 2000, seed=0, exclude={
        e["sentence"] for e in train + dev})
    text = "\n".join(lines + [p["inputs"] for p in pairs])
    assert demo.INSTRUCTION not in text
    assert not any(e["sentence"] in text for e in dev[:50])


def test_without_prompt_is_exactly_the_bare_backbone():
    from keras import ops

    from softprompt.core.inference.batched import tokenize_inputs
    from softprompt.core.model.prompted_t5 import PromptedT5
    from softprompt.core.text.batching import pad

    model = PromptedT5.from_preset("softprompt_tiny", prompt_length=3, seed=0)
    ids, mask = pad(tokenize_inputs(model, ["the red fox found two blue cups near the lake.",
                                            "a cat"]))
    dec = np.zeros((2, 3), np.int32)
    inputs = {"encoder_token_ids": ids, "encoder_padding_mask": mask,
              "decoder_token_ids": dec, "decoder_padding_mask": np.ones_like(dec)}
    bare = ops.convert_to_numpy(model.without_prompt()(inputs))
    hidden = model.backbone(inputs)["decoder_sequence_output"]
    plain = ops.convert_to_numpy(model.logits(hidden))
    np.testing.assert_allclose(bare, plain, rtol=1e-4, atol=1e-4)


def test_configure_fills_in_the_demo_and_keeps_what_the_user_set():
    from softprompt.core import demo

    options = {"task": None, "data": None, "preset": None, "steps": 30000, "out": "x",
               "prompt_length": 100, "eval_every": 1000}
    filled = demo.configure(options, {"out"})
    assert filled["task"] == "jsonl" and filled["preset"] == "softprompt_tiny"
    assert Path(filled["data"], "validation.jsonl").is_file()
    assert filled["task_args"]["labels"] == list(demo.TASK_ARGS["labels"])
    assert filled["out"] == "x" and filled["steps"] == demo.DEFAULTS["steps"]
    assert demo.configure({**options, "steps": 7}, {"steps"})["steps"] == 7


def test_a_short_demo_run_reports_all_three_scores(tmp_path):
    from softprompt.core import demo

    lines = []
    summary = demo.run(out=str(tmp_path / "demo"), steps=2, eval_every=2, prompt_length=3, init="uniform",
                       echo=lines.append)
    scores = summary["scores"]
    assert set(scores) == {"no_prompt", "no_prompt_rank", "instruction", "prompt_tuning"}
    # the shipped model's baselines (backend-independent to a dev example or two):
    # no prompt answers no food when decoding and is near chance (16.7 %) when ranking
    # the 6 foods; the instruction (question and options) helps a lot
    assert scores["no_prompt"] <= 1.0 and 8.0 <= scores["no_prompt_rank"] <= 30.0, scores
    assert scores["instruction"] >= 80.0, scores
    assert len(summary["neighbors"]) == 3
    text = "\n".join(lines)
    assert "no prompt" in text and "rank over labels" in text and "instruction" in text
    assert "prompt tuning" in text
    assert json.loads((tmp_path / "demo" / "demo.json").read_text())["task"] == "animal_food"
    assert (tmp_path / "demo" / "best.npy").is_file()


def test_a_short_rebuild_writes_a_loadable_preset(tmp_path):
    out = tmp_path / "rebuilt"
    code = subprocess.call([
        sys.executable, str(ROOT / "scripts" / "build_embedded.py"), "--steps", "3",
        "--lm-lines", "150", "--task-pairs", "150", "--out", str(out),
        "--work", str(tmp_path / "work"), "--no-demo-data", "--no-check",
        "--backend", os.environ.get("KERAS_BACKEND", "tensorflow"),
    ], cwd=tmp_path, env={**os.environ,  # this checkout's package, installed or not
                          "PYTHONPATH": os.pathsep.join(filter(None, [
                              str(ROOT), os.environ.get("PYTHONPATH")]))})
    assert code == 0
    from softprompt.core.model.prompted_t5 import PromptedT5

    model = PromptedT5.from_preset(str(out), prompt_length=2)
    assert model.backbone.hidden_dim == 128
