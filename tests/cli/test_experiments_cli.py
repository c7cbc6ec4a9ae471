"""``softprompt eval`` of a model alone and prompt design; ``compare``; ``transfer``; bad input."""

from __future__ import annotations

import csv
import json

import pytest
from task_helpers import TASK, TRAIN
from test_cli import assert_user_error

from softprompt.core.experiments.prompt_design import DesignedTask, draw_shots


@pytest.fixture(scope="module")
def model_tuned(tmp_path_factory, runner, cli, preset_v11, task_dir):
    out = tmp_path_factory.mktemp("mt") / "out"
    result = runner.invoke(cli, ["train", "--method", "model-tuning", "--preset", preset_v11,
                                 *TASK, "--data", str(task_dir), *TRAIN, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert f"{out / 'best'}" in result.output
    return out


def test_eval_of_a_model_tuned_preset_reproduces_its_dev_score(runner, cli, model_tuned,
                                                               task_dir, tmp_path):
    output = tmp_path / "metrics.json"
    result = runner.invoke(cli, ["eval", "--preset", str(model_tuned / "best"), "--data",
                                 str(task_dir), "--output", str(output)])
    assert result.exit_code == 0, result.output
    recorded = json.loads((model_tuned / "best/softprompt.json").read_text())
    assert json.loads(output.read_text())["metrics"] == recorded["metrics"]


@pytest.mark.parametrize("method", ["decode", "rank"])
def test_prompt_design_runs_both_ways(runner, cli, preset_v11, task_dir, tmp_path, method):
    output = tmp_path / "metrics.json"
    result = runner.invoke(cli, ["eval", "--preset", preset_v11, *TASK, "--data", str(task_dir),
                                 "--instruction", "is the review good?", "--shots", "3",
                                 "--seed", "2", "--method", method, "--max-input-length", "48",
                                 "--output", str(output)])
    assert result.exit_code == 0, result.output
    written = json.loads(output.read_text())
    assert written["method"] == method and written["shots"] == 3
    assert 0 <= written["metrics"]["accuracy"] <= 100


def test_shots_are_drawn_with_the_seed_and_dropped_first_when_too_long(preset_v11, task_dir):
    import keras_hub

    from softprompt import tasks

    task = tasks.get("jsonl", **TASK_ARGS_OF(TASK))
    train = task.read(task_dir, "train")
    assert draw_shots(train, 3, seed=1) == draw_shots(train, 3, seed=1)
    assert draw_shots(train, 3, seed=1) != draw_shots(train, 3, seed=2)
    tokenizer = keras_hub.models.T5Tokenizer.from_preset(preset_v11)
    shots = draw_shots(train, 5, seed=0)
    roomy = DesignedTask(task, tokenizer, "is it good?", shots, max_input_length=512)
    inputs, target = roomy.format(train[0])
    assert inputs.startswith("is it good? " + task.format(shots[0])[0])
    assert inputs.endswith(task.format(train[0])[0]) and target == task.format(train[0])[1]
    tight = DesignedTask(task, tokenizer, "is it good?", shots, max_input_length=24)
    text = tight.format(train[0])[0]
    kept = tight.shots_that_fit(len(tokenizer(task.format(train[0])[0])) + 1)
    assert kept < 5 and text.count(" positive") + text.count(" negative") <= kept + 1
    assert text.startswith("is it good?") and text.endswith(task.format(train[0])[0])


def TASK_ARGS_OF(options):
    pairs = dict(zip(options[::2], options[1::2]))
    return {"template": pairs["--template"], "target_field": pairs["--target-field"],
            "labels": pairs["--labels"].split(",")}


@pytest.mark.parametrize("args, fragment", [
    (["train", "--method", "fine-tuning"], "unknown method 'fine-tuning'"),
    (["eval", "--prompt", "x.npy", "--instruction", "hi", "--data", "{data}"],
     "leave out --prompt"),
    (["eval", "--preset", "{preset}", *TASK, "--data", "{data}", "--shots", "999"],
     "--shots 999 is more than the 24 examples"),
    (["eval", "--data", "{data}", *TASK], "give --prompt FILE, or --preset MODEL"),
    (["compare", *TASK, "--data", "{data}", "--out", "{out}"], "no preset given"),
    (["compare", "--preset", "{preset}", *TASK, "--data", "{data}", "--methods",
      "prompt-tuning,lora", "--out", "{out}"], "unknown method 'lora'"),
    (["compare", "--preset", "{preset}", *TASK, "--data", "{data}", "--methods",
      "prompt-design", "--shots", "999", "--out", "{out}"], "--shots 999 is more than"),
    (["transfer", "--preset", "{preset}", "--train-task", "qqp", "--train-data", "{data}",
      "--out", "{out}"], "no --eval TASK=PATH"),
    (["transfer", "--preset", "{preset}", "--train-task", "qqp", "--train-data", "{data}",
      "--eval", "mrpc", "--out", "{out}"], "expected TASK=PATH"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(runner, cli, preset_v11, task_dir,
                                                          tmp_path, args, fragment):
    out = tmp_path / "out"
    values = {"{data}": str(task_dir), "{preset}": preset_v11, "{out}": str(out)}
    args = [values.get(a, a) for a in args]
    assert_user_error(runner.invoke(cli, args), fragment)
    assert not out.exists()


def test_compare_runs_every_cell_once_and_writes_the_tables(runner, cli, preset_v10, preset_v11,
                                                            task_dir, tmp_path):
    out = tmp_path / "cmp"
    args = ["compare", "--preset", preset_v10, "--preset", preset_v11, *TASK, "--data",
            str(task_dir), "--instruction", "is the review good?", "--seeds", "1",
            "--steps", "2", "--eval-every", "2", "--prompt-length", "3", "--batch-size", "8",
            "--max-input-length", "16", "--eval-batch-size", "6", "--eval-method", "rank",
            "--quiet", "--out", str(out)]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert sorted((r["model"], r["method"]) for r in rows) == sorted(
        (m, k) for m in {r["model"] for r in rows}
        for k in ("model-tuning", "prompt-tuning", "prompt-design"))
    by_method = {(r["model"], r["method"]): r for r in rows}
    for (_, method), row in by_method.items():
        trained = int(row["trained_parameters"])
        frozen = int(row["frozen_parameters"])
        assert {"model-tuning": trained == frozen, "prompt-tuning": 0 < trained < frozen,
                "prompt-design": trained == 0}[method], row
    table = (out / "results.md").read_text()
    assert "± 0.0" in table and "prompt-design" in table
    assert (out / "scale.png").read_bytes()[:4] == b"\x89PNG"
    # a rerun skips every finished cell
    again = runner.invoke(cli, args)
    assert again.exit_code == 0 and again.stderr.count(": done") == 6, again.stderr
    # other options are refused for the same folder
    changed = runner.invoke(cli, [a if a != "2" else "3" for a in args])
    assert_user_error(changed, "other options")


def test_compare_resumes_a_stopped_cell(preset_v11, task_dir, tmp_path):
    from softprompt.core.experiments.compare import CELL, CompareConfig, compare
    from softprompt.core.training import state as train_state

    config = CompareConfig(out=str(tmp_path / "cmp"), presets=[preset_v11], task="jsonl",
                           data=str(task_dir), task_args=TASK_ARGS_OF(TASK),
                           methods=["prompt-tuning"], seeds=1, steps=4,
                           train_options={"eval_every": 2, "prompt_length": 3,
                                          "batch_size": 8, "max_input_length": 16})
    cell = config.validate().cell_dir(preset_v11, "prompt-tuning", 0)
    from softprompt.core.training.train import train

    # a comparison killed in its first cell, whose run had committed step 2
    cell.parent.mkdir(parents=True)
    (tmp_path / "cmp" / "compare.json").write_text(json.dumps(config.to_dict()))
    first = config.train_config(preset_v11, "prompt-tuning", 0)
    first.steps = 2
    train(first, progress=False)
    assert train_state.latest(cell)["step"] == 2
    result = compare(config, echo=lambda text: None)
    assert json.loads((cell / CELL).read_text())["steps"] == 4
    assert json.loads((cell / "config.json").read_text())["resumed"][0]["at_step"] == 2
    assert len(result.rows) == 1


def test_transfer_maps_label_words_and_writes_the_table(runner, cli, preset_v11, tmp_path):
    import random

    rng = random.Random(0)
    words = "what how is a the cat dog why good same other question".split()

    def tsv(path, columns, n):
        """GLUE's layout: train.tsv and dev.tsv, `columns` = (text 1, text 2, label)."""
        path.mkdir(parents=True)
        for split, count in (("train", n), ("dev", 6)):
            lines = ["\t".join(columns)]
            for _ in range(count):
                a = " ".join(rng.choice(words) for _ in range(4))
                same = rng.random() < 0.5
                b = a if same else " ".join(rng.choice(words) for _ in range(4))
                lines.append(f"{a}\t{b}\t{int(same)}")
            (path / f"{split}.tsv").write_text("\n".join(lines) + "\n")

    tsv(tmp_path / "qqp", ("question1", "question2", "is_duplicate"), 16)
    tsv(tmp_path / "mrpc", ("#1 String", "#2 String", "Quality"), 0)
    out = tmp_path / "transfer"
    result = runner.invoke(cli, [
        "transfer", "--preset", preset_v11, "--train-task", "qqp", "--train-data",
        str(tmp_path / "qqp"), "--eval", f"mrpc={tmp_path / 'mrpc'}", "--seeds", "1",
        "--steps", "2", "--eval-every", "2", "--prompt-length", "3", "--batch-size", "8",
        "--max-input-length", "32", "--eval-batch-size", "6", "--quiet", "--out", str(out)])
    assert result.exit_code == 0, result.output
    table = (out / "transfer.md").read_text()
    assert table.splitlines()[0].startswith("| dataset | metric | model-tuning | prompt-tuning")
    assert "| qqp (in-domain) |" in table and "| mrpc |" in table and "Δ" in table
    with open(out / "transfer.csv") as f:
        rows = list(csv.DictReader(f))
    assert {(r["dataset"], r["method"]) for r in rows} == {
        (d, m) for d in ("qqp (in-domain)", "mrpc") for m in ("model-tuning", "prompt-tuning")}
