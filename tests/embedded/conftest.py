"""Fixtures for the embedded model, the built-in task and `softprompt adapt`."""

from __future__ import annotations

import json

import pytest


@pytest.fixture(scope="session")
def small_corpus(tmp_path_factory):
    """A two-file mixture from the synthetic language: prefix-LM text and instruction pairs."""
    from softprompt.data import synthetic

    out = tmp_path_factory.mktemp("corpus")
    lines, pairs = synthetic.pretraining_texts(120, 120, seed=3)
    (out / "lm.txt").write_text("\n".join(lines) + "\n")
    with open(out / "tasks.jsonl", "w") as f:
        for p in pairs:
            f.write(json.dumps({"inputs": p["inputs"], "targets": p["targets"]}) + "\n")
    return [str(out / "lm.txt"), str(out / "tasks.jsonl")]
