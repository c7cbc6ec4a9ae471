"""Prompt ensembles: one frozen model, N prompts, every input through all N in one batch.

`model.with_prompts(prompts)` holds the N prompts in one variable; each input
is replicated N times with ``prompt_ids = 0..N-1`` in the same batch, so the
ensemble costs one batched pass, not N passes (the paper's section 6).

Combining (`combine_votes`, `combine_scores`):

- decode: majority vote over the N predictions (compared after the task's
  postprocessing); a tie is broken by the summed log-likelihood of each tied
  answer under all N prompts (one extra scoring pass, for tied inputs only).
- rank: the N prompts' candidate log-likelihoods are averaged, then argmax.

Example:
    >>> result = ensemble(model, [p1, p2, p3], tasks.get("boolq"), dev, method="decode")
    >>> result.table()        # each prompt, average, best, ensemble (the paper's Table 3)
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence

import numpy as np

from softprompt.core.inference import batched
from softprompt.core.inference import evaluate as ev
from softprompt.core.inference.methods import check_method


def combine_scores(scores: Sequence[np.ndarray], candidates: Sequence[Sequence[str]]) -> list[str]:
    """Rank mode: per input, the candidate with the highest mean log-likelihood over prompts."""
    return [list(c)[int(np.mean(s, axis=0).argmax())] for s, c in zip(scores, candidates)]


def majority(keys: Sequence[str]) -> list[str]:
    """The most frequent keys, in order of first appearance (several when tied)."""
    counts = Counter(keys)
    top = max(counts.values())
    return [k for k in dict.fromkeys(keys) if counts[k] == top]


def combine_votes(model, task, examples, texts: Sequence[Sequence[str]], inputs: Sequence[str], *,
                  batch_size: int = 32, max_input_length: int = 512) -> list[str]:
    """Decode mode: majority vote per input; ties go to the highest summed log-likelihood.

    `texts` is ``[example][prompt]`` raw decoded strings. Votes compare the
    task's postprocessed predictions; the winner is returned as the raw text
    of the first prompt that produced it.
    """
    replicas = len(texts[0]) if texts else 1
    winners: list[str | None] = []
    tied: list[int] = []
    tied_raw: list[list[str]] = []
    for i, (ex, row) in enumerate(zip(examples, texts)):
        keys = [task.postprocess(t, ex) for t in row]
        top = majority(keys)
        raw = [row[keys.index(k)] for k in top]
        if len(top) == 1:
            winners.append(raw[0])
        else:
            winners.append(None)
            tied.append(i)
            tied_raw.append(raw)
    if tied:
        ids = batched.tokenize_inputs(model, [inputs[i] for i in tied], max_input_length)
        scores = batched.score_ids(model, ids, tied_raw, batch_size=batch_size,
                                   max_input_length=max_input_length, replicas=replicas)
        for i, raw, s in zip(tied, tied_raw, scores):
            winners[i] = raw[int(s.sum(axis=0).argmax())]
    return [w if w is not None else "" for w in winners]


@dataclasses.dataclass
class EnsembleResult:
    """Per-prompt and ensemble metrics, with the predictions behind them.

    Attributes:
        names: a name per prompt (file names in the CLI).
        metric: the metric the table reports (the task's main metric by default).
        prompt_metrics: the task's metrics for each prompt alone.
        ensemble_metrics: the metrics of the combined predictions.
        predictions: ``[example][prompt]`` raw predictions.
        ensemble_predictions: the combined prediction per example.
    """

    names: list[str]
    metric: str
    prompt_metrics: list[dict[str, float]]
    ensemble_metrics: dict[str, float]
    predictions: list[list[str]]
    ensemble_predictions: list[str]

    @property
    def scores(self) -> list[float]:
        return [m[self.metric] for m in self.prompt_metrics]

    def table(self) -> dict[str, float]:
        """The paper's Table 3 columns for `metric`: average, best, ensemble (and each prompt)."""
        scores = self.scores
        row = {name: s for name, s in zip(self.names, scores)}
        row.update(average=float(np.mean(scores)), best=float(np.max(scores)),
                   ensemble=self.ensemble_metrics[self.metric])
        return row

    def to_dict(self) -> dict:
        return {
            "metric": self.metric,
            "prompts": [{"name": n, "metrics": m} for n, m in zip(self.names, self.prompt_metrics)],
            "average": float(np.mean(self.scores)),
            "best": float(np.max(self.scores)),
            "ensemble": self.ensemble_metrics,
        }


def ensemble(model, prompts, task, examples, method: str = "decode", *, names=None,
             metric: str | None = None, batch_size: int = 32, max_input_length: int = 512,
             max_target_length: int | None = None) -> EnsembleResult:
    """Evaluate N prompts alone and as an ensemble, all in one batched pass.

    Args:
        model: a `PromptedT5` over the frozen backbone (its own prompt is not used).
        prompts: N prompt arrays ``(P_i, d)`` (lengths may differ).
        task: the task whose format and metrics apply.
        examples: labeled examples.
        method: ``decode`` (majority vote) or ``rank`` (mean log-likelihood).
        names: a name per prompt (default ``prompt-0``, …).
        metric: the metric of the table (default: the task's main metric).
        batch_size: inputs per batch (each batch holds ``batch_size * N`` rows).
    """
    check_method(method)
    examples = list(examples)
    prompts = list(prompts)
    n = len(prompts)
    names = list(names) if names is not None else [f"prompt-{i}" for i in range(n)]
    if len(names) != n:
        raise ValueError(f"{len(names)} names for {n} prompts")
    joint = model.with_prompts(prompts)
    inputs = [task.format(ex)[0] for ex in examples]
    preds = ev.predict_examples(joint, task, examples, method, batch_size=batch_size,
                       max_input_length=max_input_length, max_target_length=max_target_length,
                       replicas=n)
    if method == "rank":
        combined = combine_scores(preds.scores, preds.candidates)
    else:
        combined = combine_votes(joint, task, examples, preds.texts, inputs,
                                 batch_size=batch_size, max_input_length=max_input_length)
    per_prompt = [task.evaluate(examples, preds.replica(r)) for r in range(n)]
    together = task.evaluate(examples, combined)
    metric = metric or task.main_metric
    if metric not in together:
        raise ValueError(
            f"task {task.name!r} reports no metric {metric!r} (it reports {', '.join(together)})"
        )
    return EnsembleResult(names, metric, per_prompt, together, preds.texts, combined)
