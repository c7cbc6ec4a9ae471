"""End to end: train, eval, predict, ensemble, neighbors and info on a tiny preset and task."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest
from task_helpers import LABELS, TASK, TRAIN, write_task

from softprompt.core.io.prompt_files import load_prompt

COMMANDS = ("train", "eval", "predict", "ensemble", "neighbors", "info")
# What the frameworks themselves print on start-up (absl, oneDNN); not softprompt's output.
NOISE = ("WARNING: All log messages before absl", "I0000", "W0000", "E0000")


def error_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip() and not line.startswith(NOISE)]


def assert_user_error(result, *fragments):
    assert result.exit_code == 2, result.output
    lines = error_lines(result.stderr)
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def dev_records(task_dir):
    return [json.loads(line) for line in (task_dir / "validation.jsonl").read_text().splitlines()]


# ---------------------------------------------------------------------- help


@pytest.mark.parametrize("command", COMMANDS)
def test_help_has_an_example(runner, cli, command):
    result = runner.invoke(cli, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Example" in result.output and f"softprompt {command}" in result.output
    assert "--backend" in result.output and "--debug" in result.output


def test_help_in_a_real_process():
    out = subprocess.run([sys.executable, "-m", "softprompt.cli.main", "--help"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    for command in COMMANDS:
        assert command in out.stdout


# ---------------------------------------------------------------------- train


def test_train_writes_every_output(trained):
    for name in ("config.json", "metrics.jsonl", "train.csv", "curve.png", "best.npy",
                 "best.json", "checkpoints/step-2.npy", "checkpoints/step-2.json",
                 "checkpoints/step-4.npy", "checkpoints/latest.json"):
        assert (trained / name).is_file(), name
    evals = [json.loads(x) for x in (trained / "metrics.jsonl").read_text().splitlines()]
    assert [e["step"] for e in evals] == [2, 4]
    assert all("accuracy" in e and "f1_multiclass" in e for e in evals)
    with open(trained / "train.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4]
    assert all(np.isfinite(float(r["loss"])) for r in rows)
    events = list((trained / "tensorboard").glob("events.out.tfevents.*"))
    assert events and b"dev/accuracy" in events[0].read_bytes()
    record = json.loads((trained / "config.json").read_text())
    assert record["backend"] == keras.backend.backend()
    assert record["options"]["prompt_length"] == 3 and record["options"]["eval_method"] == "decode"
    assert {"softprompt", "keras", "keras_hub", "backend_version"} <= set(record["versions"])
    prompt, meta = load_prompt(trained / "best.npy")
    assert prompt.shape == (3, 16)
    best = max(evals, key=lambda e: e["accuracy"])
    assert meta["step"] == best["step"] and meta["metrics"]["accuracy"] == best["accuracy"]


def test_resume_continues_a_finished_run(runner, cli, trained, tmp_path):
    out = tmp_path / "more"
    shutil.copytree(trained, out)
    result = runner.invoke(cli, ["train", "--out", str(out), "--resume", "--steps", "6",
                                 "--quiet"])
    assert result.exit_code == 0, result.output
    steps = [json.loads(x)["step"] for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == [2, 4, 6]
    result = runner.invoke(cli, ["train", "--out", str(out), "--resume", "--lr", "0.1"])
    assert_user_error(result, "lr")


def test_nan_loss_exits_non_zero(runner, cli, preset_v11, task_dir, tmp_path, monkeypatch):
    from softprompt.core.io import prompt_files as files

    # Loading refuses a NaN prompt file (test_reliability.py); here that guard is lifted so
    # that the NaN reaches the loss and the loop's own stop is what is tested.
    monkeypatch.setattr(files, "check_finite", lambda array, where="": None)
    from softprompt.core.model import init

    monkeypatch.setattr(init, "check_finite", lambda array, where="": None)
    poison = tmp_path / "nan.npy"
    np.save(poison, np.full((3, 16), np.nan, np.float32))
    out = tmp_path / "run"
    result = runner.invoke(cli, ["train", "--preset", preset_v11, *TASK, "--data", str(task_dir),
                                 *TRAIN, "--init", "file", "--init-file", str(poison),
                                 "--out", str(out)])
    assert result.exit_code == 1, result.output
    lines = error_lines(result.stderr)
    assert lines[-1].startswith("Error: the loss became nan at step 1"), result.stderr
    assert not (out / "checkpoints/latest.json").exists()


def test_without_task_and_data_train_hands_over_to_the_demo(runner, cli, monkeypatch,
                                                             tmp_path):
    import softprompt.cli.train as train_cli

    seen = {}

    class Demo:  # stands in for softprompt.core.demo: records what the hook receives
        @staticmethod
        def configure(options, explicit):
            seen.update(options=options, explicit=explicit)
            raise ValueError("demo stopped here")

    monkeypatch.setattr(train_cli, "_demo", lambda: Demo)
    result = runner.invoke(cli, ["train", "--steps", "7", "--out", str(tmp_path / "demo")])
    assert_user_error(result, "demo stopped here")
    assert seen["options"]["steps"] == 7 and seen["options"]["task"] is None
    assert seen["explicit"] == {"steps", "out"}


def test_demo_missing_is_a_one_line_error(runner, cli, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_demo(name, globals=None, locals=None, fromlist=(), level=0):
        if name == "softprompt.core" and fromlist and "demo" in fromlist:
            raise ModuleNotFoundError("no demo", name="softprompt.core.demo")
        return real_import(name, globals, locals, fromlist, level)

    monkeypatch.setattr(builtins, "__import__", no_demo)
    assert_user_error(runner.invoke(cli, ["train"]), "demo is not available yet")


# ---------------------------------------------------------------------- eval


@pytest.mark.parametrize("name", ["best.npy", "checkpoints/step-2.npy"])
def test_eval_reproduces_the_recorded_dev_score(runner, cli, trained, task_dir, tmp_path, name):
    output = tmp_path / "metrics.json"
    result = runner.invoke(cli, ["eval", "--prompt", str(trained / name), "--data", str(task_dir),
                                 "--output", str(output)])
    assert result.exit_code == 0, result.output
    _, meta = load_prompt(trained / name)
    assert json.loads(output.read_text())["metrics"] == meta["metrics"]
    assert "accuracy" in result.stdout and "f1_multiclass" in result.stdout


def test_eval_in_bfloat16(runner, cli, trained, task_dir, tmp_path):
    """``--dtype bfloat16`` builds the frozen model in bfloat16 and evaluates the same prompt."""
    import keras

    from softprompt.core.inference import evaluate

    seen = []
    original = evaluate.evaluate

    def spy(model, *args, **kwargs):
        seen.append(model.backbone.compute_dtype)
        return original(model, *args, **kwargs)

    output = tmp_path / "metrics.json"
    try:
        with pytest.MonkeyPatch.context() as m:
            m.setattr(evaluate, "evaluate", spy)
            result = runner.invoke(cli, ["eval", "--prompt", str(trained / "best.npy"), "--data",
                                         str(task_dir), "--dtype", "bfloat16",
                                         "--output", str(output)])
    finally:
        keras.config.set_dtype_policy("float32")
    assert result.exit_code == 0, result.output
    assert seen == ["bfloat16"]
    metrics = json.loads(output.read_text())["metrics"]
    assert set(metrics) == set(load_prompt(trained / "best.npy")[1]["metrics"])
    bad = runner.invoke(cli, ["eval", "--prompt", str(trained / "best.npy"), "--dtype", "int8"])
    assert bad.exit_code == 2 and "int8" in bad.output


def test_eval_of_a_prompt_without_sidecar_needs_a_preset(runner, cli, trained, task_dir,
                                                          preset_v11, tmp_path):
    bare = tmp_path / "official_prompt"  # the official code's files: .npy data, no extension
    shutil.copy(trained / "best.npy", bare)
    args = ["eval", "--prompt", str(bare), *TASK, "--data", str(task_dir)]
    assert_user_error(runner.invoke(cli, args), "--preset")
    result = runner.invoke(cli, args + ["--preset", preset_v11, "--method", "rank"])
    assert result.exit_code == 0, result.output


# ---------------------------------------------------------------------- predict


@pytest.fixture(scope="module")
def two_prompts(trained):
    """Prompts a (step 2) and b (step 4) over one loaded model."""
    from softprompt.core.inference.prompts import model_for_prompts

    files = [trained / "checkpoints/step-2.npy", trained / "checkpoints/step-4.npy"]
    model, arrays, metas = model_for_prompts(files)
    return files, model, arrays, metas


@pytest.mark.parametrize("method", ["decode", "rank"])
def test_predict_mixed_file_equals_per_prompt_runs(runner, cli, two_prompts, task_dir, tmp_path,
                                                   method):
    from softprompt.core.inference.predict import answer

    (a, b), model, arrays, metas = two_prompts
    lines = {"a": [], "b": []}
    for i, r in enumerate(dev_records(task_dir)):  # model input text, or the task's fields
        lines["a"].append({"prompt": "a", "text": f"review: {r['text']}"} if i % 2
                          else {"prompt": "a", **r})
        lines["b"].append({"prompt": "b", **r} if i % 2
                          else {"prompt": "b", "text": f"review: {r['text']}"})
    mixed = [x for pair in zip(lines["a"], lines["b"]) for x in pair]
    path = tmp_path / "mixed.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in mixed))
    out = tmp_path / "out.jsonl"
    result = runner.invoke(cli, ["predict", "--prompt", f"a={a}", "--prompt", f"b={b}",
                                 "--input", str(path), "--output", str(out),
                                 "--method", method, "--batch-size", "6"])
    assert result.exit_code == 0, result.output
    together = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(together) == len(mixed)
    # each prompt alone, over the same frozen model (what a one-prompt run computes)
    alone = {name: answer(model.with_prompts([arrays[k]]), [name], [metas[k]],
                          [("", x) for x in lines[name]], method, batch_size=6)
             for k, name in enumerate("ab")}
    for i, row in enumerate(together):
        single = alone[row["prompt"]][i // 2]
        assert row["prediction"] == single["prediction"]
        if method == "rank":
            assert row["prediction"] in LABELS and set(row["scores"]) == set(LABELS)
            for label in LABELS:
                assert row["scores"][label] == pytest.approx(single["scores"][label], abs=1e-4)


def test_predict_bad_requests(runner, cli, trained, tmp_path):
    path = tmp_path / "in.jsonl"
    prompt = f"a={trained / 'best.npy'}"
    path.write_text('{"prompt": "zzz", "text": "review: good"}\n')
    assert_user_error(runner.invoke(cli, ["predict", "--prompt", prompt, "--input", str(path)]),
                      "line 1", "unknown prompt 'zzz'")
    path.write_text('{"prompt": "a", "text": "review: good"}\n{"prompt": "a", "text": \n')
    assert_user_error(runner.invoke(cli, ["predict", "--prompt", prompt, "--input", str(path)]),
                      "line 2", "malformed JSON")


# ---------------------------------------------------------------------- ensemble


@pytest.mark.parametrize("method", ["decode", "rank"])
def test_ensemble_of_identical_prompts_equals_the_prompt(runner, cli, trained, task_dir,
                                                         tmp_path, method):
    best = str(trained / "best.npy")
    if method == "decode":  # as in training: the sidecar holds the single prompt's score
        expected = load_prompt(best)[1]["metrics"]
    else:
        single = tmp_path / "single.json"
        result = runner.invoke(cli, ["eval", "--prompt", best, "--data", str(task_dir),
                                     "--method", method, "--output", str(single)])
        assert result.exit_code == 0, result.output
        expected = json.loads(single.read_text())["metrics"]
    output = tmp_path / "ensemble.json"
    # 3 inputs x 2 prompts: batches of 6 rows, as the single prompt's
    result = runner.invoke(cli, ["ensemble", "--prompt", best, "--prompt", best, "--data",
                                 str(task_dir), "--method", method, "--batch-size", "3",
                                 "--output", str(output)])
    assert result.exit_code == 0, result.output
    report = json.loads(output.read_text())
    assert report["ensemble"] == expected
    assert [p["metrics"] for p in report["prompts"]] == [expected, expected]
    assert report["average"] == report["best"] == expected["accuracy"]
    for column in ("average", "best", "ensemble"):
        assert column in result.stdout


# ---------------------------------------------------------------------- neighbors, info


def test_neighbors(runner, cli, trained, tmp_path):
    output = tmp_path / "neighbors.json"
    result = runner.invoke(cli, ["neighbors", str(trained / "checkpoints/step-2.npy"), "-k", "4",
                                 "--output", str(output)])
    assert result.exit_code == 0, result.output
    report = json.loads(output.read_text())
    assert report["labels"] == LABELS  # from the sidecar
    assert [p["position"] for p in report["positions"]] == [0, 1, 2]
    for p in report["positions"]:
        assert len(p["tokens"]) == 4 and p["similarities"] == sorted(p["similarities"],
                                                                     reverse=True)
    assert "of 3 positions have a label word" in result.stdout


def test_info(runner, cli):
    result = runner.invoke(cli, ["info", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["backend"] == keras.backend.backend()
    assert report["keras"] == keras.__version__ and report["devices"]
    assert report["extras"]["matplotlib"]
    result = runner.invoke(cli, ["info"])
    assert result.exit_code == 0 and "keras-hub" in result.stdout


# ---------------------------------------------------------------------- bad input


def test_bad_training_input(runner, cli, preset_v11, task_dir, tmp_path):
    def train(*args, data=task_dir, out=None):
        out = out or tmp_path / "never"
        return runner.invoke(cli, ["train", "--preset", preset_v11, *TASK, "--data", str(data),
                                   *TRAIN, "--out", str(out), *args])

    assert_user_error(train(data=tmp_path / "missing"), "missing")
    bad = write_task(tmp_path / "bad")
    with open(bad / "train.jsonl", "a") as f:
        f.write('{"text": "good film", "label": \n')
    assert_user_error(train(data=bad), "train.jsonl, line 25", "malformed JSON")
    result = runner.invoke(cli, ["train", "--preset", preset_v11, "--task", "boolqq", "--data",
                                 str(task_dir), "--out", str(tmp_path / "x")])
    assert_user_error(result, "unknown task 'boolqq'", "boolq")
    assert_user_error(train("--steps", "0"), "steps")
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert_user_error(train(out=blocker / "run"), str(blocker))
    assert not (tmp_path / "never").exists()


def test_prompt_model_mismatch(runner, cli, trained, task_dir, preset_v10):
    result = runner.invoke(cli, ["eval", "--prompt", str(trained / "best.npy"), "--data",
                                 str(task_dir), "--preset", preset_v10])
    assert_user_error(result, "trained on model", "--allow-mismatch")


def test_user_error_in_a_real_process(tmp_path):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    out = subprocess.run([sys.executable, "-m", "softprompt.cli.main", "eval", "--prompt",
                          str(tmp_path / "missing.npy"), "--data", str(tmp_path)],
                         capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 2
    assert error_lines(out.stderr) == [f"Error: prompt file {tmp_path / 'missing.npy'} "
                                       "does not exist"]


@pytest.mark.parametrize("options, fragment", [
    (("--keep-alive-s", "0"), "--keep-alive-s must be > 0, got 0.0"),
    (("--max-batch-size", "0"), "--max-batch-size must be at least 1, got 0"),
    (("--max-queue", "4", "--max-batch-size", "8"), "--max-queue (4) must hold at least one"),
    (("--port", "70000"), "--port must be in 0..65535, got 70000"),
    (("--queue-timeout-ms", "0"), "--queue-timeout-ms > 0"),
    (("--replicas", "2"), "--replicas needs --ray"),
])
def test_serve_refuses_bad_options_before_loading_anything(runner, cli, tmp_path, options,
                                                           fragment):
    result = runner.invoke(cli, ["serve", "--preset", "softprompt_tiny", "--prompts",
                                 str(tmp_path), *options])
    assert_user_error(result, fragment)
