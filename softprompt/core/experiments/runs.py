"""A finished training run, loaded for evaluation: its best model and how it was evaluated.

Prompt tuning's product is ``best.npy`` (with its sidecar), model tuning's the
keras-hub preset ``best/`` (with ``softprompt.json``); both record the task, the
evaluation method and the lengths the dev score was measured with, so the
same settings reproduce that score.

Example:
    >>> model, settings = load_best("runs/compare/cells/softprompt_tiny/model-tuning/seed-0")
    >>> settings.evaluate(model, task, dev_examples)["accuracy"]
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from softprompt.core.experiments.prompt_design import bare_model
from softprompt.core.inference.prompts import model_for_prompts
from softprompt.core.interop.presets import training_record


@dataclasses.dataclass
class EvalSettings:
    """How a run evaluated its dev split (from its product's sidecar)."""

    task: str | None
    method: str = "decode"
    batch_size: int = 32
    max_input_length: int = 512
    max_target_length: int | None = None

    @classmethod
    def from_record(cls, meta: dict) -> EvalSettings:
        return cls(task=meta.get("task"), method=meta.get("eval_method") or "decode",
                   batch_size=int(meta.get("eval_batch_size") or 32),
                   max_input_length=int(meta.get("max_input_length") or 512),
                   max_target_length=meta.get("max_target_length"))

    def evaluate(self, model, task, examples) -> dict[str, float]:
        """`task`'s metrics on `examples`; the recorded target length only for the run's task."""
        from softprompt.core.inference.evaluate import evaluate  # keras loads here

        same = task.name == self.task
        method = self.method if same or task.labels else "decode"
        metrics, _ = evaluate(model, task, examples, method, batch_size=self.batch_size,
                              max_input_length=self.max_input_length,
                              max_target_length=self.max_target_length if same else None)
        return {k: float(v) for k, v in metrics.items()}


def load_best(run_dir):
    """``(model, EvalSettings)`` of the best checkpoint of the training run in `run_dir`."""
    run_dir = Path(run_dir)
    if (run_dir / "best" / "config.json").is_file():
        model = bare_model(str(run_dir / "best"))
        return model, EvalSettings.from_record(training_record(run_dir / "best"))
    if not (run_dir / "best.npy").is_file():
        raise FileNotFoundError(f"{run_dir} holds no evaluated model (no best.npy or best/)")
    model, _, metas = model_for_prompts([str(run_dir / "best.npy")])
    return model, EvalSettings.from_record(metas[0])


def run_options(run_dir) -> dict:
    """The options of the run in `run_dir` (its ``config.json``)."""
    return json.loads((Path(run_dir) / "config.json").read_text())["options"]
