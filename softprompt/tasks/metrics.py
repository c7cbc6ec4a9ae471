"""T5's evaluation metrics in plain Python, returned as percentages (0-100) like T5 reports them.

The definitions follow ``t5.evaluation.metrics`` and ``t5.evaluation.qa_utils``:

- ``accuracy``: the share of predictions equal to their target.
- ``f1_with_invalid`` (T5 ``f1_score_with_invalid``): binary F1 of the positive label, where a
  prediction that is neither label counts as the wrong one.
- ``mean_multiclass_f1`` (T5 ``mean_multiclass_f1``, reported as ``f1_multiclass``): the unweighted
  mean of the per-class F1; a prediction outside ``labels`` is a miss for its target's class and a
  false positive for none; a class with no targets and no predictions scores 0 (sklearn's
  ``zero_division=0``).
- ``squad``: exact match and token F1 after SQuAD normalization (lowercase, drop punctuation, drop
  the articles a/an/the, squeeze whitespace), each the maximum over the gold answers.
- ``multirc``: ``exact_match`` (the mean over questions of "every answer-option right") and ``f1a``
  (binary F1 over all answer-options).

Examples:

>>> accuracy(["a", "b"], ["a", "c"])
50.0
>>> squad([["The Eiffel Tower"]], ["eiffel tower!"])
{'em': 100.0, 'f1': 100.0}
"""

from __future__ import annotations

import collections
import re
import string
from collections.abc import Hashable, Sequence

_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def _check(targets: Sequence, predictions: Sequence) -> None:
    if len(targets) != len(predictions):
        raise ValueError(f"{len(predictions)} predictions for {len(targets)} targets")
    if not targets:
        raise ValueError("no targets to score")


def _f1(tp: int, fp: int, fn: int) -> float:
    denominator = 2 * tp + fp + fn
    return 2 * tp / denominator if denominator else 0.0


def accuracy(targets: Sequence, predictions: Sequence) -> float:
    """Percent of predictions equal to their target."""
    _check(targets, predictions)
    return 100.0 * sum(t == p for t, p in zip(targets, predictions, strict=True)) / len(targets)


def f1_with_invalid(
    targets: Sequence[str], predictions: Sequence[str], positive: str, negative: str
) -> float:
    """Binary F1 (percent) of ``positive``; a prediction that is neither label is wrong."""
    _check(targets, predictions)
    tp = fp = fn = 0
    for t, p in zip(targets, predictions, strict=True):
        if p not in (positive, negative):
            p = negative if t == positive else positive
        tp += t == positive and p == positive
        fp += t != positive and p == positive
        fn += t == positive and p != positive
    return 100.0 * _f1(tp, fp, fn)


def mean_multiclass_f1(
    targets: Sequence[str], predictions: Sequence[str], labels: Sequence[str]
) -> float:
    """Unweighted mean over ``labels`` of each class's F1 (percent)."""
    _check(targets, predictions)
    scores = []
    for label in labels:
        tp = sum(t == label and p == label for t, p in zip(targets, predictions, strict=True))
        fp = sum(t != label and p == label for t, p in zip(targets, predictions, strict=True))
        fn = sum(t == label and p != label for t, p in zip(targets, predictions, strict=True))
        scores.append(_f1(tp, fp, fn))
    return 100.0 * sum(scores) / len(scores)


def normalize_squad(text: str) -> str:
    """SQuAD v1.1's answer normalization: lowercase, no punctuation, no articles, single spaces."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def _token_f1(gold: str, prediction: str) -> float:
    """Token-overlap F1 of two normalized strings; 0 when they share no token (even both empty)."""
    gold_tokens, pred_tokens = gold.split(), prediction.split()
    common = collections.Counter(gold_tokens) & collections.Counter(pred_tokens)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred_tokens), same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def squad(golds: Sequence[Sequence[str]], predictions: Sequence[str]) -> dict[str, float]:
    """``{"em", "f1"}`` in percent, each the maximum over an example's gold answers.

    As T5 and the SQuAD v1.1 script: a normalized-empty prediction against a normalized-empty gold
    is an exact match with F1 0. An example with *no* gold answer (an unanswerable SQuAD 2.0
    question) scores 100 on both only when the normalized prediction is empty, as in SQuAD 2.0.
    """
    _check(golds, predictions)
    em_total = f1_total = 0.0
    for answers, prediction in zip(golds, predictions, strict=True):
        pred = normalize_squad(prediction)
        normalized = [normalize_squad(a) for a in answers]
        if not normalized:
            em_total += pred == ""
            f1_total += pred == ""
            continue
        em_total += max(float(g == pred) for g in normalized)
        f1_total += max(_token_f1(g, pred) for g in normalized)
    n = len(predictions)
    return {"em": 100.0 * em_total / n, "f1": 100.0 * f1_total / n}


def multirc(
    groups: Sequence[Hashable],
    targets: Sequence[str],
    predictions: Sequence[str],
    positive: str = "True",
    negative: str = "False",
) -> dict[str, float]:
    """MultiRC's ``exact_match`` (per question, averaged) and ``f1a`` (over all answer-options).

    ``groups[i]`` names the question answer-option ``i`` belongs to.
    """
    _check(targets, predictions)
    if len(groups) != len(targets):
        raise ValueError(f"{len(groups)} group ids for {len(targets)} targets")
    by_question: dict[Hashable, bool] = {}
    for g, t, p in zip(groups, targets, predictions, strict=True):
        by_question[g] = by_question.get(g, True) and t == p
    return {
        "exact_match": 100.0 * sum(by_question.values()) / len(by_question),
        "f1a": f1_with_invalid(targets, predictions, positive, negative),
    }
