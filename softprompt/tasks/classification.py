"""Classification in T5's ``glue()`` form: ``"key: value"`` pairs in, a label word out.

T5's ``preprocessors.glue`` writes ``"<benchmark> key1: v1 key2: v2 …"`` (keys sorted by name
unless the task fixes an order) and targets the label's name; the official prompt-tuning code's
"taskless" tasks then drop the first word (the benchmark name), which is the form used here.

Examples:

>>> from softprompt.tasks import get
>>> boolq = get("boolq")
>>> boolq.format({"passage": "Water boils at 100 C.", "question": "does water boil",
...               "label": "True"})
('passage: Water boils at 100 C. question: does water boil', 'True')
>>> boolq.candidates({})
['False', 'True']
"""

from __future__ import annotations

from softprompt.tasks import metrics, readers
from softprompt.tasks.base import Example, Task


class ClassificationTask(Task):
    """Inputs are ``fields`` as ``"name: value"`` joined by spaces; targets are ``labels``.

    Attributes:
        fields: the input fields, in the order they appear in the inputs.
        metric_names: what ``evaluate`` reports, in T5's order (the first is ``main_metric``):
            ``accuracy``, ``f1`` (binary F1 of ``labels[1]``, invalid predictions wrong) and
            ``f1_multiclass`` (mean per-class F1 over ``labels``).
    """

    fields: tuple[str, ...] = ()
    metric_names: tuple[str, ...] = ("accuracy",)

    @property
    def main_metric(self) -> str:  # type: ignore[override]
        return self.metric_names[0]

    @property
    def input_format(self) -> str:  # type: ignore[override]
        return " ".join(f"{f}: {{{f}}}" for f in self.fields)

    def columns(self, split: str) -> tuple[str, ...]:
        return self.fields + (() if split == "test" else ("label",))

    def _from_saved(self, row: dict, where: str, split: str) -> list[Example]:
        example: Example = {f: readers.field(row, f, where) for f in self.fields}
        example["label"] = self._label(row, "label", where, split)
        if row.get("idx") is not None:
            example["idx"] = row["idx"]
        return [example]

    def format(self, example: Example) -> tuple[str, str]:
        inputs = " ".join(f"{f}: {self._text(example, f)}" for f in self.fields)
        label = example.get("label")
        return inputs, "" if label is None else str(label)

    def _score(self, examples: list[Example], predictions: list[str]) -> dict[str, float]:
        golds = [self._gold(ex, i) for i, ex in enumerate(examples)]
        labels = list(self.labels or ())
        scores: dict[str, float] = {}
        for name in self.metric_names:
            if name == "accuracy":
                scores[name] = metrics.accuracy(golds, predictions)
            elif name == "f1":
                scores[name] = metrics.f1_with_invalid(golds, predictions, labels[1], labels[0])
            elif name == "f1_multiclass":
                scores[name] = metrics.mean_multiclass_f1(golds, predictions, labels)
            else:
                raise ValueError(f"{self.name}: unknown metric {name!r}")
        return scores
