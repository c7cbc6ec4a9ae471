"""Tasks over the batched inference path: predictions for examples, and the task's metrics.

A task formats examples into input strings; `predict_inputs` runs them
through `softprompt.core.inference.batched` with greedy decoding (method
``decode``) or rank classification over candidates (method ``rank``), with
per-example prompts (`prompt_ids`) or every prompt of the model at once
(`replicas`); `evaluate` scores the predictions with the task's metrics.

Example:
    >>> metrics, predictions = evaluate(model, tasks.get("boolq"), dev_examples)
    >>> preds = predict_inputs(model, ["review: fine"], "rank", candidates=[["good", "bad"]])
    >>> preds.texts
    [['good']]
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from softprompt.core.inference import batched
from softprompt.core.inference.methods import check_method
from softprompt.core.text import tokens as tok

#: Decoding length when nothing tells us how long targets are.
DEFAULT_TARGET_LENGTH = 32


# ---------------------------------------------------------------------- tasks


def task_candidates(task, examples) -> list[list[str]]:
    """The candidates rank classification scores for each example of `task`."""
    out = []
    for i, ex in enumerate(examples):
        cands = task.candidates(ex)
        if not cands:
            raise ValueError(
                f"task {task.name!r} has free-form targets (example {i} has no candidates): "
                "rank classification needs candidates; use the decode method"
            )
        out.append(list(cands))
    return out


def target_length(tokenizer, task, examples=()) -> int:
    """How many tokens to decode for `task`: its longest label or gold target, ``</s>`` included."""
    texts = list(task.labels or [])
    for ex in examples:
        target = task.format(ex)[1]
        if target:
            texts.append(target)
    if not texts:
        return DEFAULT_TARGET_LENGTH
    return max(len(r) for r in tok.tokenize(tokenizer, texts, add_eos=True))


@dataclasses.dataclass
class Predictions:
    """What a model said for each example.

    Attributes:
        texts: ``[example][replica]`` raw strings: decoded text, or with rank
            classification the best candidate.
        scores: with rank classification, ``[example] -> (replicas, C)``
            log-likelihoods of the candidates; else `None`.
        candidates: with rank classification, the candidate strings per example.
    """

    texts: list[list[str]]
    scores: list[np.ndarray] | None = None
    candidates: list[list[str]] | None = None

    def replica(self, r: int = 0) -> list[str]:
        return [t[r] for t in self.texts]


def predict_inputs(model, inputs: Sequence[str], method: str = "decode", *,
                   prompt_ids=None, candidates=None, replicas: int = 1, batch_size: int = 32,
                   max_input_length: int = 512,
                   max_target_length=DEFAULT_TARGET_LENGTH) -> Predictions:
    """Run formatted input strings through the model with decode or rank classification.

    `prompt_ids` picks each input's prompt (mixed prompts share batches);
    `candidates` (rank) is one list per input; `max_target_length` is one
    number or one per input.
    """
    check_method(method)
    ids = batched.tokenize_inputs(model, inputs, max_input_length)
    if method == "decode":
        texts = batched.generate_ids(model, ids, prompt_ids, max_length=max_target_length,
                                     batch_size=batch_size, max_input_length=max_input_length,
                                     replicas=replicas)
        return Predictions(texts)
    if candidates is None:
        raise ValueError("rank classification needs candidates")
    scores = batched.score_ids(model, ids, candidates, prompt_ids, batch_size=batch_size,
                               max_input_length=max_input_length, replicas=replicas)
    texts = [[cands[int(k)] for k in s.argmax(-1)] for cands, s in zip(candidates, scores)]
    return Predictions(texts, scores, [list(c) for c in candidates])


def predict_examples(model, task, examples, method: str = "decode", *, batch_size: int = 32,
            max_input_length: int = 512, max_target_length: int | None = None,
            replicas: int = 1, prompt_ids=None) -> Predictions:
    """Format `examples` with `task` and predict them (see `predict_inputs`)."""
    examples = list(examples)
    check_method(method)
    inputs = [task.format(ex)[0] for ex in examples]
    candidates = task_candidates(task, examples) if method == "rank" else None
    if max_target_length is None:
        max_target_length = target_length(model.tokenizer, task, examples)
    return predict_inputs(model, inputs, method, prompt_ids=prompt_ids, candidates=candidates,
                          replicas=replicas, batch_size=batch_size,
                          max_input_length=max_input_length, max_target_length=max_target_length)


def evaluate(model, task, examples, method: str = "decode", *, batch_size: int = 32,
             max_input_length: int = 512,
             max_target_length: int | None = None) -> tuple[dict[str, float], list[str]]:
    """The task's metrics for the model's predictions on `examples`.

    Returns ``(metrics, predictions)``; predictions are the raw strings the
    task's `evaluate` scored.

    Example:
        >>> metrics, _ = evaluate(model, tasks.get("rte"), dev, method="rank")
        >>> metrics["accuracy"]
    """
    preds = predict_examples(model, task, examples, method, batch_size=batch_size,
                    max_input_length=max_input_length, max_target_length=max_target_length)
    texts = preds.replica(0)
    return task.evaluate(examples, texts), texts
