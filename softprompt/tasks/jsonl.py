"""A user's own task from JSONL lines: an input template, a target field, optional labels.

This is how people bring their own data::

    task = tasks.get("jsonl", template="review: {text}", target_field="label",
                     labels=["negative", "positive"])
    train = task.read("reviews/", "train")     # reviews/train.jsonl

``path`` is a ``.jsonl`` (or ``.jsonl.gz``) file, or a directory holding ``train.jsonl``,
``validation.jsonl`` (or ``val.jsonl`` / ``dev.jsonl``) and ``test.jsonl``; Parquet and CSV files
(or folders of them), datasets saved with ``save_to_disk`` and ``hf://datasets/NAME[:CONFIG]``
work too (`softprompt.tasks.sources`), a ``ClassLabel`` target read as its label name.

With ``labels`` it is a classification task: the target field holds a label string, a class
index into ``labels`` or a JSON boolean (for ``True``/``False`` labels); metrics ``accuracy`` and
``f1_multiclass``; rank classification scores the labels. Without, targets are free text (a string,
or a list of acceptable strings whose first is the training target); metrics ``em`` and ``f1`` with
SQuAD normalization, maximum over the list.

Examples:

>>> from softprompt import tasks
>>> task = tasks.get("jsonl", template="review: {text}", target_field="stars",
...                  labels=["bad", "good"])
>>> task.format({"text": "Loved it.", "stars": "good"})
('review: Loved it.', 'good')
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence

from softprompt.tasks import metrics
from softprompt.tasks.base import Example, Task, register


@register("jsonl")
class JsonlTask(Task):
    """A task defined by its arguments rather than by code.

    Args:
        template: the inputs, with ``{field}`` for each example field it uses (``str.format``
            syntax; ``{{``/``}}`` for literal braces; top-level field names only).
        target_field: the field holding the target.
        labels: the label strings of a classification task, in class-index order; ``None`` for
            free-text targets.
        main_metric: the metric for best-checkpoint selection (default ``accuracy`` with labels,
            ``em`` without).
    """

    filenames = {
        "train": ("train.jsonl", "train.jsonl.gz"),
        "validation": ("validation.jsonl", "val.jsonl", "dev.jsonl", "validation.jsonl.gz"),
        "test": ("test.jsonl", "test.jsonl.gz"),
    }

    def __init__(
        self,
        template: str | None = None,
        target_field: str | None = None,
        labels: Sequence[str] | None = None,
        main_metric: str | None = None,
    ):
        if not template or not target_field:
            raise ValueError(
                "the jsonl task needs template= (e.g. 'review: {text}') and target_field="
            )
        if not isinstance(template, str) or not isinstance(target_field, str):
            raise ValueError("the jsonl task's template= and target_field= must be strings")
        self.template = template
        self.target_field = target_field
        self.template_fields = _template_fields(self.template)
        if labels is not None:
            if not isinstance(labels, (list, tuple)):
                raise ValueError(f"labels must be a list of strings, got {labels!r:.60}")
            labels = [str(label) for label in labels]
            if len(labels) < 2 or len(set(labels)) != len(labels):
                raise ValueError(f"labels must be at least two distinct strings, got {labels}")
        self.labels = labels
        reported = ("accuracy", "f1_multiclass") if labels else ("em", "f1")
        self.main_metric = main_metric or reported[0]
        if self.main_metric not in reported:
            raise ValueError(
                f"main_metric={main_metric!r}: this task reports {', '.join(reported)}"
            )
        self.metric_names = (self.main_metric,) + tuple(m for m in reported if m != self.main_metric)
        self.input_format = self.template
        self.title = "your own task: a template over JSONL/Parquet/CSV fields"
        self.target_format = f"the {self.target_field!r} field"

    def columns(self, split: str) -> tuple[str, ...]:
        return tuple(self.template_fields) + (() if split == "test" else (self.target_field,))

    def _from_saved(self, row: dict, where: str, split: str) -> list[Example]:
        for name in self.template_fields:
            if row.get(name) is None:
                raise ValueError(f"{where}: missing field {name!r} (used by the template)")
        try:
            self.format(row)
        except ValueError as e:
            raise ValueError(f"{where}: {e}") from None
        example = dict(row)
        if self.labels:
            example[self.target_field] = self._label(row, self.target_field, where, split)
            return [example]
        value = row.get(self.target_field)
        if value is None:
            if split == "test":
                return [example]
            raise ValueError(
                f"{where}: missing field {self.target_field!r} (only the test split may be "
                f"unlabeled)"
            )
        golds = value if isinstance(value, list) else [value]
        if not golds or not all(isinstance(g, (str, int, float)) for g in golds):
            raise ValueError(
                f"{where}: field {self.target_field!r} must be a string or a non-empty list of "
                f"strings"
            )
        example[self.target_field] = (
            [str(g) for g in golds] if isinstance(value, list) else str(value)
        )
        return [example]

    def format(self, example: Example) -> tuple[str, str]:
        missing = [f for f in self.template_fields if example.get(f) is None]
        if missing:
            raise ValueError(f"{self.name}: example has no field {missing[0]!r}")
        try:
            inputs = self.template.format_map(example)
        except (ValueError, TypeError) as e:  # a format spec that does not fit the value
            raise ValueError(f"template {self.template!r} cannot format this example ({e})"
                             ) from None
        value = example.get(self.target_field)
        if isinstance(value, list):
            value = value[0] if value else ""
        return inputs, "" if value is None else str(value)

    def _score(self, examples: list[Example], predictions: list[str]) -> dict[str, float]:
        golds = [self._gold(ex, i, self.target_field) for i, ex in enumerate(examples)]
        if self.labels:
            return {
                "accuracy": metrics.accuracy(golds, predictions),
                "f1_multiclass": metrics.mean_multiclass_f1(golds, predictions, self.labels),
            }
        golds = [g if isinstance(g, list) else [g] for g in golds]
        return metrics.squad(golds, predictions)


def _template_fields(template: str) -> list[str]:
    """The field names ``template`` uses, checked to be plain top-level names."""
    fields = []
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as e:
        raise ValueError(f"template {template!r}: {e}") from None
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if not name or name.isdigit() or any(c in name for c in ".[]"):
            raise ValueError(
                f"template {template!r}: field {{{name}}} must be a field name such as {{text}}"
            )
        if conversion not in (None, "s", "r", "a"):
            raise ValueError(f"template {template!r}: unknown conversion !{conversion}")
        if "{" in spec or re.search(r"\d{5,}", spec):
            raise ValueError(f"template {template!r}: format spec {spec!r} of {{{name}}} is not "
                             "supported (no nested fields, widths below 10000)")
        fields.append(name)
    if not fields:
        raise ValueError(f"template {template!r} uses no field (write e.g. 'review: {{text}}')")
    return fields
