"""Fuzzed option values, as typed on a command line: every command ends in a clean error.

Each example runs a command in this process (click's runner) with one to three options set
to arbitrary text, numbers written oddly, or edge values, and the rest set so that the
command fails cheaply after every option has been checked (missing data, a prompt whose
model is missing). The promise: exit code 2 with one ``Error:`` line (click's own usage
errors add their usage lines), or, where the values happen to make sense, success — never a
traceback, never exit code 1.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from click.testing import CliRunner
from fuzzing import budget, text
from hypothesis import given
from hypothesis import strategies as st

from softprompt.cli.main import cli
from softprompt.core.io.prompt_files import save_prompt

NOISE = ("WARNING: All log messages before absl", "I0000", "W0000", "E0000")
numbers = st.one_of(st.integers(-(10**20), 10**20).map(str), st.floats().map(str),
                    st.sampled_from(["", " ", "0", "-1", "1", "nan", "inf", "-inf", "1e400",
                                     "0x10", "1_000", "٣", "²", "1.5", "true"]))
values = st.one_of(text, numbers).filter(lambda v: "://" not in v)  # nothing reaches the network
# Values that would start real work on another device or under torchrun are left out: the
# device options are covered by their own tests.
MESH = re.compile(r"^\s*\d+\s*[xX]\s*\d+\s*$")


def invoke(args, cwd):
    runner = CliRunner()
    with runner.isolated_filesystem(temp_dir=cwd):
        return runner.invoke(cli, args)


def assert_clean(result, allow_success=False):
    if allow_success and result.exit_code == 0:
        return
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    lines = [x for x in result.stderr.splitlines() if x.strip() and not x.startswith(NOISE)]
    if lines and lines[0].startswith("Usage:"):  # click's own usage error
        assert lines[-1].startswith("Error: "), lines
    else:
        assert len(lines) == 1 and lines[0].startswith("Error: "), lines


#: Options naming a file or folder to write get names inside the test's folder only.
PATH_OPTIONS = {"--out", "--workdir", "--output", "--init-file"}
names = st.text(max_size=12).filter(lambda v: "/" not in v and ".." not in v
                                    and not v.startswith("~"))


@st.composite
def options(draw, chosen_from):
    keys = draw(st.lists(st.sampled_from(chosen_from), min_size=1, max_size=3, unique=True))
    return {k: draw(names if k in PATH_OPTIONS else values) for k in keys}


def flat(chosen: dict) -> list[str]:
    return [part for name, value in chosen.items() for part in (name, value)]


TRAIN = ["--prompt-length", "--steps", "--batch-size", "--lr", "--max-input-length",
         "--max-target-length", "--eval-every", "--eval-split", "--eval-method",
         "--eval-batch-size", "--metric", "--early-stopping", "--dropout", "--seed",
         "--distribution", "--mesh", "--dtype", "--init", "--init-text", "--init-file",
         "--task", "--template", "--target-field", "--labels", "--preset", "--out"]


@budget(120)
@given(options(TRAIN))
def test_train(tmp_path_factory, chosen):
    if MESH.match(chosen.get("--mesh", "")) or chosen.get("--distribution") in ("data",
                                                                                  "model"):
        return
    base = ["train", "--task", "jsonl", "--template", "t: {text}", "--target-field", "label",
            "--preset", "no-such-preset", "--data", "no-such-data", "--quiet"]
    assert_clean(invoke(base + flat(chosen), tmp_path_factory.mktemp("train")))


ADAPT = ["--preset", "--from-config", "--style", "--vocab-size", "--vocab-model", "--steps",
         "--batch-size", "--optimizer", "--lr", "--warmup-steps", "--max-input-length",
         "--max-target-length", "--dropout", "--eval-every", "--seed", "--workdir", "--out"]


@budget(80)
@given(options(ADAPT))
def test_adapt(tmp_path_factory, chosen):
    base = ["adapt", "--from-config", "test", "--corpus", "no-such-corpus.txt", "--out", "p"]
    assert_clean(invoke(base + flat(chosen), tmp_path_factory.mktemp("adapt")))


@pytest.fixture(scope="module")
def orphan_prompt(tmp_path_factory):
    """A prompt whose sidecar names a model that is not there: commands stop at loading it."""
    path = tmp_path_factory.mktemp("prompt") / "p.npy"
    save_prompt(path, np.ones((2, 4), np.float32), task="boolq",
                backbone={"preset": str(path.parent / "missing-preset")})
    return str(path)


EVAL = ["--split", "--method", "--batch-size", "--max-input-length", "--max-target-length",
        "--task", "--template", "--target-field", "--labels", "--output", "--dtype"]


@budget(60)
@given(options(EVAL), st.sampled_from(["eval", "ensemble"]))
def test_eval_and_ensemble(tmp_path_factory, orphan_prompt, chosen, command):
    if command == "ensemble":
        chosen.pop("--method", None)
    base = [command, "--prompt", orphan_prompt, "--data", "no-such-data"]
    assert_clean(invoke(base + flat(chosen), tmp_path_factory.mktemp(command)))


@budget(60)
@given(st.lists(values, min_size=1, max_size=3), options(["--method", "--batch-size",
                                                         "--max-input-length", "--output"]))
def test_predict(tmp_path_factory, orphan_prompt, specs, chosen):
    cwd = tmp_path_factory.mktemp("predict")
    (cwd / "in.jsonl").write_text(json.dumps({"text": "hi"}) + "\n")
    base = ["predict", "--input", str(cwd / "in.jsonl")]
    prompts = [part for spec in specs for part in ("--prompt", spec)]
    assert_clean(invoke(base + prompts + flat(chosen), cwd))
    # the same with the prompt named properly: the options alone
    assert_clean(invoke(base + ["--prompt", f"p={orphan_prompt}"] + flat(chosen), cwd))


@budget(60)
@given(options(["--index", "--to", "--base-model"]), names)
def test_export(tmp_path_factory, orphan_prompt, chosen, out):
    """Export needs no model: values that make sense succeed."""
    cwd = tmp_path_factory.mktemp("export")
    args = ["export", orphan_prompt, "./" + out, "--to", "official"] + flat(chosen)
    assert_clean(invoke(args, cwd), allow_success=True)
