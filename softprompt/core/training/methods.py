"""What a training method trains: the prompt (prompt tuning) or every weight (model tuning).

The one loop (`softprompt.core.training.loop.Run`) trains every method; a method
says only which part of the model is trainable, its optimizer's settings, and
what a checkpoint writes for the user (`softprompt.core.training.products`):

| method | trainable | optimizer | checkpoints, best |
| --- | --- | --- | --- |
| ``prompt-tuning`` | the prompt; the backbone frozen | Adafactor as the paper: constant lr 0.3, no parameter scaling, weight decay 1e-5 | prompt files ``checkpoints/step-N.npy``, ``best.npy`` |
| ``model-tuning`` | every backbone weight; no prompt | Adafactor as T5X fine-tunes: constant lr 1e-3, decay rate 0.8, updates scaled by the parameter RMS, factored second moments, no weight decay | keras-hub presets ``checkpoints/step-N/``, ``best/`` |

LM adaptation (`softprompt.core.pretraining.adapt`) is the third caller of the
loop: every weight, on a corpus instead of a task, with its own schedule.
This module is plain data (no keras), so the CLI reads its choices at start-up.

Example:
    >>> METHODS["model-tuning"].lr
    0.001
    >>> METHODS["prompt-tuning"].trains
    'prompt'
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Method:
    """One way to train.

    Attributes:
        name: the method's name (``--method``).
        trains: ``"prompt"`` or ``"backbone"``: the part of `PromptedT5` that is trainable.
        lr: the default constant learning rate.
        adafactor: `softprompt.core.training.adafactor.Adafactor` options besides the
            learning rate (its own defaults are the paper's prompt-tuning setting).
        product: ``"prompt"`` (prompt files) or ``"preset"`` (keras-hub presets).
    """

    name: str
    trains: str
    lr: float
    adafactor: dict
    product: str


METHODS = {
    "prompt-tuning": Method("prompt-tuning", trains="prompt", lr=0.3, adafactor={},
                            product="prompt"),
    # T5X's fine-tuning: adafactor.Adafactor(decay_rate=0.8, step_offset=0) with its
    # defaults (multiply_by_parameter_scale=True, weight_decay_rate=None, factored=True).
    "model-tuning": Method("model-tuning", trains="backbone", lr=1e-3,
                           adafactor={"decay_rate": 0.8, "multiply_by_parameter_scale": True,
                                      "weight_decay_rate": None}, product="preset"),
}
#: The method names, ``--method``'s choices.
NAMES = tuple(METHODS)


def get(name: str) -> Method:
    """The method called `name` (a one-line error for any other)."""
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}: expected one of {', '.join(NAMES)}")
    return METHODS[name]
