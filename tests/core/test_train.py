"""The training loop: exact resume, NaN stop, early stopping, atomic checkpoints, bad options.

Tiny preset, tiny task, few steps; the backend is whatever ``KERAS_BACKEND`` says.
"""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
from task_helpers import LABELS, TASK_ARGS, TRAIN_CONFIG, StopAt, write_task

from softprompt.core.io.prompt_files import load_prompt
from softprompt.core.training import state as train_state
from softprompt.core.training.config import TrainConfig, TrainingDiverged
from softprompt.core.training.train import train


def config(out, preset, data, **kw):
    return TrainConfig(**{**TRAIN_CONFIG, "out": str(out), "preset": preset, "data": str(data),
                          **kw})


class Crash(RuntimeError):
    pass


class PoisonAt(keras.callbacks.Callback):
    """Make the prompt NaN before step `step` runs."""

    def __init__(self, step):
        super().__init__()
        self.step = step

    def on_train_batch_begin(self, batch, logs=None):
        if batch == self.step:
            var = self.model.prompt.embeddings
            var.assign(np.full(var.shape, np.nan, np.float32))


@pytest.fixture(scope="module")
def whole(tmp_path_factory, preset_v11, task_dir):
    """An uninterrupted 4-step run (dropout on, so seed states matter for resume)."""
    out = tmp_path_factory.mktemp("whole") / "run"
    result = train(config(out, preset_v11, task_dir), progress=False)
    assert result.stopped == "completed" and result.step == 4
    return out


def test_outputs_of_a_run(whole):
    for name in ("config.json", "metrics.jsonl", "train.csv", "curve.png", "best.npy",
                 "best.json", "checkpoints/step-2.npy", "checkpoints/step-4.json",
                 "checkpoints/state-4.npz", "checkpoints/latest.json"):
        assert (whole / name).is_file(), name
    assert (whole / "checkpoints/state-2.npz").exists()  # the state before the latest is kept
    events = list((whole / "tensorboard").glob("events.out.tfevents.*"))
    assert events and b"train/loss" in events[0].read_bytes()
    record = json.loads((whole / "config.json").read_text())
    assert record["options"]["steps"] == 4 and record["options"]["task_args"] == TASK_ARGS
    assert record["versions"]["backend"] == keras.backend.backend()
    assert record["resolved"]["init"] == "class-labels"
    lines = [json.loads(x) for x in (whole / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == [2, 4]
    best = max(lines, key=lambda x: x["accuracy"])  # ties: the earlier step stays best
    _, meta = load_prompt(whole / "best.npy")
    assert meta["step"] == best["step"] and meta["metrics"]["accuracy"] == best["accuracy"]
    assert meta["task"] == "jsonl" and meta["labels"] == LABELS
    assert (whole / "curve.png").read_bytes()[:4] == b"\x89PNG"


def test_interrupted_run_resumes_to_the_uninterrupted_result(tmp_path, preset_v11, task_dir,
                                                             whole, monkeypatch):
    out = tmp_path / "parts"
    part = train(config(out, preset_v11, task_dir), callbacks=[StopAt(1)], progress=False)
    assert part.stopped == "interrupted" and part.step == 1
    assert train_state.latest(out)["step"] == 1  # a stop checkpoints the current step

    # resumed, then killed between writing step 4's files and committing them
    real_commit = train_state.commit

    def commit(out_dir, step, **extra):
        if step == 4:
            raise Crash("killed before committing step 4")
        real_commit(out_dir, step, **extra)

    monkeypatch.setattr(train_state, "commit", commit)
    with pytest.raises(Crash):
        train(config(out, preset_v11, task_dir), resume=True, progress=False)
    monkeypatch.setattr(train_state, "commit", real_commit)
    assert train_state.latest(out)["step"] == 2  # the previous checkpoint is in force

    done = train(config(out, preset_v11, task_dir), resume=True, progress=False)
    assert done.step == 4 and done.stopped == "completed"
    final_whole, _ = load_prompt(whole / "checkpoints/step-4.npy")
    final_parts, _ = load_prompt(out / "checkpoints/step-4.npy")
    np.testing.assert_array_equal(final_parts, final_whole)
    best_whole, meta_whole = load_prompt(whole / "best.npy")
    best_parts, meta_parts = load_prompt(out / "best.npy")
    np.testing.assert_array_equal(best_parts, best_whole)
    assert meta_parts["step"] == meta_whole["step"]
    # logs were cut back to the checkpoint and continued without duplicates
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == [2, 4]
    rows = (out / "train.csv").read_text().splitlines()[1:]
    assert [int(r.split(",")[0]) for r in rows] == [1, 2, 3, 4]
    record = json.loads((out / "config.json").read_text())
    assert [r["at_step"] for r in record["resumed"]] == [1, 2]


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, preset_v11, task_dir):
    out = tmp_path / "run"
    with pytest.raises(TrainingDiverged, match=r"nan at step 3.*step-2\.npy"):
        train(config(out, preset_v11, task_dir, steps=6), callbacks=[PoisonAt(3)],
              progress=False)
    assert train_state.latest(out)["step"] == 2
    assert not (out / "checkpoints/step-3.npy").exists()
    prompt, meta = load_prompt(out / "checkpoints/step-2.npy")
    assert np.isfinite(prompt).all() and meta["step"] == 2
    assert (out / "curve.png").is_file()


def test_early_stopping(tmp_path, preset_v11, task_dir):
    out = tmp_path / "run"
    result = train(config(out, preset_v11, task_dir, steps=20, eval_every=1, early_stopping=1,
                          lr=1e-12), progress=False)
    # a learning rate this small cannot change a prediction: the second evaluation is no
    # better than the first, which stops the run
    assert result.stopped == "early_stopping" and result.step == 2
    assert result.best_step == 1
    assert train_state.latest(out)["step"] == 2


def test_run_directory_rules(tmp_path, preset_v11, task_dir, whole):
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        train(config(tmp_path / "empty", preset_v11, task_dir), resume=True)
    with pytest.raises(ValueError, match="already holds a training run"):
        train(config(whole, preset_v11, task_dir))
    with pytest.raises(ValueError, match="batch_size"):
        train(config(whole, preset_v11, task_dir, batch_size=4), resume=True)
    with pytest.raises(ValueError, match="below the checkpoint"):
        train(config(whole, preset_v11, task_dir, steps=3), resume=True)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises((PermissionError, NotADirectoryError)):
        train(config(blocker / "sub", preset_v11, task_dir))


def test_resume_refuses_other_data(tmp_path, preset_v11, task_dir, whole):
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(whole, out)
    record = json.loads((out / "config.json").read_text())
    other = write_task(tmp_path / "other", seed=5)
    record["options"]["data"] = str(other)  # same options, other data behind them
    (out / "config.json").write_text(json.dumps(record))
    with pytest.raises(ValueError, match="differ from the stopped run"):
        train(config(out, preset_v11, other, steps=6), resume=True, progress=False)


@pytest.mark.parametrize("field,value", [("steps", 0), ("batch_size", -1), ("lr", 0.0),
                                         ("eval_method", "beam"), ("dropout", 1.5)])
def test_bad_options(tmp_path, field, value):
    with pytest.raises(ValueError, match=field.split("_")[0]):
        train(TrainConfig(out=str(tmp_path), preset="p", task="t", data="d", **{field: value}))
