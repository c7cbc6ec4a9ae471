"""Model tuning on the one loop: what trains, exact resume, and the preset it leaves.

Tiny preset, tiny task, few steps; the backend is whatever ``KERAS_BACKEND`` says.
"""

from __future__ import annotations

import json

import keras
import keras_hub
import numpy as np
import pytest
from keras import ops
from task_helpers import TASK_ARGS, TRAIN_CONFIG, StopAt

from softprompt.core.training.config import TrainConfig
from softprompt.core.training.train import train


def config(out, preset, data, **kw):
    return TrainConfig(**{**TRAIN_CONFIG, "out": str(out), "preset": preset, "data": str(data),
                          "method": "model-tuning", **kw})


def backbone_weights(backbone) -> list[tuple[str, np.ndarray]]:
    """``(path, value)`` of every weight of `backbone` (not the dropout seeds), in order."""
    return [(v.path, np.array(ops.convert_to_numpy(v))) for v in backbone.weights
            if "seed_generator" not in v.path]


class KeepBackbone(keras.callbacks.Callback):
    """The backbone's weights when training ends (`backbone_weights`)."""

    def on_train_end(self, logs=None):
        self.weights = backbone_weights(self.model.backbone)


def weights_of(preset_dir) -> list[np.ndarray]:
    return [w for _, w in backbone_weights(
        keras_hub.models.T5Backbone.from_preset(str(preset_dir)))]


@pytest.fixture(scope="module")
def tuned(tmp_path_factory, preset_v11, task_dir):
    """An uninterrupted 4-step model-tuning run (dropout on: seed states matter for resume)."""
    out = tmp_path_factory.mktemp("tuned") / "run"
    kept = KeepBackbone()
    result = train(config(out, preset_v11, task_dir), callbacks=[kept], progress=False)
    assert result.stopped == "completed" and result.best_path == out / "best"
    return out, kept.weights


def test_model_tuning_moves_every_backbone_weight(tuned, preset_v11):
    out, after = tuned
    before = weights_of(preset_v11)
    assert len(after) == len(before)
    still = [path for (path, a), b in zip(after, before) if np.array_equal(a, b)]
    assert still == [], f"backbone weights that did not move: {still}"
    record = json.loads((out / "config.json").read_text())["resolved"]
    assert record["method"] == "model-tuning" and record["learning_rate"] == 1e-3
    assert record["parameters"]["trained"] == record["parameters"]["backbone"]


def test_prompt_tuning_never_changes_the_backbone(tmp_path, preset_v11, task_dir):
    kept = KeepBackbone()
    train(config(tmp_path / "pt", preset_v11, task_dir, method="prompt-tuning", steps=2),
          callbacks=[kept], progress=False)
    fresh = weights_of(preset_v11)
    assert len(kept.weights) == len(fresh)
    for (path, trained), original in zip(kept.weights, fresh):
        np.testing.assert_array_equal(trained, original, err_msg=path)


def test_the_products_are_presets_that_load(tuned):
    out, after = tuned
    for name in ("best/config.json", "best/model.weights.h5", "best/softprompt.json",
                 "checkpoints/step-4/model.weights.h5", "checkpoints/state-4.npz",
                 "checkpoints/latest.json", "metrics.jsonl", "train.csv", "curve.png"):
        assert (out / name).is_file(), name
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    best = max(lines, key=lambda x: x["accuracy"])
    record = json.loads((out / "best/softprompt.json").read_text())
    assert record["step"] == best["step"] and record["metrics"]["accuracy"] == best["accuracy"]
    assert record["method"] == "model-tuning" and record["task_args"] == TASK_ARGS
    # the last step's preset holds the weights the run ended with
    final = weights_of(out / "checkpoints/step-4")
    assert len(final) == len(after)
    for u, (path, v) in zip(final, after):
        np.testing.assert_array_equal(u, v, err_msg=path)


def test_model_tuning_resume_is_exact(tmp_path, preset_v11, task_dir, tuned):
    whole, _ = tuned
    out = tmp_path / "parts"
    part = train(config(out, preset_v11, task_dir), callbacks=[StopAt(1)], progress=False)
    assert part.stopped == "interrupted" and part.step == 1
    done = train(config(out, preset_v11, task_dir), resume=True, progress=False)
    assert done.step == 4 and done.stopped == "completed"
    for name in ("checkpoints/step-4", "best"):
        for u, v in zip(weights_of(out / name), weights_of(whole / name)):
            np.testing.assert_array_equal(u, v, err_msg=name)
    # only the committed step's preset, the one before it (the fallback) and the best are kept
    kept = sorted(p.name for p in (out / "checkpoints").glob("step-*"))
    best_step = json.loads((out / "best/softprompt.json").read_text())["step"]
    assert kept == sorted({f"step-{best_step}", "step-4", "step-2"})


def test_an_unreadable_preset_checkpoint_offers_the_previous_one(tmp_path, preset_v11,
                                                                 task_dir, tuned):
    """Recovery holds for model tuning: a truncated step-4 preset names the file and step 2;
    --resume-from-last-good recomputes step 4 exactly."""
    import shutil

    from softprompt.core.training.checkpoint_recovery import UnreadableCheckpoint

    whole, _ = tuned
    out = tmp_path / "run"
    shutil.copytree(whole, out)
    weights = out / "checkpoints/step-4/model.weights.h5"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(UnreadableCheckpoint, match=r"step-4/model\.weights\.h5 is not a "
                                                   r"readable weights file.* step 2: .*last-good"):
        train(config(out, preset_v11, task_dir), resume=True, progress=False)
    notes = []
    done = train(config(out, preset_v11, task_dir), from_last_good=True, progress=False,
                 echo=notes.append)
    assert done.step == 4 and any("resuming from step 2" in n for n in notes), notes
    for u, v in zip(weights_of(out / "checkpoints/step-4"),
                    weights_of(whole / "checkpoints/step-4")):
        np.testing.assert_array_equal(u, v)


def test_a_model_tuned_preset_evaluates_to_its_recorded_score(tuned, task_dir):
    from softprompt import tasks
    from softprompt.core.experiments.runs import load_best

    out, _ = tuned
    model, settings = load_best(out)
    dev = tasks.get("jsonl", **TASK_ARGS).read(task_dir, "validation")
    metrics = settings.evaluate(model, tasks.get("jsonl", **TASK_ARGS), dev)
    assert metrics == json.loads((out / "best/softprompt.json").read_text())["metrics"]
