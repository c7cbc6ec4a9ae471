"""The paper's recipe as one command, offline: ``softprompt train --preset hf://ORG/NAME --task
boolq`` with no ``--data``; the checkpoint comes from the Hugging Face cache and is converted
once, BoolQ from the ``datasets`` cache in the hub's schema. Then ``eval`` with no options but
the prompt reuses both, and every user mistake ends in one line with exit code 2.

The model is a tiny ``T5ForConditionalGeneration`` (``hf_dirs``); the caches are filled by
`hub_helpers` where an online run would have left them.
"""

from __future__ import annotations

import json
import random

import pytest
from click.testing import CliRunner
from hub_helpers import go_offline, publish_dataset, publish_model

pytestmark = [pytest.mark.filterwarnings("ignore::UserWarning"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning")]  # fmt: skip

datasets = pytest.importorskip("datasets")
WORDS = "the cat dog sat on mat river bank good bad red blue one two three".split()
SMALL = ["--prompt-length", "3", "--steps", "4", "--batch-size", "8", "--eval-every", "2",
         "--max-input-length", "16", "--eval-batch-size", "6", "--seed", "1", "--quiet"]


def boolq_split(n: int, seed: int):
    rng = random.Random(seed)
    rows = {"question": [], "passage": [], "idx": [], "label": []}
    for i in range(n):
        passage = " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 5)))
        rows["question"].append(f"is it {rng.choice(WORDS)}")
        rows["passage"].append(passage)
        rows["idx"].append(i)
        rows["label"].append(int("good" in passage))
    features = datasets.Features({
        "question": datasets.Value("string"), "passage": datasets.Value("string"),
        "idx": datasets.Value("int32"), "label": datasets.ClassLabel(names=["False", "True"])})
    return datasets.Dataset.from_dict(rows, features=features)


@pytest.fixture
def hub(tmp_path, monkeypatch, hf_dirs):
    root = go_offline(monkeypatch, tmp_path / "caches")
    publish_model(hf_dirs["gated-untied"], "tiny-org/tiny-t5")
    publish_dataset({"train": boolq_split(24, 0), "validation": boolq_split(6, 1)},
                    "aps/super_glue", "boolq")
    return root


@pytest.fixture
def run():
    from softprompt.cli.main import cli

    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(cli, [str(a) for a in args])

    return invoke


def error_line(result) -> str:
    """The one ``Error:`` line of a failed command (exit code 2)."""
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert len(errors) == 1, result.output
    return errors[0]


def test_train_from_the_hub_then_eval_reuses_both(hub, run, tmp_path):
    out = tmp_path / "run"
    result = run("train", "--preset", "hf://tiny-org/tiny-t5", "--task", "boolq", *SMALL,
                 "--out", out)
    assert result.exit_code == 0, result.output
    assert "data: hf://datasets/aps/super_glue:boolq (the task's hub dataset)" in result.output
    assert "hf://tiny-org/tiny-t5: converting into" in result.output
    sidecar = json.loads((out / "best.json").read_text())
    assert sidecar["backbone"]["preset"] == "hf://tiny-org/tiny-t5"

    result = run("eval", "--prompt", out / "best.npy")  # model, task and data from the sidecar
    assert result.exit_code == 0, result.output
    assert "hf://tiny-org/tiny-t5: using the converted preset cached in" in result.output
    assert "converting" not in result.output
    assert "boolq validation (6 examples, decode)" in result.output


def test_mistakes_are_one_line(hub, run, tmp_path, preset_v11):
    result = run("train", "--preset", "hf://nobody/nothing", "--task", "boolq", *SMALL,
                 "--out", tmp_path / "a")
    assert error_line(result) == (
        "Error: preset hf://nobody/nothing: not in the Hugging Face cache, and HF_HUB_OFFLINE is "
        "set (download it once online, or unset HF_HUB_OFFLINE)"
    )
    result = run("train", "--preset", preset_v11, "--task", "cb", *SMALL, "--out", tmp_path / "b")
    assert error_line(result).startswith(
        "Error: hub dataset aps/super_glue:cb [train]: cannot be loaded (offline"
    )
    result = run("train", "--preset", preset_v11, "--task", "jsonl", "--template", "{text}",
                 "--target-field", "label", *SMALL, "--out", tmp_path / "c")
    assert error_line(result) == "Error: --task jsonl needs --data (it has no hub dataset)"
    result = run("train", "--preset", preset_v11, "--task", "boolq", "--data",
                 "hf://datasets/aps/super_glue:boolq", "--eval-split", "test", *SMALL,
                 "--out", tmp_path / "d")
    assert error_line(result) == (
        "Error: hub dataset aps/super_glue:boolq has no split 'test' (it has train, validation)"
    )


def test_tasks_lists_every_task(run):
    from softprompt import tasks

    result = run("tasks")
    assert result.exit_code == 0, result.output
    listed = [line.split()[0] for line in result.output.splitlines() if line[:1].isalpha()]
    assert listed == tasks.names()
    result = run("tasks", "--json", "boolq", "cb")
    entries = json.loads(result.output)
    assert [e["name"] for e in entries] == ["boolq", "cb"]
    assert entries[0]["data"]["hub"] == "hf://datasets/aps/super_glue:boolq"
    assert entries[1]["metrics"] == ["f1_multiclass (T5: mean_3class_f1)", "accuracy"]
    assert entries[0]["example"] == {
        "inputs": "passage: The Sun is the star at the centre of the Solar System. "
                  "question: is the sun a star",
        "target": "True"}  # fmt: skip
    assert error_line(run("tasks", "boolqq")).startswith(
        "Error: unknown task 'boolqq'; did you mean 'boolq'?"
    )
